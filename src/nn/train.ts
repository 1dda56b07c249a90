import { batchOf, type Digits } from '../data/mnist.js';
import { adam, nllLoss, sgd, type Sequential } from './model.js';
import { seededRandom } from './tensor.js';

export interface TrainOptions {
  epochs: number;
  batchSize?: number;
  lr?: number;
  optimizer?: 'adam' | 'sgd';
  weightDecay?: number;
  seed?: number;
  /** Train on the first `limit` shuffled examples only. */
  limit?: number;
  onProgress?: (p: Progress) => void;
}

export interface Progress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

function shuffled(n: number, rand: () => number): Uint32Array {
  const a = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Mini-batch training with a cosine learning-rate schedule; deterministic for a given seed. */
export async function train(model: Sequential, data: Digits, o: TrainOptions): Promise<void> {
  const bs = o.batchSize ?? 64, lr0 = o.lr ?? 2e-3;
  const opt = (o.optimizer ?? 'adam') === 'adam' ? adam(o.weightDecay ?? 1e-4) : sgd(0.9, o.weightDecay ?? 5e-4);
  const rng = seededRandom(o.seed ?? 1);
  const n = Math.min(o.limit ?? data.count, data.count);
  const steps = Math.floor(n / bs);
  const total = steps * o.epochs;
  const start = performance.now();
  let done = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = shuffled(data.count, rng.uniform).subarray(0, n);
    let lossSum = 0, correct = 0, seen = 0;
    for (let step = 0; step < steps; step++) {
      const { x, labels } = batchOf(data, order, step * bs, bs);
      const logp = await model.forward(x, true);
      const r = nllLoss(logp, labels);
      await model.backward(r.grad);
      const lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * done) / total));
      opt.step(model.params(), lr);
      done++;
      lossSum += r.loss * bs; correct += r.correct; seen += bs;
      if (o.onProgress && (step % 10 === 9 || step === steps - 1)) {
        const secs = (performance.now() - start) / 1e3;
        o.onProgress({ epoch: epoch + 1, epochs: o.epochs, step: step + 1, steps, loss: lossSum / seen, accuracy: correct / seen,
          imagesPerSecond: (done * bs) / secs, etaSeconds: (secs / done) * (total - done) });
      }
    }
  }
}

/** Accuracy of the float (fake-quantized) model on a data set. */
export async function evaluate(model: Sequential, data: Digits, batchSize = 250, limit = data.count): Promise<number> {
  const order = Uint32Array.from({ length: data.count }, (_, i) => i);
  let correct = 0;
  const n = Math.min(limit, data.count);
  for (let from = 0; from < n; from += batchSize) {
    const b = Math.min(batchSize, n - from);
    const { x, labels } = batchOf(data, order, from, b);
    correct += nllLoss(await model.forward(x, false), labels).correct;
  }
  return correct / n;
}

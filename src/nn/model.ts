import type { Layer } from './layers.js';
import { Conv2d, Flatten, Linear, LogSoftmax, MaxPool2d, QuantReLU, ReLU } from './layers.js';
import { seededRandom, type Param, type Tensor } from './tensor.js';

export class Sequential {
  constructor(readonly layers: Layer[]) {}

  async forward(x: Tensor, training = false): Promise<Tensor> {
    let y = x;
    for (const l of this.layers) y = await l.forward(y, training);
    return y;
  }

  async backward(dy: Tensor): Promise<Tensor> {
    let d = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) d = await this.layers[i].backward(d);
    return d;
  }

  params(): Param[] {
    return this.layers.flatMap((l) => l.params());
  }
}

/** Mean negative log-likelihood of log-probabilities [N, K]; returns the loss and its gradient. */
export function nllLoss(logp: Tensor, labels: ArrayLike<number>): { loss: number; grad: Tensor; correct: number } {
  const [N, K] = logp.shape;
  const grad = new Float32Array(logp.data.length);
  let loss = 0, correct = 0;
  for (let n = 0; n < N; n++) {
    loss -= logp.data[n * K + labels[n]];
    grad[n * K + labels[n]] = -1 / N;
    let best = 0;
    for (let k = 1; k < K; k++) if (logp.data[n * K + k] > logp.data[n * K + best]) best = k;
    if (best === labels[n]) correct++;
  }
  return { loss: loss / N, grad: { data: grad, shape: logp.shape }, correct };
}

/**
 * The seed's MNIST network: conv 1->32 3x3 pad 1, ReLU, maxpool 2; conv 32->64 3x3 pad 1, ReLU,
 * maxpool 2; fc 3136->128, ReLU; fc 128->10; log-softmax. With activationBits, every ReLU is a
 * learnable-clip quantizer whose codes feed the next layer's PCILT tables.
 */
export function mnistNet(opts: { activationBits?: number; weightBits?: number; seed?: number } = {}): Sequential {
  const rng = seededRandom(opts.seed ?? 1);
  const act = () => (opts.activationBits ? new QuantReLU(opts.activationBits, 2) : new ReLU());
  const wb = opts.activationBits ? (opts.weightBits ?? 8) : opts.weightBits;
  return new Sequential([
    new Conv2d(1, 32, 3, 1, 1, wb, rng), act(), new MaxPool2d(2),
    new Conv2d(32, 64, 3, 1, 1, wb, rng), act(), new MaxPool2d(2),
    new Flatten(),
    new Linear(3136, 128, wb, rng), act(),
    new Linear(128, 10, wb, rng),
    new LogSoftmax(),
  ]);
}

export interface Optimizer {
  step(params: Param[], lr: number): void;
}

/** Adam with decoupled weight decay (AdamW) on weights; biases and clips are not decayed. */
export function adam(weightDecay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): Optimizer {
  const m = new Map<Param, Float32Array>(), v = new Map<Param, Float32Array>();
  let t = 0;
  return {
    step(params, lr) {
      t++;
      const c1 = 1 - beta1 ** t, c2 = 1 - beta2 ** t;
      for (const p of params) {
        if (!m.has(p)) { m.set(p, new Float32Array(p.value.length)); v.set(p, new Float32Array(p.value.length)); }
        const mp = m.get(p)!, vp = v.get(p)!;
        const decay = p.name === 'weight' ? weightDecay : 0;
        for (let i = 0; i < p.value.length; i++) {
          const g = p.grad[i];
          mp[i] = beta1 * mp[i] + (1 - beta1) * g;
          vp[i] = beta2 * vp[i] + (1 - beta2) * g * g;
          p.value[i] -= lr * ((mp[i] / c1) / (Math.sqrt(vp[i] / c2) + eps) + decay * p.value[i]);
        }
        p.grad.fill(0);
      }
    },
  };
}

/** SGD with momentum and L2 weight decay on weights. */
export function sgd(momentum = 0.9, weightDecay = 0): Optimizer {
  const vel = new Map<Param, Float32Array>();
  return {
    step(params, lr) {
      for (const p of params) {
        if (!vel.has(p)) vel.set(p, new Float32Array(p.value.length));
        const u = vel.get(p)!;
        const decay = p.name === 'weight' ? weightDecay : 0;
        for (let i = 0; i < p.value.length; i++) {
          u[i] = momentum * u[i] + p.grad[i] + decay * p.value[i];
          p.value[i] -= lr * u[i];
        }
        p.grad.fill(0);
      }
    },
  };
}

import { ArgumentError } from '../errors.js';
import { batchOf, type Digits } from '../data/mnist.js';
import { Flatten, Linear, LogSoftmax, QuantReLU, type Layer } from './layers.js';
import { Sequential, adam, nllLoss } from './model.js';
import { TableLinear, asEntries, type TableRange } from './table-weights.js';
import { seededRandom, type Tensor } from './tensor.js';

/**
 * Fine-tunes the lookup tables of the fully connected layers of a trained QAT network (the
 * paper's "using PCILTs as weights"), at one range. The convolutional part stays frozen, so its
 * output codes are computed once. Returns the network with the tables as plain entries.
 */
export async function fineTuneTables(net: Sequential, data: Digits, o: { range: TableRange; epochs: number; lr?: number; limit?: number; seed?: number; onProgress?: (msg: string) => void }): Promise<Sequential> {
  const flat = net.layers.findIndex((l) => l instanceof Flatten);
  if (flat < 0) throw new ArgumentError('network', 'one without Flatten', 'a convolutional part, Flatten, then Linear layers');
  const prefix = new Sequential(net.layers.slice(0, flat + 1));
  // The tail with every Linear after a quantizer turned into tables.
  const tail: Layer[] = [];
  let quant: QuantReLU | undefined = [...net.layers.slice(0, flat)].reverse().find((l): l is QuantReLU => l instanceof QuantReLU);
  for (const l of net.layers.slice(flat + 1)) {
    if (l instanceof Linear) {
      if (!quant) throw new ArgumentError('network', 'a Linear layer without quantized input', 'QuantReLU before every Linear');
      tail.push(TableLinear.fromLinear(l, quant, o.range));
      quant = undefined;
    } else {
      if (l instanceof QuantReLU) quant = l;
      else if (!(l instanceof LogSoftmax)) throw new ArgumentError('layer after Flatten', l.type, 'Linear, QuantReLU or LogSoftmax');
      tail.push(l);
    }
  }
  const head = new Sequential(tail);
  const n = Math.min(o.limit ?? data.count, data.count);
  const order = Uint32Array.from({ length: data.count }, (_, i) => i);
  const features: Tensor[] = [];
  const labels: Uint8Array[] = [];
  for (let from = 0; from < n; from += 500) {
    const b = batchOf(data, order, from, Math.min(500, n - from));
    features.push(await prefix.forward(b.x, false));
    labels.push(b.labels);
  }
  const opt = adam(0);
  const rng = seededRandom(o.seed ?? 1);
  const params = head.params().filter((p) => p.name !== 'alpha');
  const bs = 100, lr0 = o.lr ?? 1e-3;
  const steps = o.epochs * Math.floor(n / bs);
  let step = 0;
  for (let e = 0; e < o.epochs; e++) {
    let loss = 0, correct = 0;
    const batches = Array.from({ length: Math.floor(n / bs) }, (_, i) => i).sort(() => rng.uniform() - 0.5);
    for (const bi of batches) {
      const f = features[Math.floor((bi * bs) / 500)], off = (bi * bs) % 500;
      const K = f.shape[1];
      const x = { data: f.data.subarray(off * K, (off + bs) * K), shape: [bs, K] };
      const lab = labels[Math.floor((bi * bs) / 500)].subarray(off, off + bs);
      const r = nllLoss(await head.forward(x, true), lab);
      await head.backward(r.grad);
      opt.step(params, lr0 * 0.5 * (1 + Math.cos((Math.PI * step++) / steps)));
      for (const p of head.params()) p.grad.fill(0);
      loss += r.loss; correct += r.correct;
    }
    o.onProgress?.(`tables (${o.range}) epoch ${e + 1}/${o.epochs}: loss ${(loss / batches.length).toFixed(4)}, train accuracy ${((correct / (batches.length * bs)) * 100).toFixed(2)}%`);
  }
  return new Sequential([...prefix.layers, ...head.layers.map((l) => (l instanceof TableLinear ? asEntries(l) : l))]);
}

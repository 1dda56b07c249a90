import { ArgumentError } from '../errors.js';
import { batchOf, type Digits } from '../data/mnist.js';
import { Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, QuantReLU, type Layer } from './layers.js';
import { Sequential, adam, nllLoss } from './model.js';
import { ENTRY_BITS, TableConv2d, TableLinear, type TableLayer, type TableRange } from './table-weights.js';
import { seededRandom } from './tensor.js';

/**
 * Adam's step size for fine-tuning. Adam moves every parameter by about this much in its first
 * steps whatever its gradient, and a table entry that few pixels read gets a full step from a small
 * gradient: at 1e-3 the tables of models/mnist-a2.fcnn lost 0.24 points of test accuracy, at 1e-4 0.06.
 */
export const FINETUNE_LR = 1e-4;

/** Layers that pass a quantizer's codes on unchanged in kind (so the next weight layer still reads codes). */
const passesCodes = (l: Layer) => l instanceof MaxPool2d || l instanceof Flatten || l instanceof Dropout;

/**
 * Fine-tunes the lookup tables of a trained QAT network (the paper's "using PCILTs as weights"), at
 * one range: every Conv2d and Linear that reads a quantizer's codes becomes a table layer
 * (TableConv2d, TableLinear) whose tables are the parameters, quantized per channel to ENTRY_BITS-bit
 * integers in the forward pass, so that integer inference runs the same tables. The layers before the
 * first of them (the first convolution, which reads pixels) stay frozen, and so do the quantizers'
 * clips; their output codes are computed once. Returns the network with the tables as plain entries.
 */
export async function fineTuneTables(net: Sequential, data: Digits, o: { range: TableRange; epochs: number; lr?: number; limit?: number; seed?: number; onProgress?: (msg: string) => void }): Promise<Sequential> {
  // Layers before the first weight layer that reads codes stay frozen (the prefix); from it on, every
  // weight layer becomes a table layer.
  const prefixLayers: Layer[] = [], head: Layer[] = [];
  let quant: QuantReLU | undefined, feed: QuantReLU | undefined;
  for (const [i, l] of net.layers.entries()) {
    const weights = l instanceof Conv2d || l instanceof Linear;
    if (!feed && !(weights && quant)) prefixLayers.push(l);
    else if (weights) {
      if (!quant) throw new ArgumentError(`input of ${l.type} (layer ${i})`, 'floats', 'the codes of a QuantReLU');
      feed ??= quant;
      head.push(l instanceof Conv2d ? TableConv2d.fromConv(l, quant, o.range, ENTRY_BITS) : TableLinear.fromLinear(l, quant, o.range, ENTRY_BITS));
    } else if (l instanceof QuantReLU || passesCodes(l) || l instanceof LogSoftmax) head.push(l);
    else throw new ArgumentError(`layer ${i}`, l.type, 'Conv2d, Linear, QuantReLU, MaxPool2d, Flatten, Dropout or LogSoftmax after the first table layer');
    quant = l instanceof QuantReLU ? l : passesCodes(l) ? quant : undefined;
  }
  if (!feed) throw new ArgumentError('network', 'one without a Conv2d or Linear after a QuantReLU', 'a quantized network (QuantReLU before its weight layers)');
  const prefix = new Sequential(prefixLayers);
  (head[0] as TableLayer).inputGradient = false;
  const tail = new Sequential(head);
  // The frozen part's output, once: codes of `feed` (one byte a value instead of a float).
  const n = Math.min(o.limit ?? data.count, data.count), chunk = 500, s = feed.scale;
  const order = Uint32Array.from({ length: data.count }, (_, i) => i);
  const features: { codes: Uint8Array; shape: number[]; labels: Uint8Array }[] = [];
  for (let from = 0; from < n; from += chunk) {
    const b = batchOf(data, order, from, Math.min(chunk, n - from));
    const f = await prefix.forward(b.x, false);
    features.push({ codes: Uint8Array.from(f.data, (v) => Math.round(v / s)), shape: f.shape, labels: b.labels });
  }
  const opt = adam(0);
  const rng = seededRandom(o.seed ?? 1);
  const params = tail.params().filter((p) => p.name !== 'alpha');
  const bs = 100, lr0 = o.lr ?? FINETUNE_LR;
  const batches = Math.floor(n / bs), steps = o.epochs * batches;
  let step = 0;
  for (let e = 0; e < o.epochs; e++) {
    let loss = 0, correct = 0;
    const t0 = performance.now();
    const shuffled = Array.from({ length: batches }, (_, i) => i).sort(() => rng.uniform() - 0.5);
    for (const [j, bi] of shuffled.entries()) {
      const f = features[Math.floor((bi * bs) / chunk)], off = (bi * bs) % chunk;
      const per = f.codes.length / f.shape[0];
      const x = { data: Float32Array.from(f.codes.subarray(off * per, (off + bs) * per), (c) => c * s), shape: [bs, ...f.shape.slice(1)] };
      const r = nllLoss(await tail.forward(x, true), f.labels.subarray(off, off + bs));
      await tail.backward(r.grad);
      opt.step(params, lr0 * 0.5 * (1 + Math.cos((Math.PI * step++) / steps)));
      for (const p of tail.params()) p.grad.fill(0);
      loss += r.loss; correct += r.correct;
      if (j % 20 === 19) o.onProgress?.(`tables (${o.range}) epoch ${e + 1}/${o.epochs}: batch ${j + 1}/${batches}, loss ${(loss / (j + 1)).toFixed(4)}, ${((performance.now() - t0) / 1e3).toFixed(0)} s`);
    }
    o.onProgress?.(`tables (${o.range}) epoch ${e + 1}/${o.epochs}: loss ${(loss / batches).toFixed(4)}, train accuracy ${((correct / (batches * bs)) * 100).toFixed(2)}%`);
  }
  return new Sequential([...prefix.layers, ...tail.layers.map((l) => (l instanceof TableLinear || l instanceof TableConv2d ? l.asEntries() : l))]);
}

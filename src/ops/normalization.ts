import { sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { attrFloat, attrInt, axisOf, checkDType, defineOp, fail, need, type Inputs } from './registry.js';
import { broadcastIndex } from './broadcast.js';

/** Per channel (axis 1): y = (x - mean) / sqrt(var + eps) * scale + bias. */
defineOp({
  op: 'BatchNormalization', inputs: [5, 5],
  run(ins, node) {
    const [x, s, b, m, v] = [0, 1, 2, 3, 4].map((i) => need(ins, i, node));
    checkDType(node, x, ['float32']);
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const C = x.shape[1] ?? 1, P = sizeOf(x.shape.slice(2)), N = x.shape[0];
    for (const t of [s, b, m, v]) if (sizeOf(t.shape) !== C) fail(node, `needs ${C} values per parameter, got [${t.shape}]`);
    const training = attrInt(node, 'training_mode', 0) === 1;
    const xd = x.data as Float32Array;
    // Training mode normalizes with the batch's statistics and returns the updated running ones.
    const mean = Float32Array.from(m.data as Float32Array), vari = Float32Array.from(v.data as Float32Array);
    const runMean = new Float32Array(C), runVar = new Float32Array(C), momentum = attrFloat(node, 'momentum', 0.9);
    if (training) {
      for (let c = 0; c < C; c++) {
        let sum = 0, sq = 0;
        for (let n = 0; n < N; n++) for (let i = (n * C + c) * P; i < (n * C + c + 1) * P; i++) sum += xd[i];
        const mu = sum / (N * P);
        for (let n = 0; n < N; n++) for (let i = (n * C + c) * P; i < (n * C + c + 1) * P; i++) sq += (xd[i] - mu) ** 2;
        runMean[c] = mean[c] * momentum + mu * (1 - momentum);
        runVar[c] = vari[c] * momentum + (sq / (N * P)) * (1 - momentum);
        mean[c] = mu;
        vari[c] = sq / (N * P);
      }
    }
    const y = zeros('float32', x.shape);
    const yd = y.data as Float32Array;
    for (let c = 0; c < C; c++) {
      const k = (s.data as Float32Array)[c] / Math.sqrt(vari[c] + eps);
      const mu = mean[c], beta = (b.data as Float32Array)[c];
      for (let n = 0; n < N; n++) for (let i = (n * C + c) * P; i < (n * C + c + 1) * P; i++) yd[i] = (xd[i] - mu) * k + beta;
    }
    if (training && node.outputs.length > 1) return [y, { dtype: 'float32', shape: [C], data: runMean }, { dtype: 'float32', shape: [C], data: runVar }];
    return [y];
  },
});

/** Normalizes each of `outer` rows of `inner` values; scale and bias indexed by `param(i)`. */
function normalizeRows(x: Tensor, outer: number, inner: number, eps: number, param: (row: number, i: number) => [number, number]): { y: Tensor; mean: Float32Array; inv: Float32Array } {
  const y = zeros('float32', x.shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
  const mean = new Float32Array(outer), inv = new Float32Array(outer);
  for (let r = 0; r < outer; r++) {
    let mu = 0, sq = 0;
    for (let i = r * inner; i < (r + 1) * inner; i++) mu += xd[i];
    mu /= inner;
    for (let i = r * inner; i < (r + 1) * inner; i++) sq += (xd[i] - mu) ** 2;
    const k = 1 / Math.sqrt(sq / inner + eps);
    mean[r] = mu;
    inv[r] = k;
    for (let i = 0; i < inner; i++) {
      const [s, b] = param(r, i);
      yd[r * inner + i] = (xd[r * inner + i] - mu) * k * s + b;
    }
  }
  return { y, mean, inv };
}

defineOp({
  op: 'InstanceNormalization', inputs: [3, 3],
  run(ins, node) {
    const [x, s, b] = [0, 1, 2].map((i) => need(ins, i, node));
    checkDType(node, x, ['float32']);
    const C = x.shape[1], P = sizeOf(x.shape.slice(2));
    if (sizeOf(s.shape) !== C || sizeOf(b.shape) !== C) fail(node, `scale and bias need ${C} values`);
    const sd = s.data as Float32Array, bd = b.data as Float32Array;
    return [normalizeRows(x, x.shape[0] * C, P, attrFloat(node, 'epsilon', 1e-5), (r) => [sd[r % C], bd[r % C]]).y];
  },
});

defineOp({
  op: 'LayerNormalization', inputs: [2, 3],
  run(ins, node) {
    const x = need(ins, 0, node), s = need(ins, 1, node), b = ins[2];
    checkDType(node, x, ['float32']);
    const axis = axisOf(node, attrInt(node, 'axis', -1), x.shape.length);
    const outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis));
    const tail = x.shape.slice(axis);
    const is = broadcastIndex(tail, s.shape), ib = b ? broadcastIndex(tail, b.shape) : null;
    const sd = s.data as Float32Array, bd = b?.data as Float32Array | undefined;
    const { y, mean, inv } = normalizeRows(x, outer, inner, attrFloat(node, 'epsilon', 1e-5), (_, i) => [sd[is[i]], bd ? bd[ib![i]] : 0]);
    const stat = x.shape.map((d, i) => (i < axis ? d : 1));
    const stats: Tensor[] = [{ dtype: 'float32', shape: stat, data: mean }, { dtype: 'float32', shape: stat, data: inv }];
    return [y, ...stats].slice(0, Math.max(1, node.outputs.length));
  },
});

defineOp({
  op: 'LRN', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node);
    checkDType(node, x, ['float32']);
    const size = attrInt(node, 'size', 0);
    if (size < 1) fail(node, 'needs a positive size');
    const alpha = attrFloat(node, 'alpha', 1e-4), beta = attrFloat(node, 'beta', 0.75), bias = attrFloat(node, 'bias', 1);
    const [N, C] = x.shape, P = sizeOf(x.shape.slice(2));
    const y = zeros('float32', x.shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
    const lo = Math.floor((size - 1) / 2), hi = Math.ceil((size - 1) / 2);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        for (let p = 0; p < P; p++) {
          let sq = 0;
          for (let j = Math.max(0, c - lo); j <= Math.min(C - 1, c + hi); j++) sq += xd[(n * C + j) * P + p] ** 2;
          const i = (n * C + c) * P + p;
          yd[i] = xd[i] / (bias + (alpha / size) * sq) ** beta;
        }
      }
    }
    return [y];
  },
});

/** A float32 batch norm in inference mode with one statistic per channel (axis 1): what the plane kernels run. */
export function inferenceBatchNorm(ins: Inputs, node: Node): boolean {
  return ins.slice(0, 5).every((t) => t?.dtype === 'float32') && attrInt(node, 'training_mode', 0) === 0 && ins[0]!.shape.length >= 2
    && ins.slice(1, 5).every((t) => sizeOf(t!.shape) === ins[0]!.shape[1]);
}

/** A float32 LayerNormalization over the last axis with one output, scale (and bias) of its size: what the row kernels run. */
export function lastAxisLayerNorm(ins: Inputs, node: Node): boolean {
  return ins[0]?.dtype === 'float32' && ins[1]?.dtype === 'float32' && (!ins[2] || ins[2].dtype === 'float32') && node.outputs.length === 1
    && ((node.attrs.axis as number | undefined) ?? -1) === -1 && sizeOf(ins[1].shape) === ins[0].shape[ins[0].shape.length - 1]
    && (!ins[2] || sizeOf(ins[2].shape) === sizeOf(ins[1].shape));
}

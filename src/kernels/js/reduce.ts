import { sizeOf, zeros } from '../../ir/tensor.js';
import { attrFloat, registerKernel, type Inputs } from '../../ops/registry.js';
import { contiguousRun } from '../../ops/reduce.js';
import { inferenceBatchNorm, lastAxisLayerNorm } from '../../ops/normalization.js';

/**
 * Float32 reductions whose axes are one contiguous run (outer x reduced x inner), and the
 * per-channel ops (GlobalAveragePool, BatchNormalization) as plain loops over planes.
 */

/** The reduction of xd[b, e) in float64, in order (as the strided loop below adds), before the op's finish. */
function reduceRun(op: string, xd: Float32Array, b: number, e: number): number {
  let s = op === 'ReduceMax' ? -Infinity : op === 'ReduceMin' ? Infinity : 0;
  if (op === 'ReduceMax') for (let j = b; j < e; j++) s = xd[j] > s || xd[j] !== xd[j] ? xd[j] : s;
  else if (op === 'ReduceMin') for (let j = b; j < e; j++) s = xd[j] < s || xd[j] !== xd[j] ? xd[j] : s;
  else if (op === 'ReduceSumSquare' || op === 'ReduceL2') for (let j = b; j < e; j++) s += xd[j] * xd[j];
  else for (let j = b; j < e; j++) s += xd[j];
  return s;
}

for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceSumSquare', 'ReduceL2']) {
  registerKernel({
    op, backend: 'js', variant: 'f32-contiguous',
    supports: (ins, node) => contiguousRun(ins, node) !== undefined,
    async run(ins, node) {
      const x = ins[0]!, { outer, R, inner, shape } = contiguousRun(ins, node)!;
      const y = zeros('float32', shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
      const finish = (v: number) => (op === 'ReduceMean' ? v / R : op === 'ReduceL2' ? Math.sqrt(v) : v);
      if (inner === 1) {
        // Each output reduces one contiguous run (a squeeze-excite's mean over H x W): a scalar per run.
        for (let o = 0; o < outer; o++) yd[o] = finish(reduceRun(op, xd, o * R, (o + 1) * R));
        return [y];
      }
      const acc = new Float64Array(inner);
      const max = op === 'ReduceMax', min = op === 'ReduceMin', sq = op === 'ReduceSumSquare' || op === 'ReduceL2';
      for (let o = 0; o < outer; o++) {
        acc.fill(max ? -Infinity : min ? Infinity : 0);
        for (let r = 0; r < R; r++) {
          const base = (o * R + r) * inner;
          if (max) for (let i = 0; i < inner; i++) acc[i] = xd[base + i] > acc[i] || xd[base + i] !== xd[base + i] ? xd[base + i] : acc[i];
          else if (min) for (let i = 0; i < inner; i++) acc[i] = xd[base + i] < acc[i] || xd[base + i] !== xd[base + i] ? xd[base + i] : acc[i];
          else if (sq) for (let i = 0; i < inner; i++) acc[i] += xd[base + i] * xd[base + i];
          else for (let i = 0; i < inner; i++) acc[i] += xd[base + i];
        }
        for (let i = 0; i < inner; i++) yd[o * inner + i] = finish(acc[i]);
      }
      return [y];
    },
  });
}

registerKernel({
  op: 'GlobalAveragePool', backend: 'js', variant: 'f32-planes',
  supports: (ins) => ins[0]?.dtype === 'float32' && ins[0].shape.length >= 3,
  async run(ins) {
    const x = ins[0]!, [N, C] = x.shape, P = sizeOf(x.shape.slice(2));
    const y = zeros('float32', [N, C, ...x.shape.slice(2).map(() => 1)]), xd = x.data as Float32Array, yd = y.data as Float32Array;
    for (let i = 0; i < N * C; i++) {
      let s = 0;
      for (let j = i * P; j < (i + 1) * P; j++) s += xd[j];
      yd[i] = s / P;
    }
    return [y];
  },
});

registerKernel({
  op: 'BatchNormalization', backend: 'js', variant: 'f32-planes',
  supports: inferenceBatchNorm,
  async run(ins, node) {
    const [x, s, b, m, v] = ins as NonNullable<Inputs[number]>[];
    const eps = attrFloat(node, 'epsilon', 1e-5), [N, C] = x.shape, P = sizeOf(x.shape.slice(2));
    const y = zeros('float32', x.shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
    for (let c = 0; c < C; c++) {
      const k = (s.data as Float32Array)[c] / Math.sqrt((v.data as Float32Array)[c] + eps);
      const off = (b.data as Float32Array)[c] - (m.data as Float32Array)[c] * k;
      for (let n = 0; n < N; n++) for (let i = (n * C + c) * P; i < (n * C + c + 1) * P; i++) yd[i] = xd[i] * k + off;
    }
    return [y];
  },
});

registerKernel({
  op: 'LayerNormalization', backend: 'js', variant: 'f32-rows',
  supports: lastAxisLayerNorm,
  async run(ins, node) {
    const x = ins[0]!, s = ins[1]!.data as Float32Array, b = ins[2]?.data as Float32Array | undefined;
    const D = s.length, rows = sizeOf(x.shape) / D, eps = attrFloat(node, 'epsilon', 1e-5);
    const y = zeros('float32', x.shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      const o = r * D;
      let mu = 0, sq = 0;
      for (let i = 0; i < D; i++) mu += xd[o + i];
      mu /= D;
      for (let i = 0; i < D; i++) sq += (xd[o + i] - mu) * (xd[o + i] - mu);
      const k = 1 / Math.sqrt(sq / D + eps);
      for (let i = 0; i < D; i++) yd[o + i] = (xd[o + i] - mu) * k * s[i] + (b ? b[i] : 0);
    }
    return [y];
  },
});

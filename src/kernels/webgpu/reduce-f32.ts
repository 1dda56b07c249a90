import { ints, sizeOf, stridesOf, type Tensor } from '../../ir/tensor.js';
import { broadcastShapes } from '../../ops/broadcast.js';
import { attrFloat, attrInt, attrInts, axisOf } from '../../ops/registry.js';
import { binary } from './eltwise-f32.js';
import { isF32, f32, MAIN, MAX_RANK, groupsFor, header, registerGpuKernel, type GpuTensor } from './gpu.js';

/**
 * Float32 reductions and normalizations on the GPU, one invocation an output element (or row):
 * Reduce* over any axes (the input read as a view with the kept axes first and the reduced ones
 * last), LayerNormalization and InstanceNormalization (two passes a row, as the reference), and the
 * variadic Sum and Mean (pairwise with broadcasting). Twins: src/ops/reduce.ts, normalization.ts, binary.ts.
 */


/** WGSL of each reduction: the start, the step on v, the finish given the count n. */
const REDUCE: Record<string, [string, string, string]> = {
  ReduceSum: ['0.0', 'a + v', 'a'],
  ReduceMean: ['0.0', 'a + v', 'a / n'],
  ReduceMax: ['-3.402823e38', 'max(a, v)', 'a'],
  ReduceMin: ['3.402823e38', 'min(a, v)', 'a'],
  ReduceProd: ['1.0', 'a * v', 'a'],
  ReduceL1: ['0.0', 'a + abs(v)', 'a'],
  ReduceL2: ['0.0', 'a + v * v', 'sqrt(a)'],
  ReduceSumSquare: ['0.0', 'a + v * v', 'a'],
  ReduceLogSum: ['0.0', 'a + v', 'log(a)'],
  ReduceLogSumExp: ['0.0', 'a + exp(v)', 'log(a)'],
};

const fill = (v: number[]) => [...new Array(MAX_RANK - v.length).fill(0), ...v];

for (const [op, [start, step, finish]] of Object.entries(REDUCE)) {
  registerGpuKernel({
    op, variant: 'f32-view-rows',
    supports: (ins) => isF32(ins[0]) && ins[0]!.shape.length >= 1 && ins[0]!.shape.length <= MAX_RANK && sizeOf(ins[0]!.shape) > 0 && (!ins[1] || ins[1].data !== undefined),
    run(ins, node, _ctx, run) {
      const x = run.onDevice(ins[0]!), r = x.shape.length;
      const given = ins[1] ? ints(ins[1] as Tensor) : attrInts(node, 'axes');
      const axes = !given || given.length === 0
        ? (attrInt(node, 'noop_with_empty_axes', 0) === 1 ? [] : x.shape.map((_, i) => i))
        : [...new Set(given.map((a) => axisOf(node, a, r, 'axes')))].sort((a, b) => a - b);
      const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const order = [...keptAxes, ...axes], st = stridesOf(x.shape);
      const outs = sizeOf(keptAxes.map((a) => x.shape[a])), R = sizeOf(axes.map((a) => x.shape[a]));
      const shape = attrInt(node, 'keepdims', 1) === 1 ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : keptAxes.map((a) => x.shape[a]);
      const y = run.tensor(shape);
      run.dispatch(`reduce-f32/${op}`, () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  let R = P[1]; let n = f32(R);
  var a = ${start};
  for (var k = 0u; k < R; k++) {
    var rem = i * R + k; var at = 0u;
    for (var d = ${MAX_RANK - 1}; d >= 0; d--) {
      let dim = P[2 + d];
      if (dim == 0u) { break; }
      at += (rem % dim) * P[${2 + MAX_RANK} + d];
      rem = rem / dim;
    }
    let v = X0[at];
    a = ${step};
  }
  Y[i] = ${finish};
}`, [outs, R, ...fill(order.map((a) => x.shape[a])), ...fill(order.map((a) => st[a]))], [x.buffer, y.buffer], groupsFor(outs));
      return [y];
    },
  });
}

/** Normalizes `rows` rows of `inner` values: (x - mean) / sqrt(var + eps) * scale[i % S] + bias[i % S] (or per row / C for instance norm). */
const NORMALIZE = (perRow: boolean) => `${header(3)}
${MAIN}
  if (i >= P[0]) { return; }
  let inner = P[1]; let base = i * inner; let eps = bitcast<f32>(P[2]);
  var mu = 0.0;
  for (var k = 0u; k < inner; k++) { mu += X0[base + k]; }
  mu = mu / f32(inner);
  var sq = 0.0;
  for (var k = 0u; k < inner; k++) { let d = X0[base + k] - mu; sq += d * d; }
  let inv = 1.0 / sqrt(sq / f32(inner) + eps);
  for (var k = 0u; k < inner; k++) {
    let j = ${perRow ? 'i % P[3]' : 'k'};
    Y[base + k] = (X0[base + k] - mu) * inv * X1[j] + X2[j];
  }
}`;

registerGpuKernel({
  op: 'LayerNormalization', variant: 'f32-rows',
  supports: (ins, node) => {
    const [x, s, b] = ins;
    if (!isF32(x) || !isF32(s) || (b && !isF32(b)) || node.outputs.length !== 1 || !x!.shape.length) return false;
    const axis = axisOf(node, attrInt(node, 'axis', -1), x!.shape.length), inner = sizeOf(x!.shape.slice(axis));
    // Scale and bias of the normalized shape itself (as models have them).
    return sizeOf(s!.shape) === inner && (!b || sizeOf(b.shape) === inner);
  },
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!), s = run.onDevice(ins[1]!);
    const axis = axisOf(node, attrInt(node, 'axis', -1), x.shape.length), inner = sizeOf(x.shape.slice(axis)), rows = sizeOf(x.shape.slice(0, axis));
    const b = ins[2] ? run.onDevice(ins[2]).buffer : run.constantArray(zerosOf(inner));
    const y = run.tensor(x.shape.slice());
    run.dispatch('layernorm-f32', () => NORMALIZE(false), [rows, inner, f32(attrFloat(node, 'epsilon', 1e-5))], [x.buffer, s.buffer, b, y.buffer], groupsFor(rows));
    return [y];
  },
});

/** Zero biases by length, kept (the constant cache holds them by array). */
const zeroArrays = new Map<number, Float32Array>();
function zerosOf(n: number): Float32Array {
  let z = zeroArrays.get(n);
  if (!z) zeroArrays.set(n, (z = new Float32Array(n)));
  return z;
}

registerGpuKernel({
  op: 'InstanceNormalization', variant: 'f32-rows',
  supports: (ins) => isF32(ins[0]) && isF32(ins[1]) && isF32(ins[2]) && ins[0]!.shape.length >= 3
    && sizeOf(ins[1]!.shape) === ins[0]!.shape[1] && sizeOf(ins[2]!.shape) === ins[0]!.shape[1],
  run(ins, node, _ctx, run) {
    const [x, s, b] = ins.map((t) => run.onDevice(t!));
    const [N, C] = x.shape, inner = sizeOf(x.shape.slice(2));
    const y = run.tensor(x.shape.slice());
    run.dispatch('instancenorm-f32', () => NORMALIZE(true), [N * C, inner, f32(attrFloat(node, 'epsilon', 1e-5)), C], [x.buffer, s.buffer, b.buffer, y.buffer], groupsFor(N * C));
    return [y];
  },
});

/** Sum and Mean of any number of inputs with broadcasting: pairwise adds, the mean scaled at the end. */
for (const op of ['Sum', 'Mean']) {
  registerGpuKernel({
    op, variant: 'f32-pairwise',
    supports: (ins) => ins.length >= 1 && ins.every((t) => isF32(t) && t!.shape.length <= MAX_RANK),
    run(ins, node, _ctx, run) {
      const xs = ins.map((t) => run.onDevice(t!));
      const shape = broadcastShapes(node, xs.map((x) => x.shape));
      let acc = xs[0];
      for (let i = 1; i < xs.length; i++) {
        const next = binary(run, 'Add', acc, xs[i], broadcastShapes(node, [acc.shape, xs[i].shape]));
        if (i > 1) run.free(acc.buffer);
        acc = next;
      }
      if (op === 'Mean' || xs.length === 1) {
        // A copy (one input) or the mean's scale, as a broadcast with a scalar.
        const k: GpuTensor = { dtype: 'float32', shape: [], buffer: run.constantArray(scalar(op === 'Mean' ? 1 / xs.length : 1)), gpu: true };
        const y = binary(run, 'Mul', acc, k, shape);
        if (xs.length > 1) run.free(acc.buffer);
        acc = y;
      }
      return [acc];
    },
  });
}

const scalars = new Map<number, Float32Array>();
function scalar(v: number): Float32Array {
  let s = scalars.get(v);
  if (!s) scalars.set(v, (s = Float32Array.of(v)));
  return s;
}

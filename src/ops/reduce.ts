import { fromNumbers, ints, numbers, sizeOf, stridesOf, type Tensor } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { attrInt, attrInts, axisOf, checkDType, defineOp, fail, need, type Inputs } from './registry.js';

/** Per reduction: the start value, the step, and the finish given the count. */
const REDUCE: Record<string, [number, (acc: number, v: number) => number, (acc: number, n: number) => number]> = {
  ReduceSum: [0, (a, v) => a + v, (a) => a],
  ReduceMean: [0, (a, v) => a + v, (a, n) => a / n],
  ReduceMax: [-Infinity, (a, v) => (v > a || Number.isNaN(v) ? v : a), (a) => a],
  ReduceMin: [Infinity, (a, v) => (v < a || Number.isNaN(v) ? v : a), (a) => a],
  ReduceProd: [1, (a, v) => a * v, (a) => a],
  ReduceL1: [0, (a, v) => a + Math.abs(v), (a) => a],
  ReduceL2: [0, (a, v) => a + v * v, (a) => Math.sqrt(a)],
  ReduceSumSquare: [0, (a, v) => a + v * v, (a) => a],
  ReduceLogSum: [0, (a, v) => a + v, (a) => Math.log(a)],
  ReduceLogSumExp: [0, (a, v) => a + Math.exp(v), (a) => Math.log(a)],
};

/**
 * Reduced axes (sorted, non-negative): from the input (ReduceSum 13+, all 18+) or the attribute. An axis out of
 * range fails the node, or with `check` false stays out of range for the caller to refuse.
 */
function axesOf(ins: Inputs, node: Node, r: number, check = true): number[] {
  const given = ins[1] ? ints(ins[1]) : attrInts(node, 'axes');
  if (!given || given.length === 0) return attrInt(node, 'noop_with_empty_axes', 0) === 1 ? [] : Array.from({ length: r }, (_, i) => i);
  return [...new Set(given.map((a) => (check ? axisOf(node, a, r, 'axes') : a < 0 ? a + r : a)))].sort((a, b) => a - b);
}

/**
 * A float32 reduction whose axes are one contiguous run, as x[outer][R][inner] (R the reduced cells), and
 * its output shape; undefined for any other (the fast kernels' test: never throws, the op reports errors).
 */
export function contiguousRun(ins: Inputs, node: Node): { outer: number; R: number; inner: number; shape: number[] } | undefined {
  const x = ins[0];
  if (x?.dtype !== 'float32' || (ins[1] && ins[1].dtype !== 'int64' && ins[1].dtype !== 'int32') || sizeOf(x.shape) === 0) return undefined;
  const r = x.shape.length, axes = axesOf(ins, node, r, false);
  if (axes.length === 0 || !axes.every((a, i) => a >= 0 && a < r && (i === 0 || a === axes[i - 1] + 1))) return undefined;
  const a0 = axes[0], a1 = axes[axes.length - 1] + 1;
  const shape = attrInt(node, 'keepdims', 1) ? x.shape.map((d, i) => (i >= a0 && i < a1 ? 1 : d)) : x.shape.filter((_, i) => i < a0 || i >= a1);
  return { outer: sizeOf(x.shape.slice(0, a0)), R: sizeOf(x.shape.slice(a0, a1)), inner: sizeOf(x.shape.slice(a1)), shape };
}

/**
 * Calls f(outIndex, inputIndex) for every input element, mapping it to the output cell it
 * reduces into; returns the output's shape with and without the reduced axes.
 */
export function reduceMap(x: Tensor, axes: number[]): { kept: number[]; index: Int32Array } {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const ks = stridesOf(kept), n = sizeOf(x.shape), st = stridesOf(x.shape);
  const index = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i, o = 0;
    for (let a = 0; a < x.shape.length; a++) {
      const c = Math.floor(rem / st[a]);
      rem -= c * st[a];
      if (!axes.includes(a)) o += c * ks[a];
    }
    index[i] = o;
  }
  return { kept, index };
}

for (const [op, [start, step, finish]] of Object.entries(REDUCE)) {
  defineOp({
    op, inputs: [1, 2],
    run(ins, node) {
      const x = need(ins, 0, node);
      checkDType(node, x, ['float32', 'int32', 'int64', 'uint8', 'int8']);
      const r = x.shape.length, axes = axesOf(ins, node, r);
      const { kept, index } = reduceMap(x, axes);
      const m = sizeOf(kept), acc = new Float64Array(m).fill(start), v = numbers(x);
      for (let i = 0; i < v.length; i++) acc[index[i]] = step(acc[index[i]], v[i]);
      const count = sizeOf(x.shape) / Math.max(m, 1);
      for (let i = 0; i < m; i++) acc[i] = finish(acc[i], count);
      const shape = attrInt(node, 'keepdims', 1) === 1 ? kept : x.shape.filter((_, i) => !axes.includes(i));
      if (sizeOf(x.shape) === 0 && (op === 'ReduceMax' || op === 'ReduceMin') && m > 0) fail(node, 'reduces an empty tensor');
      return [fromNumbers(x.dtype, shape, acc)];
    },
  });
}

for (const op of ['ArgMax', 'ArgMin']) {
  defineOp({
    op, inputs: [1, 1],
    run(ins, node) {
      const x = need(ins, 0, node), r = x.shape.length;
      const axis = axisOf(node, attrInt(node, 'axis', 0), r);
      const last = attrInt(node, 'select_last_index', 0) === 1;
      const D = x.shape[axis], inner = sizeOf(x.shape.slice(axis + 1)), outer = sizeOf(x.shape.slice(0, axis));
      const v = numbers(x), out = new Float64Array(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let best = 0;
          for (let d = 1; d < D; d++) {
            const a = v[(o * D + d) * inner + i], b = v[(o * D + best) * inner + i];
            if (op === 'ArgMax' ? a > b || (last && a === b) : a < b || (last && a === b)) best = d;
          }
          out[o * inner + i] = best;
        }
      }
      const shape = attrInt(node, 'keepdims', 1) === 1 ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
      return [fromNumbers('int64', shape, out)];
    },
  });
}

defineOp({
  op: 'TopK', inputs: [1, 2],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length;
    const k = ins[1] ? ints(ins[1])[0] : attrInt(node, 'k', -1);
    const axis = axisOf(node, attrInt(node, 'axis', -1), r);
    const D = x.shape[axis];
    if (!(k >= 0 && k <= D)) fail(node, `k ${k} is outside [0, ${D}]`);
    const largest = attrInt(node, 'largest', 1) === 1;
    const inner = sizeOf(x.shape.slice(axis + 1)), outer = sizeOf(x.shape.slice(0, axis));
    const v = numbers(x), vals = new Float64Array(outer * k * inner), idx = new Float64Array(outer * k * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const order = Array.from({ length: D }, (_, d) => d);
        const at = (d: number) => v[(o * D + d) * inner + i];
        // Ties keep the lower index first, as onnxruntime does.
        order.sort((p, q) => (largest ? at(q) - at(p) : at(p) - at(q)) || p - q);
        for (let j = 0; j < k; j++) {
          vals[(o * k + j) * inner + i] = at(order[j]);
          idx[(o * k + j) * inner + i] = order[j];
        }
      }
    }
    const shape = x.shape.map((d, a) => (a === axis ? k : d));
    return [fromNumbers(x.dtype, shape, vals), fromNumbers('int64', shape, idx)];
  },
});

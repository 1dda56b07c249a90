import type { Node } from '../ir/graph.js';
import { numbers, sizeOf, stridesOf, zeros, type Tensor } from '../ir/tensor.js';
import { elementOffset } from './gather.js';
import { attrInt, attrStr, axisOf, checkDType, defineOp, fail, indexIn, need } from './registry.js';

/**
 * How an update meets the value already there. Written once for numbers and bigints: int64 data
 * is a BigInt64Array and these operators work on both.
 */
type Combine = (a: number, b: number) => number;
const REDUCTIONS: Record<string, Combine> = {
  none: (_, b) => b,
  add: (a, b) => a + b,
  mul: (a, b) => a * b,
  max: (a, b) => (a > b ? a : b),
  min: (a, b) => (a < b ? a : b),
};

/** The data, copied, with the updates' dtype checked: every scatter writes into a fresh output. */
function start(node: Node, x: Tensor, ix: Tensor, up: Tensor): { out: Tensor; combine: Combine } {
  checkDType(node, ix, ['int32', 'int64'], 'indices');
  if (up.dtype !== x.dtype) fail(node, `updates are ${up.dtype}, data ${x.dtype}; they must have one dtype`);
  const reduction = attrStr(node, 'reduction', 'none', Object.keys(REDUCTIONS));
  if (reduction !== 'none' && x.dtype === 'bool') fail(node, `reduction ${reduction} on bool data`);
  const out = zeros(x.dtype, x.shape.slice());
  (out.data as Float32Array).set(x.data as Float32Array);
  return { out, combine: REDUCTIONS[reduction] };
}

/** ScatterND: each index tuple in the last axis of indices picks a slice of data that takes its updates. */
defineOp({
  op: 'ScatterND', inputs: [3, 3],
  run(ins, node) {
    const x = need(ins, 0, node), ix = need(ins, 1, node), up = need(ins, 2, node);
    const { out, combine } = start(node, x, ix, up);
    const r = x.shape.length, q = ix.shape.length, k = ix.shape[q - 1];
    if (q < 1 || k > r) fail(node, `indices [${ix.shape}] do not index data [${x.shape}]`);
    const want = [...ix.shape.slice(0, q - 1), ...x.shape.slice(k)];
    if (up.shape.length !== want.length || up.shape.some((d, i) => d !== want[i])) fail(node, `updates are [${up.shape}]; indices [${ix.shape}] into data [${x.shape}] need [${want}]`);
    const xs = stridesOf(x.shape), v = numbers(ix), tuples = sizeOf(ix.shape.slice(0, q - 1)), inner = sizeOf(x.shape.slice(k));
    const d = out.data as Float32Array, u = up.data as Float32Array;
    for (let t = 0; t < tuples; t++) {
      let off = 0;
      for (let j = 0; j < k; j++) off += indexIn(node, v[t * k + j], x.shape[j]) * xs[j];
      for (let i = 0; i < inner; i++) d[off + i] = combine(d[off + i], u[t * inner + i]);
    }
    return [out];
  },
});

/** ScatterElements (and opset 9's Scatter): updates[i] goes to data at i with its axis coordinate replaced by indices[i]. */
for (const op of ['ScatterElements', 'Scatter']) {
  defineOp({
    op, inputs: [3, 3],
    run(ins, node) {
      const x = need(ins, 0, node), ix = need(ins, 1, node), up = need(ins, 2, node);
      const { out, combine } = start(node, x, ix, up);
      const r = x.shape.length;
      if (ix.shape.length !== r || up.shape.length !== r || ix.shape.some((n, a) => n !== up.shape[a] || n > x.shape[a])) {
        fail(node, `indices [${ix.shape}] and updates [${up.shape}] must have one shape, within data [${x.shape}] on every axis`);
      }
      const axis = axisOf(node, attrInt(node, 'axis', 0), r);
      const xs = stridesOf(x.shape), is = stridesOf(ix.shape), v = numbers(ix), D = x.shape[axis];
      const d = out.data as Float32Array, u = up.data as Float32Array;
      for (let i = 0; i < v.length; i++) {
        const p = elementOffset(node, i, is, xs, axis, v[i], D);
        d[p] = combine(d[p], u[i]);
      }
      return [out];
    },
  });
}

import type { Node } from '../ir/graph.js';
import { numbers, sizeOf, stridesOf } from '../ir/tensor.js';
import { take } from './take.js';
import { attrInt, axisOf, checkDType, defineOp, fail, indexIn, need } from './registry.js';

defineOp({
  op: 'Gather', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), ix = need(ins, 1, node);
    checkDType(node, ix, ['int32', 'int64'], 'indices');
    const axis = axisOf(node, attrInt(node, 'axis', 0), x.shape.length);
    const D = x.shape[axis], outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1));
    const v = numbers(ix), K = v.length;
    const idx = new Int32Array(outer * K * inner);
    let p = 0;
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < K; k++) {
        const base = (o * D + indexIn(node, v[k], D)) * inner;
        for (let i = 0; i < inner; i++) idx[p++] = base + i;
      }
    }
    return [take(x, [...x.shape.slice(0, axis), ...ix.shape, ...x.shape.slice(axis + 1)], idx)];
  },
});

/**
 * Where element i of an indices tensor (strides `is`) points in data (strides `xs`): its own
 * coordinates, with the one on `axis` replaced by index v (GatherElements, ScatterElements).
 */
export function elementOffset(node: Node, i: number, is: number[], xs: number[], axis: number, v: number, D: number): number {
  let p = 0, rem = i;
  for (let a = 0; a < is.length; a++) {
    const c = Math.floor(rem / is[a]);
    rem -= c * is[a];
    p += (a === axis ? indexIn(node, v, D) : c) * xs[a];
  }
  return p;
}

defineOp({
  op: 'GatherElements', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), ix = need(ins, 1, node);
    checkDType(node, ix, ['int32', 'int64'], 'indices');
    const r = x.shape.length;
    if (ix.shape.length !== r) fail(node, `indices have rank ${ix.shape.length}, data ${r}`);
    const axis = axisOf(node, attrInt(node, 'axis', 0), r);
    const xs = stridesOf(x.shape), is = stridesOf(ix.shape), v = numbers(ix), D = x.shape[axis];
    const idx = new Int32Array(v.length);
    for (let i = 0; i < v.length; i++) idx[i] = elementOffset(node, i, is, xs, axis, v[i], D);
    return [take(x, ix.shape.slice(), idx)];
  },
});

/** GatherND: index tuples into the leading axes of data (after batch_dims shared axes). */
defineOp({
  op: 'GatherND', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), ix = need(ins, 1, node);
    checkDType(node, ix, ['int32', 'int64'], 'indices');
    const b = attrInt(node, 'batch_dims', 0), r = x.shape.length, q = ix.shape.length;
    const k = ix.shape[q - 1];
    if (b < 0 || b >= Math.min(r, q) || k === undefined || k > r - b || ix.shape.slice(0, b).some((d, i) => d !== x.shape[i])) fail(node, `indices [${ix.shape}] do not index data [${x.shape}] with batch_dims ${b}`);
    const xs = stridesOf(x.shape), v = numbers(ix);
    const batch = sizeOf(x.shape.slice(0, b)), tuples = sizeOf(ix.shape.slice(b, q - 1)), inner = sizeOf(x.shape.slice(b + k));
    const idx = new Int32Array(batch * tuples * inner);
    let p = 0;
    for (let bi = 0; bi < batch; bi++) {
      for (let t = 0; t < tuples; t++) {
        let off = bi * (b ? xs[b - 1] : 0);
        for (let j = 0; j < k; j++) {
          off += indexIn(node, v[((bi * tuples + t) * k) + j], x.shape[b + j]) * xs[b + j];
        }
        for (let i = 0; i < inner; i++) idx[p++] = off + i;
      }
    }
    return [take(x, [...ix.shape.slice(0, q - 1), ...x.shape.slice(b + k)], idx)];
  },
});

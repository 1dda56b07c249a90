import { ints, sizeOf, zeros } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { attrInt, attrInts, axisOf, defineOp, fail, need, type Inputs } from './registry.js';
import { take } from './take.js';

defineOp({
  op: 'Concat', inputs: [1, 1 << 12],
  run(ins, node) {
    const xs = ins.map((t, i) => t ?? need(ins, i, node));
    const r = xs[0].shape.length;
    const axis = axisOf(node, attrInt(node, 'axis', 0) ?? fail(node, 'needs axis'), r);
    const shape = xs[0].shape.slice();
    shape[axis] = 0;
    for (const x of xs) {
      if (x.dtype !== xs[0].dtype || x.shape.length !== r || x.shape.some((d, i) => i !== axis && d !== xs[0].shape[i])) {
        fail(node, `cannot concatenate ${x.dtype} [${x.shape}] to ${xs[0].dtype} [${xs[0].shape}] on axis ${axis}`);
      }
      shape[axis] += x.shape[axis];
    }
    const out = zeros(xs[0].dtype, shape);
    const outer = sizeOf(shape.slice(0, axis)), row = sizeOf(shape.slice(axis));
    let at = 0;
    for (const x of xs) {
      const chunk = sizeOf(x.shape.slice(axis));
      const src = x.data as Float32Array, dst = out.data as Float32Array;
      for (let o = 0; o < outer; o++) dst.set(src.subarray(o * chunk, (o + 1) * chunk), o * row + at);
      at += chunk;
    }
    return [out];
  },
});

/** The sizes Split cuts axis `axis` (of D) into: from its second input or attribute, else equal parts; or why it cannot. */
export function splitParts(ins: Inputs, node: Node, D: number): number[] | string {
  const n = node.outputs.length;
  let parts = ins[1] ? ints(ins[1]) : attrInts(node, 'split');
  if (!parts) {
    // Equal parts; with num_outputs (opset 18) the last may be smaller.
    const k = Math.ceil(D / n);
    if (node.attrs.num_outputs === undefined && D % n !== 0) return `axis of ${D} does not split into ${n} equal parts`;
    parts = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(k, D - i * k)));
  }
  if (parts.length !== n || parts.some((p) => p < 0) || parts.reduce((a, b) => a + b, 0) !== D) return `split [${parts}] does not cut ${D} into ${n} parts`;
  return parts;
}

defineOp({
  op: 'Split', inputs: [1, 2],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length;
    const axis = axisOf(node, attrInt(node, 'axis', 0), r), D = x.shape[axis];
    const parts = splitParts(ins, node, D);
    if (typeof parts === 'string') fail(node, parts);
    const outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1));
    let at = 0;
    return parts.map((p) => {
      const idx = new Int32Array(outer * p * inner);
      let q = 0;
      for (let o = 0; o < outer; o++) for (let i = 0; i < p * inner; i++) idx[q++] = (o * D + at) * inner + i;
      at += p;
      const shape = x.shape.slice();
      shape[axis] = p;
      return take(x, shape, idx);
    });
  },
});

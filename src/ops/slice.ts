import type { Node } from '../ir/graph.js';
import { ints, stridesOf } from '../ir/tensor.js';
import { take, viewIndex } from './take.js';
import { attrInts, axisOf, defineOp, fail, need } from './registry.js';

/** The strided view a Slice takes: its shape, the first element's offset and each axis's step in elements. */
export function sliceView(dims: number[], starts: number[], ends: number[], axes: number[], steps: number[], node: Node): { shape: number[]; offset: number; strides: number[] } {
  const shape = dims.slice(), st = stridesOf(dims), strides = st.slice();
  let offset = 0;
  axes.forEach((a, i) => {
    const d = dims[a], step = steps[i];
    if (step === 0) fail(node, 'a step is 0');
    const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v < 0 ? v + d : v));
    const s = step > 0 ? clamp(starts[i], 0, d) : clamp(starts[i], -1, d - 1);
    const e = step > 0 ? clamp(ends[i], 0, d) : clamp(ends[i], -1, d - 1);
    shape[a] = Math.max(0, Math.ceil((e - s) / step));
    offset += (shape[a] > 0 ? s : 0) * st[a];
    strides[a] = st[a] * step;
  });
  return { shape, offset, strides };
}

defineOp({
  op: 'Slice', inputs: [1, 5],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length;
    // Opset 10 on: starts, ends, axes, steps as inputs; before: attributes.
    const starts = ins[1] ? ints(ins[1]) : attrInts(node, 'starts') ?? fail(node, 'needs starts');
    const ends = ins[2] ? ints(ins[2]) : attrInts(node, 'ends') ?? fail(node, 'needs ends');
    const axes = (ins[3] ? ints(ins[3]) : attrInts(node, 'axes') ?? starts.map((_, i) => i)).map((a) => axisOf(node, a, r));
    const steps = ins[4] ? ints(ins[4]) : starts.map(() => 1);
    if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) fail(node, 'starts, ends, axes and steps differ in length');
    const { shape, offset, strides } = sliceView(x.shape, starts, ends, axes, steps, node);
    return [take(x, shape, viewIndex(shape, offset, strides))];
  },
});

import type { Node } from '../ir/graph.js';
import { ints, sizeOf } from '../ir/tensor.js';
import type { Inputs } from '../ops/registry.js';
import { sliceView } from '../ops/slice.js';

/** Strided views shared by the fast data-movement kernels (js/movement.ts, wasm/transpose.ts); their twins are the ops' own. */

/** A view's axes (sizes and source strides) with those that continue one another in the source merged into one (a channel slice of NCHW is a few long runs). */
export function mergedAxes(outShape: number[], outStrides: number[]): { shape: number[]; strides: number[] } {
  const shape: number[] = [], strides: number[] = [];
  outShape.forEach((d, a) => {
    const last = shape.length - 1;
    if (last >= 0 && strides[last] === outStrides[a] * d) {
      shape[last] *= d;
      strides[last] = outStrides[a];
    } else {
      shape.push(d);
      strides.push(outStrides[a]);
    }
  });
  return { shape, strides };
}

/** The permutation a Transpose node applies to a tensor of rank r (reversal by default, _swapLast: the last two axes). */
export function permOf(node: Node, r: number): number[] | undefined {
  const p = node.attrs._swapLast === 1 && r >= 2 ? Array.from({ length: r }, (_, i) => (i < r - 2 ? i : 2 * r - 3 - i))
    : (node.attrs.perm as number[] | undefined) ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  return Array.isArray(p) && p.length === r && [...p].sort((a, b) => a - b).every((v, i) => v === i) ? p : undefined;
}

/** A Slice the strided kernels take: opset 10 on (starts, ends, axes, steps as inputs; the reference handles the attribute form). */
export function sliceByInputs(ins: Inputs): boolean {
  const x = ins[0];
  return !!x && !!ins[1] && !!ins[2] && x.shape.length >= 1 && sizeOf(x.shape) > 0 && ints(ins[1]).length === ints(ins[2]).length
    && (!ins[3] || ints(ins[3]).every((a) => a >= -x.shape.length && a < x.shape.length)) && (!ins[4] || ints(ins[4]).every((v) => v !== 0));
}

/** The view such a Slice takes of its input: output shape, first element, strides. */
export function sliceOf(ins: Inputs, node: Node): { shape: number[]; offset: number; strides: number[] } {
  const r = ins[0]!.shape.length, starts = ints(ins[1]!), ends = ints(ins[2]!);
  const axes = (ins[3] ? ints(ins[3]) : starts.map((_, i) => i)).map((a) => (a < 0 ? a + r : a));
  const steps = ins[4] ? ints(ins[4]) : starts.map(() => 1);
  return sliceView(ins[0]!.shape, starts, ends, axes, steps, node);
}

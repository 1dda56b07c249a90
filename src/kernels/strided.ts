import type { Node } from '../ir/graph.js';

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

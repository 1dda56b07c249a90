import type { Node } from '../ir/graph.js';
import { sizeOf, stridesOf, zeros } from '../ir/tensor.js';
import { attrStr, checkDType, defineOp, fail, need } from './registry.js';

/**
 * An Einsum equation with each input's axes named: a letter per axis, and the axes an ellipsis stands
 * for named '0', '1', ... (counted from the right, so that they broadcast as numpy's do).
 */
export interface EinsumSpec {
  inputs: string[][];
  output: string[];
}

/**
 * Parses `equation` for inputs of the given ranks: explicit ('ij,jk->ik') or implicit ('ij,jk': the
 * letters used once, in alphabetical order, after any ellipsis axes). Spaces are ignored, as numpy does.
 */
export function parseEinsum(node: Node, equation: string, ranks: number[]): EinsumSpec {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  if (eq.split('->').length > 2) fail(node, `equation "${equation}" has more than one "->"`);
  const terms = lhs.split(',');
  if (terms.length !== ranks.length) fail(node, `equation "${equation}" names ${terms.length} inputs, ${ranks.length} given`);
  let ellipsis = 0;
  const named = (term: string, rank: number | undefined): string[] => {
    const parts = term.split('...');
    if (parts.length > 2) fail(node, `"${term}" has more than one ellipsis`);
    for (const c of parts.join('')) if (!/[A-Za-z]/.test(c)) fail(node, `"${term}": subscripts are letters and one "..." (got "${c}")`);
    if (parts.length === 1) {
      if (rank !== undefined && term.length !== rank) fail(node, `"${term}" names ${term.length} axes of an input of rank ${rank}`);
      return [...term];
    }
    const n = rank === undefined ? ellipsis : rank - parts[0].length - parts[1].length;
    if (n < 0) fail(node, `"${term}" names more axes than its input's ${rank}`);
    ellipsis = Math.max(ellipsis, n);
    return [...parts[0], ...Array.from({ length: n }, (_, i) => String(n - 1 - i)), ...parts[1]];
  };
  const inputs = terms.map((t, i) => named(t, ranks[i]));
  if (rhs !== undefined) {
    const output = named(rhs, undefined);
    const seen = new Set<string>();
    for (const l of output) {
      if (seen.has(l)) fail(node, `output "${rhs}" repeats "${l}"`);
      if (!inputs.some((t) => t.includes(l))) fail(node, `output "${rhs}" names "${l}", which no input has`);
      seen.add(l);
    }
    return { inputs, output };
  }
  const count = new Map<string, number>();
  for (const t of inputs) for (const l of t) count.set(l, (count.get(l) ?? 0) + 1);
  const dots = Array.from({ length: ellipsis }, (_, i) => String(ellipsis - 1 - i));
  const once = [...count].filter(([l, k]) => k === 1 && /[A-Za-z]/.test(l)).map(([l]) => l).sort();
  return { inputs, output: [...dots, ...once] };
}

/** The size of each named axis: equal wherever a letter appears, ellipsis axes broadcasting (1 or the same size). */
export function einsumSizes(node: Node, spec: EinsumSpec, shapes: number[][]): Map<string, number> {
  const size = new Map<string, number>();
  spec.inputs.forEach((t, i) => t.forEach((l, a) => {
    const d = shapes[i][a], had = size.get(l);
    const broadcast = /[0-9]/.test(l) && (had === 1 || d === 1);
    if (had !== undefined && had !== d && !broadcast) fail(node, `axis "${l}" is ${had} in one place and ${d} in another`);
    if (had === undefined || had === 1) size.set(l, d);
  }));
  return size;
}

defineOp({
  op: 'Einsum', inputs: [1, 1 << 10],
  run(ins, node) {
    const xs = ins.map((t, i) => t ?? need(ins, i, node));
    for (const x of xs) checkDType(node, x, ['float32', 'int32']);
    if (xs.some((x) => x.dtype !== xs[0].dtype)) fail(node, `inputs of ${xs.map((x) => x.dtype).join(', ')}: they must have one dtype`);
    const spec = parseEinsum(node, attrStr(node, 'equation', ''), xs.map((x) => x.shape.length));
    const size = einsumSizes(node, spec, xs.map((x) => x.shape));
    // Every named axis, the output's first: one odometer over them all, each input's offset kept by strides.
    const summed = [...size.keys()].filter((l) => !spec.output.includes(l));
    const order = [...spec.output, ...summed], dims = order.map((l) => size.get(l)!);
    const strides = xs.map((x, i) => {
      const s = stridesOf(x.shape);
      // A letter named twice in one input (a diagonal) steps both axes; a broadcast axis not at all.
      return order.map((l) => spec.inputs[i].reduce((acc, m, a) => acc + (m === l && x.shape[a] !== 1 ? s[a] : 0), 0));
    });
    const y = zeros(xs[0].dtype, spec.output.map((l) => size.get(l)!));
    const out = y.data as Float32Array | Int32Array, inner = sizeOf(summed.map((l) => size.get(l)!));
    const data = xs.map((x) => x.data as Float32Array | Int32Array);
    const at = new Array<number>(xs.length).fill(0), idx = new Array<number>(order.length).fill(0);
    const integer = xs[0].dtype === 'int32';
    for (let o = 0; o < out.length; o++) {
      let s = 0;
      for (let k = 0; k < inner; k++) {
        let p = integer ? 1 : 1.0;
        for (let i = 0; i < xs.length; i++) p = integer ? Math.imul(p, data[i][at[i]]) : p * data[i][at[i]];
        s = integer ? (s + p) | 0 : s + p;
        // Next position: the last axis fastest, carrying leftwards.
        for (let a = order.length - 1; a >= 0; a--) {
          if (++idx[a] < dims[a]) {
            for (let i = 0; i < xs.length; i++) at[i] += strides[i][a];
            break;
          }
          idx[a] = 0;
          for (let i = 0; i < xs.length; i++) at[i] -= strides[i][a] * (dims[a] - 1);
        }
      }
      out[o] = s;
    }
    return [y];
  },
});

import type { Node } from '../ir/graph.js';
import { fromNumbers, numbers, sizeOf, zeros, type DType, type Tensor } from '../ir/tensor.js';
import { fail } from './registry.js';

/** Numpy broadcasting of several shapes, or an OpError naming the node. */
export function broadcastShapes(node: Node, shapes: number[][]): number[] {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    let d = 1;
    for (const s of shapes) {
      const x = s[s.length - r + i] ?? 1;
      if (x === d || x === 1) continue;
      if (d !== 1) fail(node, `shapes ${shapes.map((q) => `[${q}]`).join(' and ')} do not broadcast`);
      d = x;
    }
    out.push(shapes.some((s) => (s[s.length - r + i] ?? 1) === 0) ? 0 : d);
  }
  return out;
}

/**
 * For every output element of a broadcast, the index it reads in an input of shape `s`
 * (an odometer over the output: one step per element, no division).
 */
export function broadcastIndex(out: number[], s: number[]): Int32Array {
  const n = sizeOf(out), r = out.length;
  const idx = new Int32Array(n);
  const st = new Array<number>(r).fill(0);
  let k = 1;
  for (let i = r - 1; i >= 0; i--) {
    const d = s[s.length - r + i] ?? 1;
    st[i] = d === 1 ? 0 : k;
    k *= d;
  }
  const ctr = new Array<number>(r).fill(0);
  let p = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = p;
    for (let a = r - 1; a >= 0; a--) {
      p += st[a];
      if (++ctr[a] < out[a]) break;
      p -= st[a] * out[a];
      ctr[a] = 0;
    }
  }
  return idx;
}

/** Elementwise f over inputs broadcast together, computed on numbers, stored as `dtype`. */
export function mapBroadcast(node: Node, ins: Tensor[], dtype: DType, f: (...v: number[]) => number): Tensor {
  const shape = broadcastShapes(node, ins.map((t) => t.shape));
  const n = sizeOf(shape);
  const vals = ins.map(numbers);
  const same = ins.every((t) => sizeOf(t.shape) === n);
  const idx = same ? [] : ins.map((t) => (sizeOf(t.shape) === n ? null : broadcastIndex(shape, t.shape)));
  // Typed arrays store as the dtype does (integers truncate and wrap); int64 goes through numbers.
  const out = dtype === 'int64' ? null : zeros(dtype, shape);
  const res: { [i: number]: number; length: number } = out ? (out.data as Float32Array) : new Float64Array(n);
  if (ins.length === 2) {
    const [a, b] = vals, ia = idx[0], ib = idx[1];
    if (!ia && !ib) for (let i = 0; i < n; i++) res[i] = f(a[i], b[i]);
    else for (let i = 0; i < n; i++) res[i] = f(a[ia ? ia[i] : i], b[ib ? ib[i] : i]);
  } else {
    const args = new Array<number>(ins.length);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < ins.length; j++) args[j] = vals[j][idx[j] ? idx[j]![i] : i];
      res[i] = f(...args);
    }
  }
  return out ?? fromNumbers(dtype, shape, res as Float64Array);
}

import type { Node } from '../ir/graph.js';
import { fromNumbers, numbers, sizeOf, zeros, type DType, type Tensor } from '../ir/tensor.js';
import { fail } from './registry.js';
import { viewIndex } from './take.js';

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

/** Strides of shape `s` read as rank r (missing leading axes and axes of size 1 step 0). */
function broadcastStrides(r: number, s: number[]): number[] {
  const st = new Array<number>(r).fill(0);
  let k = 1;
  for (let i = r - 1; i >= 0; i--) {
    const d = s[s.length - r + i] ?? 1;
    st[i] = d === 1 ? 0 : k;
    k *= d;
  }
  return st;
}

/** For every output element of a broadcast, the index it reads in an input of shape `s`. */
export function broadcastIndex(out: number[], s: number[]): Int32Array {
  return viewIndex(out, 0, broadcastStrides(out.length, s));
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

/**
 * A broadcast of two shapes as runs: the output's axes merged wherever both operands stay
 * contiguous (or both repeat), then an odometer over all but the last merged axis.
 */
export function broadcastRuns(out: number[], as: number[], bs: number[], f: (yo: number, ao: number, sa: number, bo: number, sb: number, n: number) => void): void {
  const r = out.length;
  const dims: { d: number; sa: number; sb: number }[] = [];
  const sa = broadcastStrides(r, as), sb = broadcastStrides(r, bs);
  for (let i = 0; i < r; i++) {
    if (out[i] === 1) continue;
    const last = dims[dims.length - 1];
    // Merge axis i into the previous run when each operand's stride continues it.
    if (last && last.sa === sa[i] * out[i] && last.sb === sb[i] * out[i]) {
      last.d *= out[i];
      last.sa = sa[i];
      last.sb = sb[i];
    } else dims.push({ d: out[i], sa: sa[i], sb: sb[i] });
  }
  if (dims.length === 0) dims.push({ d: 1, sa: 0, sb: 0 });
  const inner = dims.pop()!, outer = dims;
  const n = outer.reduce((p, q) => p * q.d, 1);
  const ctr = new Array<number>(outer.length).fill(0);
  let ao = 0, bo = 0;
  for (let k = 0; k < n; k++) {
    f(k * inner.d, ao, inner.sa, bo, inner.sb, inner.d);
    for (let j = outer.length - 1; j >= 0; j--) {
      ao += outer[j].sa;
      bo += outer[j].sb;
      if (++ctr[j] < outer[j].d) break;
      ao -= outer[j].sa * outer[j].d;
      bo -= outer[j].sb * outer[j].d;
      ctr[j] = 0;
    }
  }
}

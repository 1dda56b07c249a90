import type { Graph, Node } from '../ir/graph.js';
import { sizeOf, stridesOf, zeros, type Tensor } from '../ir/tensor.js';
import { sweep } from './sweep.js';

/**
 * Layout for NHWC sources: the importer wraps each spatial op in Transposes (to NCHW and
 * back); this pass moves Transposes down through elementwise ops (a unary op; a binary op whose
 * other operand is a constant, permuted to match, or the same Transpose) and cancels the pairs
 * that then meet, so that a chain of convolutions runs in NCHW throughout.
 */

const UNARY = new Set(['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Abs', 'Neg', 'Floor', 'Ceil', 'Round', 'Erf', 'Softplus', 'Elu', 'Selu',
  'LeakyRelu', 'HardSigmoid', 'HardSwish', 'Reciprocal', 'Sign', 'Not', 'Identity', 'Cast']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Pow', 'PRelu', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or']);

/** A constant broadcast against a tensor of rank r and permuted as `perm` permutes that tensor's axes (undefined if it cannot be). */
function permuteConst(c: Tensor, r: number, inverse: number[]): Tensor | undefined {
  if (c.shape.length > r) return undefined;
  const shape = [...new Array(r - c.shape.length).fill(1), ...c.shape];
  const out = inverse.map((p) => shape[p]);
  const st = stridesOf(shape), n = sizeOf(out);
  const t = zeros(c.dtype, out);
  const src = c.data as Float32Array, dst = t.data as Float32Array;
  const os = stridesOf(out);
  for (let i = 0; i < n; i++) {
    let rem = i, p = 0;
    for (let a = 0; a < r; a++) {
      const k = Math.floor(rem / os[a]);
      rem -= k * os[a];
      p += k * st[inverse[a]];
    }
    dst[i] = src[p];
  }
  return t;
}

const compose = (first: number[], second: number[]) => second.map((i) => first[i]);
const isIdentity = (p: number[]) => p.every((v, i) => v === i);
const invert = (p: number[]) => {
  const q = new Array<number>(p.length);
  p.forEach((v, i) => (q[v] = i));
  return q;
};

/** Each sweep (./sweep.ts) reads who produces and who reads every value once, then moves every Transpose it can. */
export function sinkTransposes(g: Graph): Graph {
  let nodes = g.nodes.slice();
  const consts = new Map(g.consts);
  const outputs = new Set(g.outputs.map((o) => o.name));
  let count = 0;
  for (let changed = true, guard = 0; changed && guard < 100000; guard++) {
    const producer = new Map<string, Node>();
    const readers = new Map<string, number>();
    for (const n of nodes) {
      n.outputs.forEach((o) => producer.set(o, n));
      for (const t of n.inputs) readers.set(t, (readers.get(t) ?? 0) + 1);
    }
    // A Transpose read elsewhere too stays for those readers (dropDead removes it once none is left).
    const transposeOf = (t: string) => {
      const p = producer.get(t);
      return p?.op === 'Transpose' && Array.isArray(p.attrs.perm) ? p : undefined;
    };
    const drop = (t: Node) => readers.get(t.outputs[0]) === 1 && !outputs.has(t.outputs[0]);
    const s = sweep();
    /** Node n becomes `by`, having read through the Transposes ts (dropped where n was their only reader). */
    const take = (n: Node, ts: (Node | undefined)[], by: Node[]) => {
      for (const t of ts) if (t && drop(t)) s.take(t, null);
      s.take(n, by, ts);
    };
    for (const n of nodes) {
      if (!s.free(n)) continue;
      // Transpose of a Transpose: one permutation, or none.
      if (n.op === 'Transpose' && Array.isArray(n.attrs.perm)) {
        const t = transposeOf(n.inputs[0]);
        if (t) {
          if (!s.free(t)) continue;
          const perm = compose(t.attrs.perm as number[], n.attrs.perm as number[]);
          take(n, [t], [{ ...n, inputs: t.inputs, op: isIdentity(perm) ? 'Identity' : 'Transpose', attrs: isIdentity(perm) ? {} : { perm } }]);
          continue;
        }
      }
      const moved = (inputs: string[], perm: number[], attrs = n.attrs): Node[] => {
        const mid = `${n.outputs[0]}:pre_transpose#${count++}`;
        const body = { ...n, attrs, inputs, outputs: [mid, ...n.outputs.slice(1)] };
        return [body, { op: 'Transpose', name: `${n.name}/transpose`, inputs: [mid], outputs: [n.outputs[0]], attrs: { perm } }];
      };
      // Clip with constant bounds is unary too.
      const unary = (UNARY.has(n.op) && n.outputs.length === 1) || (n.op === 'Clip' && n.inputs.slice(1).every((t) => !t || consts.has(t)));
      if (unary) {
        const t = transposeOf(n.inputs[0]);
        if (t) {
          if (s.free(t)) take(n, [t], moved([t.inputs[0], ...n.inputs.slice(1)], t.attrs.perm as number[]));
          continue;
        }
      }
      // Pad, Concat and keepdims reductions: their axes follow the permutation.
      const axisOps = n.op === 'Pad' || n.op === 'Concat' || (n.op.startsWith('Reduce') && n.attrs.keepdims !== 0);
      if (axisOps) {
        const ts = (n.op === 'Concat' ? n.inputs : [n.inputs[0]]).map(transposeOf);
        const perm = ts[0]?.attrs.perm as number[] | undefined;
        if (!perm || ts.some((t) => !t || (t.attrs.perm as number[]).join() !== perm.join()) || !s.free(...ts)) continue;
        const r = perm.length;
        let rest = n.inputs.slice(n.op === 'Concat' ? n.inputs.length : 1), attrs = n.attrs;
        if (n.op === 'Concat') {
          const a = n.attrs.axis as number;
          attrs = { ...attrs, axis: perm[a < 0 ? a + r : a] };
        } else if (n.op === 'Pad') {
          const pads = consts.get(n.inputs[1]);
          if (!pads || n.inputs[3] || pads.data.length !== 2 * r) continue;
          const v = Array.from(pads.data as BigInt64Array, Number), inv = invert(perm);
          // Pads are per axis of the transposed tensor: axis a of x is axis inv[a] there.
          const k = `${n.inputs[1]}:permuted#${count++}`;
          consts.set(k, { dtype: 'int64', shape: [2 * r], data: BigInt64Array.from([...inv.map((i) => v[i]), ...inv.map((i) => v[r + i])].map(BigInt)) });
          rest = [k, ...n.inputs.slice(2)];
        } else {
          const given = n.inputs[1] ? consts.get(n.inputs[1]) : undefined;
          const axes = given ? Array.from(given.data as BigInt64Array, Number) : (n.attrs.axes as number[] | undefined);
          if (!axes || (n.inputs[1] && !given)) continue;
          const mapped = axes.map((a) => perm[a < 0 ? a + r : a]);
          if (given) {
            const k = `${n.inputs[1]}:permuted#${count++}`;
            consts.set(k, { dtype: 'int64', shape: [mapped.length], data: BigInt64Array.from(mapped.map(BigInt)) });
            rest = [k];
          } else attrs = { ...attrs, axes: mapped };
        }
        take(n, ts, moved([...ts.map((t) => t!.inputs[0]), ...rest], perm, attrs));
        continue;
      }
      if ((BINARY.has(n.op) && n.inputs.length === 2) || (n.op === 'Sum' && n.inputs.length > 1)) {
        const ts = n.inputs.map(transposeOf);
        const perm = (ts[0] ?? ts[1])?.attrs.perm as number[] | undefined;
        if (!perm || ts.some((t) => t && (t.attrs.perm as number[]).join() !== perm.join()) || !s.free(...ts)) continue;
        const inv = invert(perm);
        const ins = n.inputs.map((s, i) => {
          if (ts[i]) return ts[i]!.inputs[0];
          const c = consts.get(s);
          const p = c && permuteConst(c, perm.length, inv);
          if (!p) return undefined;
          const k = `${s}:permuted#${count++}`;
          consts.set(k, p);
          return k;
        });
        if (ins.some((s) => s === undefined)) continue;
        take(n, ts, moved(ins as string[], perm));
      }
    }
    changed = s.changed;
    nodes = s.apply(nodes);
  }
  return { ...g, nodes, consts };
}

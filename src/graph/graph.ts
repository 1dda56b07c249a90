import { FasterCnnError } from '../errors.js';

/**
 * The graph every imported model becomes: one input, one output, nodes in run order, constants
 * as float32. Four-dimensional tensors are NCHW inside; a model whose own layout is NHWC (TF.js)
 * says so in `input.layout`, and its importer has converted every axis, pad and weight already,
 * so the executor knows one layout only.
 */
export interface Graph {
  input: { name: string; shape: number[]; layout: 'nchw' | 'nhwc' };
  output: string;
  nodes: GraphNode[];
  consts: Map<string, Const>;
}

export interface Const { shape: number[]; data: Float32Array }

export type Activation = 'none' | 'relu' | 'relu6' | 'sigmoid';

export type Attrs = Record<string, number | number[] | string>;

export interface GraphNode {
  op: Op;
  name: string;
  inputs: string[];
  output: string;
  attrs: Attrs;
}

/**
 * The operations the executor runs (their attributes):
 * conv: x, W [O, C/group, KH, KW], B? (stride, dilation [h, w], pad [top, left, bottom, right], group, act);
 * dense: x [N, K], W [O, K], B? (act); maxpool / avgpool (kernel, stride, pad, countPad 0|1);
 * gap (global average pool, keepDims 0|1); affine: x, scale [C], shift [C] per channel (folded
 * batch norm); add, sub, mul, div: numpy broadcasting; relu; clip (min, max); sigmoid;
 * softmax (axis, log 0|1); flatten (nhwc 0|1: flatten in channels-last order, as Keras does);
 * reshape (shape, physical); transpose (perm); concat (axis); pad (pads [begin..., end...], value);
 * squeeze (axes); mean (axes, keepDims); fakequant (scale, zero, qmin, qmax: an ONNX
 * QuantizeLinear + DequantizeLinear pair, kept as the rounding it does); identity.
 */
export const OPS = ['conv', 'dense', 'maxpool', 'avgpool', 'gap', 'affine', 'add', 'sub', 'mul', 'div', 'relu', 'clip', 'sigmoid',
  'softmax', 'flatten', 'reshape', 'transpose', 'concat', 'pad', 'squeeze', 'mean', 'fakequant', 'identity'] as const;
export type Op = (typeof OPS)[number];

/** A graph that cannot run: bad shapes, a missing tensor, an attribute out of range. */
export class GraphError extends FasterCnnError {}

const nums = (a: Attrs, k: string): number[] => a[k] as number[];
const num = (a: Attrs, k: string): number => a[k] as number;

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Output shape of numpy broadcasting, or a GraphError naming the node. */
export function broadcastShape(a: number[], b: number[], at: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new GraphError(`${at}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

function windowOut(size: number, k: number, stride: number, padSum: number, dilation = 1): number {
  return Math.floor((size + padSum - dilation * (k - 1) - 1) / stride) + 1;
}

/** The output shape of a node given its input shapes; checks every shape it depends on. */
export function outShape(n: GraphNode, ins: number[][]): number[] {
  const at = `node ${n.name} (${n.op})`;
  const fail = (why: string): never => {
    throw new GraphError(`${at}: ${why}`);
  };
  const x = ins[0];
  const rank = (r: number) => x.length === r || fail(`needs a rank-${r} input, got [${x}]`);
  const a = n.attrs;
  switch (n.op) {
    case 'conv': {
      rank(4);
      const [O, Cg, KH, KW] = ins[1];
      const [sh, sw] = nums(a, 'stride'), [dh, dw] = nums(a, 'dilation'), [pt, pl, pb, pr] = nums(a, 'pad');
      const g = num(a, 'group');
      if (x[1] !== Cg * g) fail(`input has ${x[1]} channels, the weight expects ${Cg} x ${g} groups`);
      if (O % g !== 0) fail(`${O} output channels do not split into ${g} groups`);
      if (ins[2] && sizeOf(ins[2]) !== O) fail(`bias has ${sizeOf(ins[2])} values for ${O} channels`);
      const OH = windowOut(x[2], KH, sh, pt + pb, dh), OW = windowOut(x[3], KW, sw, pl + pr, dw);
      if (OH < 1 || OW < 1) fail(`a ${KH}x${KW} kernel does not fit the ${x[2]}x${x[3]} input`);
      return [x[0], O, OH, OW];
    }
    case 'dense': {
      rank(2);
      const [O, K] = ins[1];
      if (x[1] !== K) fail(`input has ${x[1]} features, the weight expects ${K}`);
      if (ins[2] && sizeOf(ins[2]) !== O) fail(`bias has ${sizeOf(ins[2])} values for ${O} outputs`);
      return [x[0], O];
    }
    case 'maxpool':
    case 'avgpool': {
      rank(4);
      const [kh, kw] = nums(a, 'kernel'), [sh, sw] = nums(a, 'stride'), [pt, pl, pb, pr] = nums(a, 'pad');
      const OH = windowOut(x[2], kh, sh, pt + pb), OW = windowOut(x[3], kw, sw, pl + pr);
      if (OH < 1 || OW < 1) fail(`a ${kh}x${kw} window does not fit the ${x[2]}x${x[3]} input`);
      return [x[0], x[1], OH, OW];
    }
    case 'gap':
      rank(4);
      return num(a, 'keepDims') ? [x[0], x[1], 1, 1] : [x[0], x[1]];
    case 'affine':
      if (x.length < 2 || sizeOf(ins[1]) !== x[1] || sizeOf(ins[2]) !== x[1]) fail(`needs ${x[1]} scales and shifts`);
      return x;
    case 'add':
    case 'sub':
    case 'mul':
    case 'div':
      return broadcastShape(x, ins[1], at);
    case 'relu':
    case 'clip':
    case 'sigmoid':
    case 'fakequant':
    case 'identity':
      return x;
    case 'softmax': {
      const axis = num(a, 'axis');
      if (axis < 0 || axis >= x.length) fail(`axis ${axis} is outside rank ${x.length}`);
      return x;
    }
    case 'flatten':
      return [x[0], sizeOf(x.slice(1))];
    case 'reshape': {
      const s = nums(a, 'shape').map((d, i) => (d === 0 ? x[i] : d));
      const known = sizeOf(s.filter((d) => d !== -1));
      const out = s.map((d) => (d === -1 ? sizeOf(x) / known : d));
      if (s.filter((d) => d === -1).length > 1 || sizeOf(out) !== sizeOf(x) || !out.every(Number.isInteger)) fail(`cannot reshape [${x}] to [${s}]`);
      return out;
    }
    case 'transpose': {
      const p = nums(a, 'perm');
      if (p.length !== x.length || [...p].sort().some((v, i) => v !== i)) fail(`perm [${p}] is not a permutation of rank ${x.length}`);
      return p.map((i) => x[i]);
    }
    case 'concat': {
      const axis = num(a, 'axis');
      if (axis < 0 || axis >= x.length) fail(`axis ${axis} is outside rank ${x.length}`);
      const out = x.slice();
      for (const s of ins.slice(1)) {
        if (s.length !== x.length || s.some((d, i) => i !== axis && d !== x[i])) fail(`cannot concatenate [${s}] to [${x}] on axis ${axis}`);
        out[axis] += s[axis];
      }
      return out;
    }
    case 'pad': {
      const p = nums(a, 'pads');
      if (p.length !== 2 * x.length || p.some((v) => v < 0)) fail(`pads [${p}] must be ${2 * x.length} non-negative numbers`);
      return x.map((d, i) => d + p[i] + p[i + x.length]);
    }
    case 'squeeze': {
      const axes = nums(a, 'axes');
      if (axes.some((i) => x[i] !== 1)) fail(`cannot squeeze axes [${axes}] of [${x}]`);
      return x.filter((_, i) => !axes.includes(i));
    }
    case 'mean': {
      const axes = nums(a, 'axes');
      if (axes.some((i) => i < 0 || i >= x.length)) fail(`axes [${axes}] are outside rank ${x.length}`);
      return num(a, 'keepDims') ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i));
    }
  }
}

/**
 * Checks a graph end to end for an input of the given shape and returns every tensor's shape:
 * each node's inputs exist, attributes fit, the output is produced.
 */
export function inferShapes(g: Graph, inputShape: number[] = g.input.shape): Map<string, number[]> {
  const shapes = new Map<string, number[]>([[g.input.name, inputShape]]);
  for (const [k, c] of g.consts) shapes.set(k, c.shape);
  for (const n of g.nodes) {
    if (!(OPS as readonly string[]).includes(n.op)) throw new GraphError(`node ${n.name}: unknown op ${n.op}`);
    const ins = n.inputs.map((i) => shapes.get(i) ?? fail(`node ${n.name} (${n.op}) reads ${i}, which nothing before it produces`));
    shapes.set(n.output, outShape(n, ins));
  }
  if (!shapes.has(g.output)) fail(`the output ${g.output} is never produced`);
  return shapes;
}

function fail(why: string): never {
  throw new GraphError(why);
}

/** Attribute kinds per op: 'i' integer, 'n' number, 'I' integer list, 's' string. Optional ones end in '?'. */
const SCHEMA: Partial<Record<Op, Record<string, string>>> = {
  conv: { stride: 'I', dilation: 'I', pad: 'I', group: 'i', act: 's?' },
  dense: { act: 's?' },
  maxpool: { kernel: 'I', stride: 'I', pad: 'I', countPad: 'i?' },
  avgpool: { kernel: 'I', stride: 'I', pad: 'I', countPad: 'i?' },
  gap: { keepDims: 'i' },
  clip: { min: 'n', max: 'n' },
  softmax: { axis: 'i', log: 'i?' },
  flatten: { nhwc: 'i?' },
  reshape: { shape: 'I' },
  transpose: { perm: 'I' },
  concat: { axis: 'i' },
  pad: { pads: 'I', value: 'n' },
  squeeze: { axes: 'I' },
  mean: { axes: 'I', keepDims: 'i' },
  fakequant: { scale: 'n', zero: 'i', qmin: 'i', qmax: 'i' },
};
const ARITY: Partial<Record<Op, [number, number]>> = { conv: [2, 3], dense: [2, 3], affine: [3, 3], add: [2, 2], sub: [2, 2], mul: [2, 2], div: [2, 2], concat: [1, 64] };
const LENGTH: Record<string, number> = { stride: 2, dilation: 2, pad: 4, kernel: 2 };

/** Largest tensor a graph may hold, in elements (1 G bytes of float32). */
export const MAX_TENSOR = 1 << 28;

/**
 * Validates a graph read from a file before anything runs or allocates: ops, arity, attribute
 * types and ranges, every shape (for its own input shape), tensor sizes under MAX_TENSOR.
 */
export function checkGraph(g: Graph): Map<string, number[]> {
  if (sizeOf(g.input.shape) > MAX_TENSOR) fail(`the input [${g.input.shape}] is over ${MAX_TENSOR} elements`);
  for (const n of g.nodes) {
    if (!n || typeof n.name !== 'string' || !(OPS as readonly string[]).includes(n.op)) fail(`node ${JSON.stringify(n?.name)}: unknown op ${JSON.stringify(n?.op)}`);
    if (!Array.isArray(n.inputs) || !n.inputs.every((i) => typeof i === 'string') || typeof n.output !== 'string') fail(`node ${n.name}: bad inputs or output`);
    const [lo, hi] = ARITY[n.op] ?? [1, 1];
    if (n.inputs.length < lo || n.inputs.length > hi) fail(`node ${n.name} (${n.op}) has ${n.inputs.length} inputs, needs ${lo}..${hi}`);
    if (typeof n.attrs !== 'object' || n.attrs === null) fail(`node ${n.name}: attrs missing`);
    for (const [k, kind] of Object.entries(SCHEMA[n.op] ?? {})) {
      const v = n.attrs[k];
      if (v === undefined && kind.endsWith('?')) continue;
      const ok = kind[0] === 'i' ? Number.isInteger(v) && Math.abs(v as number) < 1 << 30
        : kind[0] === 'n' ? typeof v === 'number' && Number.isFinite(v)
          : kind[0] === 's' ? typeof v === 'string'
            : Array.isArray(v) && v.length <= 16 && v.every((x) => Number.isInteger(x) && Math.abs(x) < 1 << 30) && (!(k in LENGTH) || v.length === LENGTH[k]);
      if (!ok) fail(`node ${n.name} (${n.op}): attribute ${k} is ${JSON.stringify(v)}`);
    }
    const a = n.attrs;
    const positive = ['stride', 'dilation', 'kernel'].filter((k) => Array.isArray(a[k]) && (a[k] as number[]).some((x) => x < 1));
    if (positive.length || (n.op === 'conv' && (a.group as number) < 1) || (n.op === 'fakequant' && !((a.scale as number) > 0))) fail(`node ${n.name} (${n.op}): ${positive[0] ?? 'group/scale'} must be positive`);
    if (Array.isArray(a.pad) && (a.pad as number[]).some((x) => x < 0)) fail(`node ${n.name} (${n.op}): negative padding`);
  }
  const shapes = inferShapes(g);
  for (const [t, s] of shapes) {
    if (!s.every((d) => Number.isInteger(d) && d >= 0) || sizeOf(s) > MAX_TENSOR) fail(`tensor ${t} would have shape [${s}] (at most ${MAX_TENSOR} elements)`);
  }
  return shapes;
}

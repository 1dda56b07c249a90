import { ModelImportError, UnsupportedModelError } from '../errors.js';
import type { AttrValue, Dim, Graph, Node, ValueInfo } from '../../ir/graph.js';
import { MAX_ELEMENTS, sizeOf, zeros, type Tensor } from '../../ir/tensor.js';
import { ONNX_DTYPE } from '../../ops/cast.js';
import { opDef } from '../../ops/index.js';
import { fields, Msg } from './reader.js';

const bad = (why: string): never => {
  throw new ModelImportError(`ONNX model: ${why}`);
};

/** ONNX control flow the runtime does not run: refused with every such node listed (If and Loop run, src/ops/loop.ts). */
const CONTROL_FLOW = ['Scan', 'SequenceMap'];

const TYPE_NAMES: Record<number, string> = { 1: 'float', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool', 10: 'float16', 11: 'double', 12: 'uint32', 13: 'uint64', 16: 'bfloat16' };

function dtypeOf(code: number, what: string) {
  return ONNX_DTYPE[code] ?? bad(`${what} is ${TYPE_NAMES[code] ?? `type ${code}`} (supported: ${Object.values(ONNX_DTYPE).join(', ')})`);
}

/** Packed (or repeated) varints as exact signed 64-bit integers. */
function bigVarints(m: Msg, f: number): bigint[] {
  const out: bigint[] = [];
  const read = (b: Uint8Array, p: number, end: number) => {
    while (p < end) {
      let v = 0n, shift = 0n, byte;
      do {
        if (p >= end) bad('a varint runs past the end of its field');
        byte = b[p++];
        v |= BigInt(byte & 0x7f) << shift;
        shift += 7n;
      } while (byte & 0x80);
      out.push(BigInt.asIntN(64, v));
    }
  };
  for (const x of m.all(f)) {
    if (x.wire === 2) read(m.b, x.start, x.end);
    else out.push(BigInt(x.value));
  }
  return out;
}

/** A TensorProto as an IR tensor of its own dtype, every size checked before allocation. */
export function readIrTensor(m: Msg): Tensor & { name: string } {
  const name = m.str(8);
  const dims = m.ints(1);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor ${name} has dims [${dims}]`);
  const n = sizeOf(dims);
  if (n > MAX_ELEMENTS) bad(`tensor ${name} claims ${n} elements (limit ${MAX_ELEMENTS})`);
  if (m.int(14) === 1) bad(`tensor ${name} keeps its data in an external file (not supported: save the model with its data inside)`);
  const dtype = dtypeOf(m.int(2), `tensor ${name}`);
  const raw = m.bytes(9);
  const width = { float32: 4, int32: 4, int64: 8, uint8: 1, int8: 1, bool: 1 }[dtype];
  if (raw && raw.length !== n * width) bad(`tensor ${name}: ${raw.length} raw bytes for ${n} ${dtype} values`);
  // Counted before allocating: a typed field must hold exactly n values.
  const t = { ...zeros(dtype, dims), name };
  if (raw) {
    const copy = raw.slice();
    const view = dtype === 'float32' ? new Float32Array(copy.buffer) : dtype === 'int32' ? new Int32Array(copy.buffer)
      : dtype === 'int64' ? new BigInt64Array(copy.buffer) : dtype === 'int8' ? new Int8Array(copy.buffer) : copy;
    (t.data as Uint8Array).set(view as Uint8Array);
    return t;
  }
  if (dtype === 'int64') {
    const v = bigVarints(m, 7);
    if (v.length !== n) bad(`tensor ${name}: ${v.length} values for ${n} elements`);
    (t.data as BigInt64Array).set(v);
  } else {
    const v = dtype === 'float32' ? m.floats(4) : m.ints(5);
    if (v.length !== n) bad(`tensor ${name}: ${v.length} values for ${n} elements`);
    (t.data as Float32Array).set(v);
  }
  return t;
}

function readAttr(a: Msg, opset: number): AttrValue {
  const type = a.int(20);
  const has = (f: number) => a.all(f).length > 0;
  switch (type || (has(5) ? 4 : has(6) ? 5 : has(8) ? 7 : has(7) ? 6 : has(9) ? 8 : has(4) ? 3 : has(3) ? 2 : 1)) {
    case 1: return a.float(2);
    case 2: return a.int(3);
    case 3: return a.str(4);
    case 4: return readIrTensor(a.msg(5)!);
    case 5: return readGraph(a.msg(6)!, opset, true);
    case 6: return a.floats(7);
    case 7: return a.ints(8);
    case 8: return a.strs(9);
    default: return bad(`attribute ${a.str(1)} has type ${type} (not supported)`);
  }
}

function valueInfo(v: Msg): ValueInfo {
  const name = v.str(1);
  const tt = v.msg(2)?.msg(1);
  const shapeMsg = tt?.msg(2);
  const shape: Dim[] | null = shapeMsg ? shapeMsg.msgs(1).map((d, i) => (d.all(1).length ? d.int(1) : d.str(2) || `${name}_${i}`)) : null;
  return { name, dtype: tt ? dtypeOf(tt.int(1), `value ${name}`) : 'float32', shape };
}

function readGraph(g: Msg, opset: number, sub = false): Graph {
  const consts = new Map<string, Tensor>();
  for (const t of g.msgs(5)) {
    const x = readIrTensor(t);
    consts.set(x.name, x);
  }
  const problems: string[] = [];
  const nodes: Node[] = g.msgs(1).map((n, i) => {
    const node: Node = { op: n.str(4), name: n.str(3) || `${n.str(4)}_${i}`, inputs: n.strs(1), outputs: n.strs(2), attrs: {} };
    const domain = n.str(7);
    if (CONTROL_FLOW.includes(node.op)) problems.push(`node ${node.name}: control flow (${node.op}) is not run yet`);
    else if (domain && domain !== 'ai.onnx') problems.push(`node ${node.name}: op ${node.op} of domain ${domain}`);
    else if (!opDef(node.op)) problems.push(`node ${node.name}: op ${node.op}`);
    else for (const a of n.msgs(5)) node.attrs[a.str(1)] = readAttr(a, opset);
    return node;
  });
  if (problems.length) throw new UnsupportedModelError(problems);
  for (const n of nodes) if (n.op === 'If' || n.op === 'Loop') captureOuter(n);
  // Initializers listed as inputs are constants (older exporters list both).
  const inputs = g.msgs(11).map(valueInfo).filter((v) => !consts.has(v.name));
  const outputs = g.msgs(12).map(valueInfo);
  if (!sub && outputs.length === 0) bad('the graph has no outputs');
  return { inputs, outputs, nodes, consts, opset };
}

/**
 * The outer values an If's branches or a Loop's body read (ONNX sub-graphs name them freely) become
 * the node's inputs after its own (an If's condition; a Loop's trip count, condition and initial
 * values, their number kept as `_own`) and each sub-graph's inputs after its own, in that order, so
 * that passes which rename values see them and the sub-graphs run as graphs of their own.
 */
function captureOuter(n: Node): void {
  const loop = n.op === 'Loop';
  const graphs = (loop ? [n.attrs.body] : [n.attrs.then_branch, n.attrs.else_branch]) as Graph[];
  if (graphs.some((b) => !b?.nodes)) bad(`node ${n.name}: ${loop ? 'Loop needs a body graph' : 'If needs then_branch and else_branch graphs'}`);
  const outer = new Set<string>();
  for (const b of graphs) for (const name of freeNames(b)) outer.add(name);
  const names = [...outer];
  const own = loop ? n.inputs.length : 1;
  if (loop) {
    n.attrs._own = own;
    if (own < 2 || graphs[0].inputs.length !== own) bad(`node ${n.name}: Loop's body takes ${graphs[0].inputs.length} inputs for the loop's ${own}`);
  }
  n.inputs = [...n.inputs.slice(0, own), ...names];
  for (const b of graphs) b.inputs = [...(loop ? b.inputs : []), ...names.map((name) => ({ name, dtype: 'float32' as const, shape: null }))];
}

/** The names a graph's nodes (and their own sub-graphs) read that nothing in it makes. */
function freeNames(g: Graph): string[] {
  const made = new Set<string>([...g.consts.keys(), ...g.inputs.map((i) => i.name), '']);
  const free = new Set<string>();
  for (const n of g.nodes) {
    for (const t of n.inputs) if (!made.has(t)) free.add(t);
    for (const a of Object.values(n.attrs)) if (a && typeof a === 'object' && 'nodes' in a) for (const t of freeNames(a as Graph)) if (!made.has(t)) free.add(t);
    for (const o of n.outputs) made.add(o);
  }
  return [...free];
}

/** An ONNX model (bytes) as an IR graph: every input and output, every dtype the runtime has, symbolic sizes kept. */
export function readOnnx(bytes: Uint8Array): Graph {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) bad('no bytes');
  fields(bytes);
  const model = new Msg(bytes);
  const opsets = model.msgs(8).filter((o) => !o.str(1) || o.str(1) === 'ai.onnx');
  const opset = opsets.length ? opsets[0].int(2) : 1;
  const g = model.msg(7) ?? bad('no graph (is this an ONNX model?)');
  return readGraph(g, opset);
}

import { FasterCnnError, formatBytes } from '../errors.js';
import {
  AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, PCILTConv2d, PCILTLinear, QuantReLU, ReLU, Residual, type Layer,
} from '../nn/layers.js';
import { Sequential } from '../nn/model.js';
import { TABLE_RANGES, TableConv2d, TableLinear } from '../nn/table-weights.js';
import { checkGraph, type Const, type Graph, type GraphNode } from '../graph/graph.js';
import type { Graph as IrGraph, Node, ValueInfo } from '../ir/graph.js';
import { isDType, zeros, type DType, type Tensor } from '../ir/tensor.js';
import { opDef } from '../ops/index.js';

/**
 * The .fcnn model file, version 1 (little-endian):
 *
 *   bytes 0..3   "FCNN"
 *   bytes 4..7   u32 format version (1)
 *   bytes 8..11  u32 header length H
 *   bytes 12..   H bytes of UTF-8 JSON: { format: "faster-cnn", version: 1, layers: [{ type, config,
 *                params: [{ name, shape, offset, length }], layers?: [...] }], meta: {...} }
 *                (a Residual block lists its inner layers under `layers`)
 *   then         the blob: float32 parameter values; offset and length count bytes from its start.
 *
 * Version 2 holds an imported graph instead of layers: the header is { format: "faster-cnn",
 * version: 2, graph: { input, output, nodes: [{ op, name, inputs, output, attrs }],
 * consts: [{ name, shape, offset, length }] }, meta } (see src/graph/graph.ts), same blob.
 *
 * Version 3 holds a runtime graph (src/ir/graph.ts): { format: "faster-cnn", version: 3, ir: {
 * inputs, outputs, opset, nodes: [{ op, name, inputs, outputs, attrs }], consts: [{ name, dtype,
 * shape, offset, length }] }, meta }; a tensor attribute is { "$const": NAME } naming one of the
 * consts. Each constant's bytes are its dtype's little-endian values, starting at a multiple of 8.
 */
export const FCNN_VERSION = 1;
export const FCNN_GRAPH_VERSION = 2;
export const FCNN_IR_VERSION = 3;
const MAGIC = [0x46, 0x43, 0x4e, 0x4e];
const MAX_HEADER = 16 << 20;

/** A corrupted, truncated or foreign model file. */
export class ModelFormatError extends FasterCnnError {}

interface ParamEntry { name: string; shape: number[]; offset: number; length: number }
interface LayerEntry { type: string; config: Record<string, number | undefined>; params: ParamEntry[]; layers?: LayerEntry[] }
interface Header { format: string; version: number; layers: LayerEntry[]; meta?: Record<string, unknown> }

function assemble(header: object, blobs: ArrayBufferView[], version: number): Uint8Array {
  const offset = blobs.reduce((n, b) => n + b.byteLength, 0);
  const head = new TextEncoder().encode(JSON.stringify(header));
  const start = 12 + Math.ceil(head.length / 4) * 4;
  const out = new Uint8Array(start + offset);
  out.set(MAGIC, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, version, true);
  dv.setUint32(8, head.length, true);
  out.set(head, 12);
  out.fill(0x20, 12 + head.length, start);
  let at = start;
  for (const b of blobs) {
    out.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), at);
    at += b.byteLength;
  }
  return out;
}

export function encodeModel(model: Sequential, meta: Record<string, unknown> = {}): Uint8Array {
  let offset = 0;
  const blobs: Float32Array[] = [];
  const entry = (l: Layer): LayerEntry => {
    if (l instanceof Residual) return { type: l.type, config: {}, params: [], layers: l.inner.map(entry) };
    return {
      type: l.type,
      config: l.config(),
      params: l.params().map((p) => {
        const e = { name: p.name, shape: p.shape, offset, length: p.value.byteLength };
        offset += p.value.byteLength;
        blobs.push(p.value);
        return e;
      }),
    };
  };
  const layers = model.layers.map(entry);
  return assemble({ format: 'faster-cnn', version: FCNN_VERSION, layers, meta } satisfies Header, blobs, FCNN_VERSION);
}

function bad(why: string): never {
  throw new ModelFormatError(`not a valid .fcnn model: ${why}`);
}

const num = (v: unknown, what: string) => (typeof v === 'number' && Number.isFinite(v) ? v : bad(`${what} is ${JSON.stringify(v)}, not a number`));
const opt = (v: unknown, what: string) => (v === undefined || v === null ? undefined : num(v, what));

function makeLayer(e: LayerEntry, i: number, blob: number, depth: number): Layer {
  const c = e.config ?? {};
  const at = `layer ${i} (${e.type})`;
  // The parameters a config implies must fit in the file before the layer allocates them.
  const fits = (...dims: unknown[]) => {
    const bytes = dims.reduce<number>((a, d) => a * num(d, `${at} size`), 4);
    if (bytes > blob) bad(`${at} would hold ${formatBytes(bytes)} of weights, the file has ${formatBytes(blob)}`);
  };
  if (e.type === 'Conv2d' || e.type === 'PCILTConv2d') fits(c.inChannels, c.outChannels, c.kernel, c.kernel);
  if (e.type === 'Linear' || e.type === 'PCILTLinear') fits(c.inFeatures, c.outFeatures);
  if (e.type === 'BatchNorm2d') fits(c.channels, 4);
  if (e.type === 'TableLinear') fits(c.inFeatures, c.outFeatures, 2 ** num(c.bits, `${at} bits`));
  if (e.type === 'TableConv2d') fits(c.inChannels, c.outChannels, c.kernel, c.kernel, 2 ** num(c.bits, `${at} bits`));
  switch (e.type) {
    case 'Conv2d': return new Conv2d(num(c.inChannels, `${at} inChannels`), num(c.outChannels, `${at} outChannels`), num(c.kernel, `${at} kernel`),
      num(c.stride, `${at} stride`), num(c.pad, `${at} pad`), opt(c.weightBits, `${at} weightBits`));
    case 'Linear': return new Linear(num(c.inFeatures, `${at} inFeatures`), num(c.outFeatures, `${at} outFeatures`), opt(c.weightBits, `${at} weightBits`));
    case 'PCILTConv2d': return new PCILTConv2d(num(c.inChannels, `${at} inChannels`), num(c.outChannels, `${at} outChannels`), num(c.kernel, `${at} kernel`),
      num(c.stride, `${at} stride`), num(c.pad, `${at} pad`), num(c.weightBits, `${at} weightBits`));
    case 'PCILTLinear': return new PCILTLinear(num(c.inFeatures, `${at} inFeatures`), num(c.outFeatures, `${at} outFeatures`), num(c.weightBits, `${at} weightBits`));
    case 'AvgPool2d': return new AvgPool2d(num(c.size, `${at} size`));
    case 'Dropout': return new Dropout(num(c.p, `${at} p`));
    case 'BatchNorm2d': return new BatchNorm2d(num(c.channels, `${at} channels`), num(c.momentum, `${at} momentum`), num(c.eps, `${at} eps`));
    case 'Residual': {
      if (depth > 16 || !Array.isArray(e.layers)) bad(`${at}: a Residual block needs its inner layers (at most 16 deep)`);
      return new Residual(e.layers.map((inner, j) => buildLayer(inner, j, blob, depth + 1)));
    }
    case 'TableLinear': {
      const range = TABLE_RANGES[num(c.range, `${at} range`)] ?? bad(`${at}: unknown table range ${c.range}`);
      if (range !== 'entry') bad(`${at}: tables must be stored as entries`);
      return new TableLinear(num(c.inFeatures, `${at} inFeatures`), num(c.outFeatures, `${at} outFeatures`), num(c.bits, `${at} bits`), num(c.inScale, `${at} inScale`), range,
        undefined, opt(c.entryBits, `${at} entryBits`));
    }
    case 'TableConv2d': {
      const range = TABLE_RANGES[num(c.range, `${at} range`)] ?? bad(`${at}: unknown table range ${c.range}`);
      if (range !== 'entry') bad(`${at}: tables must be stored as entries`);
      return new TableConv2d(num(c.inChannels, `${at} inChannels`), num(c.outChannels, `${at} outChannels`), num(c.kernel, `${at} kernel`),
        num(c.stride, `${at} stride`), num(c.pad, `${at} pad`), num(c.bits, `${at} bits`), num(c.inScale, `${at} inScale`), range,
        undefined, opt(c.entryBits, `${at} entryBits`));
    }
    case 'ReLU': return new ReLU();
    case 'QuantReLU': return new QuantReLU(opt(c.bits, `${at} bits`), num(c.alpha, `${at} alpha`));
    case 'MaxPool2d': return new MaxPool2d(num(c.size, `${at} size`));
    case 'Flatten': return new Flatten();
    case 'LogSoftmax': return new LogSoftmax();
    default: return bad(`${at}: unknown layer type`);
  }
}

/** A layer from its header entry, with typed errors for anything malformed. */
function buildLayer(e: LayerEntry, i: number, blob: number, depth: number): Layer {
  try {
    return makeLayer(e, i, blob, depth);
  } catch (err) {
    if (err instanceof ModelFormatError) throw err;
    return bad(`layer ${i} (${e?.type}): ${(err as Error).message}`);
  }
}

/** Prefix and header of a .fcnn file, checked. */
function readHeader(bytes: Uint8Array): { version: number; header: Header & GraphHeader; start: number } {
  if (!(bytes instanceof Uint8Array)) bad('expected bytes');
  if (bytes.length < 12 || MAGIC.some((m, i) => bytes[i] !== m)) bad(`it does not start with "FCNN" (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(4, true);
  if (![FCNN_VERSION, FCNN_GRAPH_VERSION, FCNN_IR_VERSION].includes(version)) bad(`format version ${version}; this faster-cnn reads versions 1 to ${FCNN_IR_VERSION}`);
  const hlen = dv.getUint32(8, true);
  if (hlen > MAX_HEADER || 12 + hlen > bytes.length) bad(`the header claims ${formatBytes(hlen)}, the file has ${formatBytes(bytes.length - 12)} after the prefix`);
  let header: Header & GraphHeader;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + hlen)));
  } catch (e) {
    return bad(`the header is not JSON (${(e as Error).message})`);
  }
  if (header?.format !== 'faster-cnn' || typeof header !== 'object') bad('the header is not a faster-cnn model header');
  return { version, header, start: 12 + Math.ceil(hlen / 4) * 4 };
}

interface GraphHeader {
  graph: { input: Graph['input']; output: string; nodes: GraphNode[]; consts: ParamEntry[] };
  ir?: { inputs: ValueInfo[]; outputs: ValueInfo[]; opset: number; nodes: Node[]; consts: (ParamEntry & { dtype: DType })[] };
}

type FileHeader = ReturnType<typeof readHeader>;

/** A .fcnn file of any version: a layer stack (trained here), an imported graph (version 2), or a runtime graph. */
export function decodeAny(bytes: Uint8Array): { model?: Sequential; graph?: Graph; ir?: IrGraph; meta: Record<string, unknown> } {
  const file = readHeader(bytes);
  return file.version === FCNN_IR_VERSION ? irFrom(bytes, file) : file.version === FCNN_GRAPH_VERSION ? graphFrom(bytes, file) : modelFrom(bytes, file);
}

/** A runtime graph as a version-3 file. */
export function encodeIr(g: IrGraph, meta: Record<string, unknown> = {}): Uint8Array {
  let offset = 0;
  const blobs: ArrayBufferView[] = [];
  const consts = [...g.consts].map(([name, t]) => {
    const e = { name, dtype: t.dtype, shape: t.shape, offset, length: t.data.byteLength };
    const pad = (8 - (t.data.byteLength % 8)) % 8;
    blobs.push(t.data, new Uint8Array(pad));
    offset += t.data.byteLength + pad;
    return e;
  });
  const named = new Map<Tensor, string>();
  const nodes = g.nodes.map((n, i) => ({
    ...n,
    attrs: Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => {
      if (typeof v !== 'object' || Array.isArray(v)) return [k, v];
      if (!('dtype' in v)) throw new ModelFormatError(`node ${n.name}: attribute ${k} is a sub-graph, which .fcnn does not store`);
      let name = named.get(v);
      if (!name) {
        name = `$attr/${i}/${k}`;
        named.set(v, name);
        const pad = (8 - (v.data.byteLength % 8)) % 8;
        consts.push({ name, dtype: v.dtype, shape: v.shape, offset, length: v.data.byteLength });
        blobs.push(v.data, new Uint8Array(pad));
        offset += v.data.byteLength + pad;
      }
      return [k, { $const: name }];
    })),
  }));
  return assemble({ format: 'faster-cnn', version: FCNN_IR_VERSION, ir: { inputs: g.inputs, outputs: g.outputs, opset: g.opset, nodes, consts }, meta }, blobs, FCNN_IR_VERSION);
}

function irFrom(bytes: Uint8Array, { header, start }: FileHeader): { ir: IrGraph; meta: Record<string, unknown> } {
  const g = header.ir;
  const isDims = (s: unknown) => Array.isArray(s) && s.length <= 16 && s.every((d) => (Number.isInteger(d) && d >= -1) || (typeof d === 'string' && d.length < 256));
  const isValue = (v: ValueInfo) => typeof v?.name === 'string' && isDType(v.dtype) && (v.shape === null || isDims(v.shape));
  if (!g || !Array.isArray(g.nodes) || !Array.isArray(g.consts) || !Array.isArray(g.inputs) || !Array.isArray(g.outputs) || !Number.isInteger(g.opset)
    || !g.inputs.every(isValue) || !g.outputs.every(isValue)) bad('the graph header is incomplete');
  const blob = bytes.length - start;
  const consts = new Map<string, Tensor>();
  for (const [i, c] of g.consts.entries()) {
    const off = num(c?.offset, `constant ${i} offset`), len = num(c?.length, `constant ${i} length`);
    if (!isDType(c.dtype) || !Array.isArray(c.shape) || !c.shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`constant ${i} has dtype ${JSON.stringify(c.dtype)} and shape ${JSON.stringify(c.shape)}`);
    const n = c.shape.reduce((a, b) => a * b, 1), width = { float32: 4, int32: 4, int64: 8, uint8: 1, int8: 1, bool: 1 }[c.dtype];
    if (len !== n * width) bad(`constant ${c.name} holds ${formatBytes(len)}, its ${c.dtype} shape [${c.shape}] needs ${formatBytes(n * width)}`);
    if (off < 0 || off % 8 !== 0 || off + len > blob) bad(`constant ${c.name} lies at bytes ${off}..${off + len}, past the ${formatBytes(blob)} of data (truncated?)`);
    const t = zeros(c.dtype, c.shape);
    new Uint8Array(t.data.buffer).set(bytes.subarray(start + off, start + off + len));
    consts.set(String(c.name), t);
  }
  const nodes: Node[] = g.nodes.map((n, i) => {
    if (typeof n?.op !== 'string' || typeof n.name !== 'string' || !Array.isArray(n.inputs) || !Array.isArray(n.outputs)
      || ![...n.inputs, ...n.outputs].every((t) => typeof t === 'string') || typeof n.attrs !== 'object' || n.attrs === null) bad(`node ${i} is malformed`);
    if (!opDef(n.op)) bad(`node ${n.name}: unknown op ${JSON.stringify(n.op)}`);
    const attrs: Node['attrs'] = {};
    for (const [k, v] of Object.entries(n.attrs as Record<string, unknown>)) {
      const ref = (v as { $const?: unknown } | null)?.$const;
      const ok = typeof v === 'number' || typeof v === 'string' || (Array.isArray(v) && v.length <= 1 << 16 && (v.every((x) => typeof x === 'number') || v.every((x) => typeof x === 'string')));
      if (ok) attrs[k] = v as number;
      else if (typeof ref === 'string' && consts.has(ref)) attrs[k] = consts.get(ref)!;
      else bad(`node ${n.name}: attribute ${k} is ${JSON.stringify(v)?.slice(0, 80)}`);
    }
    return { op: n.op, name: n.name, inputs: n.inputs, outputs: n.outputs, attrs };
  });
  for (const k of [...consts.keys()]) if (k.startsWith('$attr/')) consts.delete(k);
  return { ir: { inputs: g.inputs, outputs: g.outputs, opset: g.opset, nodes, consts }, meta: header.meta ?? {} };
}

/** Parses a version-2 file; sizes are checked against the file and the graph is validated. */
export function decodeGraph(bytes: Uint8Array): { graph: Graph; meta: Record<string, unknown> } {
  return graphFrom(bytes, readHeader(bytes));
}

/** Parses a model file; every size is checked against the file before anything is allocated. */
export function decodeModel(bytes: Uint8Array): { model: Sequential; meta: Record<string, unknown> } {
  return modelFrom(bytes, readHeader(bytes));
}

function graphFrom(bytes: Uint8Array, { version, header, start }: FileHeader): { graph: Graph; meta: Record<string, unknown> } {
  if (version !== FCNN_GRAPH_VERSION) bad(`format version ${version} holds layers, not a graph`);
  const g = header.graph;
  if (!g || !Array.isArray(g.nodes) || !Array.isArray(g.consts) || typeof g.output !== 'string' || typeof g.input?.name !== 'string'
    || !Array.isArray(g.input.shape) || !g.input.shape.every((d) => Number.isInteger(d) && d > 0)) bad('the graph header is incomplete');
  const blob = bytes.length - start;
  const consts = new Map<string, Const>();
  for (const [i, c] of g.consts.entries()) {
    const off = num(c?.offset, `constant ${i} offset`), len = num(c?.length, `constant ${i} length`);
    if (!Array.isArray(c.shape) || !c.shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`constant ${i} has shape ${JSON.stringify(c.shape)}`);
    const n = c.shape.reduce((a, b) => a * b, 1);
    if (len !== n * 4) bad(`constant ${c.name} holds ${formatBytes(len)}, its shape [${c.shape}] needs ${formatBytes(n * 4)}`);
    if (off < 0 || off % 4 !== 0 || off + len > blob) bad(`constant ${c.name} lies at bytes ${off}..${off + len}, past the ${formatBytes(blob)} of data (truncated?)`);
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(bytes.subarray(start + off, start + off + len));
    consts.set(String(c.name), { shape: c.shape, data });
  }
  const graph: Graph = { input: { name: g.input.name, shape: g.input.shape, layout: g.input.layout === 'nhwc' ? 'nhwc' : 'nchw' }, output: g.output, nodes: g.nodes, consts };
  try {
    checkGraph(graph);
  } catch (e) {
    return bad((e as Error).message);
  }
  return { graph, meta: header.meta ?? {} };
}

function modelFrom(bytes: Uint8Array, { version, header, start }: FileHeader): { model: Sequential; meta: Record<string, unknown> } {
  if (version !== FCNN_VERSION || !Array.isArray(header.layers)) bad(`format version ${version} holds an imported graph: load it with loadModel()`);
  const blob = bytes.length - start;
  const layers = header.layers.map((e, i) => buildLayer(e, i, blob, 0));
  const fill = (e: LayerEntry, l: Layer, i: number) => {
    if (l instanceof Residual) {
      l.inner.forEach((inner, j) => fill(e.layers![j], inner, j));
      return;
    }
    const want = l.params();
    if (!Array.isArray(e.params) || e.params.length !== want.length) bad(`layer ${i} (${e.type}) lists ${e.params?.length} parameters, expected ${want.length}`);
    want.forEach((p, j) => {
      const q = e.params[j];
      const off = num(q?.offset, `layer ${i} parameter ${j} offset`), len = num(q?.length, `layer ${i} parameter ${j} length`);
      if (q.name !== p.name || JSON.stringify(q.shape) !== JSON.stringify(p.shape)) bad(`layer ${i} parameter ${j} is ${q.name} ${JSON.stringify(q.shape)}, expected ${p.name} ${JSON.stringify(p.shape)}`);
      if (len !== p.value.byteLength) bad(`layer ${i} ${p.name} holds ${formatBytes(len)}, its shape needs ${formatBytes(p.value.byteLength)}`);
      if (off < 0 || off % 4 !== 0 || off + len > blob) bad(`layer ${i} ${p.name} lies at bytes ${off}..${off + len}, past the ${formatBytes(blob)} of data (truncated?)`);
      new Uint8Array(p.value.buffer, p.value.byteOffset, p.value.byteLength).set(bytes.subarray(start + off, start + off + len));
      for (let k = 0; k < p.value.length; k++) if (!Number.isFinite(p.value[k])) bad(`layer ${i} ${p.name}[${k}] is ${p.value[k]}`);
    });
  };
  layers.forEach((l, i) => fill(header.layers[i], l, i));
  return { model: new Sequential(layers), meta: header.meta ?? {} };
}

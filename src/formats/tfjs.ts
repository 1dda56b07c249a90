import { GraphBuilder, MAX_ELEMENTS, ModelImportError, halfToFloat, samePads } from '../graph/builder.js';
import { sizeOf, zeros, type DType, type Tensor } from '../ir/tensor.js';
import type { Activation, Graph } from '../graph/graph.js';

/** A TF.js model.json (layers or graph format) with its weight bytes, group by group, shard after shard. */
export interface TfjsArtifacts {
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  /** All shards of all groups, concatenated in manifest order. */
  weightData: Uint8Array;
  format?: string;
  /** A graph model's named inputs and outputs ({ inputs: { key: { name: 'tensor:0' } }, outputs: ... }), where the converter wrote them. */
  signature?: { inputs?: Record<string, { name?: string }>; outputs?: Record<string, { name?: string }> };
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const bad = (why: string): never => {
  throw new ModelImportError(`TF.js model: ${why}`);
};

/** Every weight in the manifest as a tensor of its own dtype (quantized ones dequantized to float32). */
export function decodeTypedWeights(a: TfjsArtifacts): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const bytes = a.weightData;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  if (!Array.isArray(a.weightsManifest)) bad('weightsManifest is not a list');
  for (const group of a.weightsManifest) {
    if (!Array.isArray(group?.weights)) bad('a weightsManifest group has no weights list');
    for (const w of group.weights) {
      if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) bad(`weight ${JSON.stringify(w?.name)} has a bad name or shape`);
      const n = sizeOf(w.shape);
      if (n > MAX_ELEMENTS) bad(`weight ${w.name} claims ${n} elements (limit ${MAX_ELEMENTS})`);
      const q = w.quantization;
      const stored = q?.dtype ?? w.dtype;
      const size = ({ float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2, bool: 1 } as Record<string, number>)[stored] ?? bad(`weight ${w.name} has dtype ${stored}`);
      if (at + n * size > bytes.length) bad(`weight ${w.name} needs ${n * size} bytes at offset ${at}, the shards hold ${bytes.length}`);
      const dtype: DType = w.dtype === 'int32' ? 'int32' : w.dtype === 'bool' ? 'bool' : 'float32';
      const t = zeros(dtype, w.shape);
      const d = t.data as Float32Array;
      for (let i = 0; i < n; i++) {
        const p = at + i * size;
        let v: number;
        if (stored === 'float32') v = dv.getFloat32(p, true);
        else if (stored === 'int32') v = dv.getInt32(p, true);
        else if (stored === 'uint8' || stored === 'bool') v = bytes[p];
        else if (stored === 'uint16') v = dv.getUint16(p, true);
        else v = halfToFloat(dv.getUint16(p, true));
        d[i] = (stored === 'uint8' || stored === 'uint16') && q ? v * (q.scale ?? 1) + (q.min ?? 0) : v;
      }
      at += n * size;
      out.set(w.name, t);
    }
  }
  return out;
}

/** Decodes every weight in the manifest as float32 (uint8 / uint16 / float16 quantized ones dequantized). */
export function decodeWeights(a: TfjsArtifacts): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of decodeTypedWeights(a)) out.set(k, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Int32Array) });
  return out;
}

/** TF.js layers (Keras JSON) or graph model -> Graph (NCHW inside, NHWC at its edges). */
export function tfjsToGraph(a: TfjsArtifacts): Graph {
  const topo = a.modelTopology as Json;
  if (!topo || typeof topo !== 'object') bad('modelTopology is missing');
  const weights = decodeWeights(a);
  if (Array.isArray(topo.node)) return graphModel(topo.node, weights);
  const cfg = topo.model_config ?? topo;
  if (!cfg?.class_name) bad('modelTopology is neither a graph (node list) nor a Keras model_config');
  return layersModel(cfg, weights);
}

/** NHWC axis -> NCHW axis for four-dimensional tensors. */
const NHWC_AXIS = [0, 2, 3, 1];

function physicalAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  return rank === 4 ? NHWC_AXIS[a] : a;
}

/** [KH, KW, C, O] -> [O, C, KH, KW]. */
function hwioToOihw(w: { shape: number[]; data: Float32Array }): { shape: number[]; data: Float32Array } {
  const [KH, KW, C, O] = w.shape;
  const d = new Float32Array(w.data.length);
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let c = 0; c < C; c++) for (let o = 0; o < O; o++) {
    d[((o * C + c) * KH + kh) * KW + kw] = w.data[((kh * KW + kw) * C + c) * O + o];
  }
  return { shape: [O, C, KH, KW], data: d };
}

/** Depthwise [KH, KW, C, M] -> [C*M, 1, KH, KW] (output channel c*M + m). */
function depthwiseToOihw(w: { shape: number[]; data: Float32Array }): { shape: number[]; data: Float32Array } {
  const [KH, KW, C, M] = w.shape;
  const d = new Float32Array(w.data.length);
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
    d[((c * M + m) * KH + kh) * KW + kw] = w.data[((kh * KW + kw) * C + c) * M + m];
  }
  return { shape: [C * M, 1, KH, KW], data: d };
}

/** [R, C] -> [C, R]. */
function transpose2(w: { shape: number[]; data: Float32Array }): { shape: number[]; data: Float32Array } {
  const [R, C] = w.shape, d = new Float32Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) d[c * R + r] = w.data[r * C + c];
  return { shape: [C, R], data: d };
}

function pair(v: unknown, what: string): [number, number] {
  const p = typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? v : Array.isArray(v) && v.length === 4 ? [v[1], v[2]] : bad(`${what} is ${JSON.stringify(v)}`);
  if (!p.every((x: unknown) => Number.isInteger(x) && (x as number) >= 1)) bad(`${what} is ${JSON.stringify(v)}`);
  return p as [number, number];
}

/** Pads [top, left, bottom, right] for 'same' / 'valid' / explicit padding of a window op. */
function windowPads(mode: string, x: number[], k: [number, number], s: [number, number], d: [number, number], at: string, b: GraphBuilder): number[] {
  const m = mode.toLowerCase();
  if (m === 'valid') return [0, 0, 0, 0];
  if (m === 'same') {
    const [t, bo] = samePads(x[2], k[0], s[0], d[0]), [l, r] = samePads(x[3], k[1], s[1], d[1]);
    return [t, l, bo, r];
  }
  b.unsupported(`${at}: padding ${JSON.stringify(mode)} (supported: same, valid)`);
  return [0, 0, 0, 0];
}

function kerasActivation(act: string | undefined, at: string, b: GraphBuilder): Activation | 'softmax' {
  const a = act ?? 'linear';
  if (a === 'linear') return 'none';
  if (a === 'relu' || a === 'relu6' || a === 'sigmoid' || a === 'softmax') return a;
  b.unsupported(`${at}: activation ${JSON.stringify(a)} (supported: linear, relu, relu6, sigmoid, softmax)`);
  return 'none';
}

function layersModel(cfg: Json, weights: Map<string, { shape: number[]; data: Float32Array }>): Graph {
  const layers: Json[] = Array.isArray(cfg.config) ? cfg.config : cfg.config?.layers ?? bad('model_config.config.layers is missing');
  const sequential = cfg.class_name === 'Sequential';
  const first = layers[0]?.config ?? bad('the model has no layers');
  const inShape: unknown[] = first.batch_input_shape ?? first.batch_shape ?? bad('the first layer has no batch_input_shape');
  if (inShape.length !== 4 || !inShape.slice(1).every((d) => Number.isInteger(d) && (d as number) > 0)) {
    bad(`input shape ${JSON.stringify(inShape)} is not [batch, height, width, channels] with known sizes`);
  }
  const [, H, W, C] = inShape as number[];
  const b = new GraphBuilder('input', [1, C, H, W]);
  const tensors = new Map<string, string>();
  const weight = (layer: string, w: string) => {
    const hit = weights.get(`${layer}/${w}`) ?? [...weights.entries()].find(([k]) => k.endsWith(`/${layer}/${w}`))?.[1];
    return hit ?? bad(`layer ${layer} has no weight ${w}`);
  };
  let last = 'input';
  for (const layer of layers) {
    const name: string = layer.config?.name ?? layer.name;
    const c: Json = layer.config ?? {};
    const at = `layer ${name} (${layer.class_name})`;
    let inputs: string[];
    if (sequential) inputs = [last];
    else {
      const inbound: unknown[] = layer.inbound_nodes?.[0] ?? [];
      inputs = inbound.map((e) => {
        const src = Array.isArray(e) ? e[0] : bad(`${at}: inbound node ${JSON.stringify(e)} is not in the Keras 2 form`);
        return tensors.get(src) ?? bad(`${at} reads layer ${src}, which is not defined before it`);
      });
    }
    if (layer.class_name === 'InputLayer') {
      tensors.set(name, 'input');
      last = 'input';
      continue;
    }
    if (inputs.length === 0) inputs = ['input'];
    const x = inputs[0];
    const xs = b.shape(x);
    let y: string = x;
    switch (layer.class_name) {
      case 'ZeroPadding2D': {
        const p = c.padding;
        const [[t, bo], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p[0]) ? p : [[p[0], p[0]], [p[1], p[1]]];
        y = b.add('pad', name, [x], { pads: [0, 0, t, l, 0, 0, bo, r], value: 0 });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const depth = layer.class_name === 'DepthwiseConv2D';
        const k = pair(c.kernel_size, `${at} kernel_size`), s = pair(c.strides ?? 1, `${at} strides`), d = pair(c.dilation_rate ?? 1, `${at} dilation_rate`);
        const wt = depth ? depthwiseToOihw(weight(name, 'depthwise_kernel')) : hwioToOihw(weight(name, 'kernel'));
        const groups = depth ? xs[1] : c.groups ?? 1;
        const act = kerasActivation(c.activation, at, b);
        const ins = [x, b.constant(`${name}/kernel`, wt.shape, wt.data)];
        if (c.use_bias !== false) {
          const bias = weight(name, 'bias');
          ins.push(b.constant(`${name}/bias`, [bias.data.length], bias.data));
        }
        y = b.add('conv', name, ins, {
          stride: s, dilation: d, group: groups, pad: windowPads(c.padding ?? 'valid', xs, k, s, d, at, b), act: act === 'softmax' ? 'none' : act,
        });
        if (act === 'softmax') y = b.add('softmax', `${name}/softmax`, [y], { axis: 1 });
        break;
      }
      case 'BatchNormalization': {
        const axis = c.axis === undefined ? -1 : Array.isArray(c.axis) ? c.axis[0] : c.axis;
        if (physicalAxis(axis, xs.length) !== 1) b.unsupported(`${at}: axis ${axis} (only the channel axis)`);
        const n = xs[1];
        const mean = weight(name, 'moving_mean').data, variance = weight(name, 'moving_variance').data;
        const gamma = c.scale === false ? new Float32Array(n).fill(1) : weight(name, 'gamma').data;
        const beta = c.center === false ? new Float32Array(n) : weight(name, 'beta').data;
        const scale = new Float32Array(n), shift = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          scale[i] = gamma[i] / Math.sqrt(variance[i] + (c.epsilon ?? 1e-3));
          shift[i] = beta[i] - mean[i] * scale[i];
        }
        y = b.add('affine', name, [x, b.constant(`${name}/scale`, [n], scale), b.constant(`${name}/shift`, [n], shift)]);
        break;
      }
      case 'ReLU': {
        if (c.negative_slope) b.unsupported(`${at}: negative_slope ${c.negative_slope} (only 0)`);
        if (c.threshold) b.unsupported(`${at}: threshold ${c.threshold} (only 0)`);
        y = c.max_value === null || c.max_value === undefined ? b.add('relu', name, [x]) : b.add('clip', name, [x], { min: 0, max: c.max_value });
        break;
      }
      case 'Activation': {
        const act = kerasActivation(c.activation, at, b);
        if (act === 'softmax') y = b.add('softmax', name, [x], { axis: xs.length === 4 ? 1 : xs.length - 1 });
        else if (act === 'relu6') y = b.add('clip', name, [x], { min: 0, max: 6 });
        else if (act !== 'none') y = b.add(act, name, [x]);
        break;
      }
      case 'Add':
        y = inputs.slice(1).reduce((acc, t, i) => b.add('add', `${name}/${i}`, [acc, t]), x);
        break;
      case 'Concatenate':
        y = b.add('concat', name, inputs, { axis: physicalAxis(c.axis ?? -1, xs.length) });
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const k = pair(c.pool_size ?? 2, `${at} pool_size`), s = pair(c.strides ?? c.pool_size ?? 2, `${at} strides`);
        y = b.add(layer.class_name === 'MaxPooling2D' ? 'maxpool' : 'avgpool', name, [x], { kernel: k, stride: s, pad: windowPads(c.padding ?? 'valid', xs, k, s, [1, 1], at, b), countPad: 0 });
        break;
      }
      case 'GlobalAveragePooling2D':
        y = b.add('gap', name, [x], { keepDims: c.keepdims ? 1 : 0 });
        break;
      case 'Flatten':
        y = b.add('flatten', name, [x], { nhwc: 1 });
        break;
      case 'Dense': {
        if (xs.length !== 2) b.unsupported(`${at}: input of rank ${xs.length} (only [batch, features])`);
        const wt = transpose2(weight(name, 'kernel'));
        const act = kerasActivation(c.activation, at, b);
        const ins = [x, b.constant(`${name}/kernel`, wt.shape, wt.data)];
        if (c.use_bias !== false) {
          const bias = weight(name, 'bias');
          ins.push(b.constant(`${name}/bias`, [bias.data.length], bias.data));
        }
        y = b.add('dense', name, ins, { act: act === 'softmax' ? 'none' : act });
        if (act === 'softmax') y = b.add('softmax', `${name}/softmax`, [y], { axis: 1 });
        break;
      }
      case 'Dropout':
        break;
      default:
        b.unsupported(`${at}: layer type ${layer.class_name}`);
    }
    tensors.set(name, y);
    last = y;
  }
  const outs: unknown[] = cfg.config?.output_layers ?? [];
  if (outs.length > 1) bad(`${outs.length} outputs (one is supported)`);
  const out = outs.length ? tensors.get((outs[0] as unknown[])[0] as string) ?? bad('the output layer is not defined') : last;
  return b.finish(out, 'nhwc');
}

/** Attribute values of a GraphDef node (JSON as tfjs-converter writes it). */
const attrList = (n: Json, k: string): number[] => (n.attr?.[k]?.list?.i ?? []).map(Number);
const base64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
const attrStr = (n: Json, k: string): string => {
  const s = n.attr?.[k]?.s;
  return typeof s === 'string' ? new TextDecoder().decode(base64(s)) : '';
};
const attrStrList = (n: Json, k: string): string[] => (n.attr?.[k]?.list?.s ?? []).map((s: string) => new TextDecoder().decode(base64(s)));

function graphModel(nodes: Json[], weights: Map<string, { shape: number[]; data: Float32Array }>): Graph {
  const ph = nodes.filter((n) => n.op === 'Placeholder');
  if (ph.length !== 1) bad(`${ph.length} Placeholder inputs (one is supported)`);
  const dims = (ph[0].attr?.shape?.shape?.dim ?? []).map((d: Json) => Number(d.size ?? -1));
  if (dims.length !== 4 || dims.slice(1).some((d: number) => !(d > 0))) bad(`input shape [${dims}] is not [batch, height, width, channels] with known sizes`);
  const [, H, W, C] = dims;
  const b = new GraphBuilder('input', [1, C, H, W]);
  // Graph tensors by TF name; constants stay in TF layout until a consumer converts them.
  const tensors = new Map<string, string>([[ph[0].name, 'input']]);
  const consts = new Map<string, { shape: number[]; data: Float32Array }>();
  const src = (s: string) => s.replace(/^\^/, '').replace(/:0$/, '');
  const constOf = (s: string, at: string) => consts.get(src(s)) ?? bad(`${at}: input ${s} must be a constant`);
  const tensor = (s: string, at: string) => tensors.get(src(s)) ?? bad(`${at}: reads ${s}, which is not produced before it`);
  /** An operand of an element-wise op: a tensor, or a constant put into the NCHW broadcast shape. */
  const operand = (s: string, rank: number, at: string): string => {
    const name = src(s);
    if (tensors.has(name)) return tensors.get(name)!;
    const k = constOf(s, at);
    const n = k.data.length;
    if (rank === 4 && n > 1) {
      if (k.shape.length === 4 && k.shape[1] * k.shape[2] > 1) {
        const [N, h, w, c] = k.shape;
        const d = new Float32Array(n);
        for (let i = 0; i < N * h * w; i++) for (let j = 0; j < c; j++) d[(Math.floor(i / (h * w)) * c + j) * h * w + (i % (h * w))] = k.data[i * c + j];
        return b.constant(name, [N, c, h, w], d);
      }
      return b.constant(name, [1, n, 1, 1], k.data);
    }
    return b.constant(name, k.shape, k.data);
  };
  /** A fused conv / matmul's extra ops: a bias joins `inputs`, an activation is returned. */
  const fusedOps = (n: Json, ins: string[], inputs: string[], at: string): Activation => {
    let act: Activation = 'none';
    for (const op of attrStrList(n, 'fused_ops')) {
      if (op === 'BiasAdd') {
        const bias = constOf(ins[2], at);
        inputs.push(b.constant(`${n.name}/bias`, [bias.data.length], bias.data));
      } else if (op === 'Relu') act = 'relu';
      else if (op === 'Relu6') act = 'relu6';
      else b.unsupported(`${at}: fused op ${op} (supported: BiasAdd, Relu, Relu6)`);
    }
    return act;
  };
  for (const n of nodes) {
    const at = `node ${n.name} (${n.op})`;
    const ins: string[] = (n.input ?? []).filter((s: string) => !s.startsWith('^'));
    if (n.op === 'Placeholder') continue;
    if (n.op === 'Const') {
      const w = weights.get(n.name) ?? inlineTensor(n);
      if (!w) bad(`${at} has no value in the weights manifest`);
      consts.set(n.name, w!);
      continue;
    }
    if (n.op === 'Identity' && consts.has(src(ins[0] ?? ''))) {
      consts.set(n.name, consts.get(src(ins[0]))!);
      continue;
    }
    let y: string | undefined;
    const x = () => tensor(ins[0], at);
    const rank = () => b.shape(x()).length;
    switch (n.op) {
      case 'Identity':
        y = x();
        break;
      case 'Mul':
      case 'Sub':
      case 'AddV2':
      case 'Add':
      case 'RealDiv': {
        const r = Math.max(...ins.map((s) => (tensors.has(src(s)) ? b.shape(tensors.get(src(s))!).length : 0)));
        if (r === 0) bad(`${at}: both operands are constants`);
        const op = ({ Mul: 'mul', Sub: 'sub', AddV2: 'add', Add: 'add', RealDiv: 'div' } as const)[n.op as 'Mul'];
        y = b.add(op, n.name, [operand(ins[0], r, at), operand(ins[1], r, at)]);
        break;
      }
      case 'BiasAdd':
        y = b.add('add', n.name, [x(), operand(ins[1], rank(), at)]);
        break;
      case '_FusedConv2D':
      case 'FusedDepthwiseConv2dNative':
      case 'Conv2D':
      case 'DepthwiseConv2dNative': {
        const depth = n.op.includes('Depthwise');
        if (attrStr(n, 'data_format') && attrStr(n, 'data_format') !== 'NHWC') b.unsupported(`${at}: data_format ${attrStr(n, 'data_format')}`);
        const f = constOf(ins[1], at);
        const wt = depth ? depthwiseToOihw(f) : hwioToOihw(f);
        const xs = b.shape(x());
        const st = attrList(n, 'strides'), dl = attrList(n, 'dilations');
        const s: [number, number] = [st[1] ?? 1, st[2] ?? 1], d: [number, number] = [dl[1] ?? 1, dl[2] ?? 1];
        const mode = attrStr(n, 'padding');
        let pad: number[];
        if (mode === 'EXPLICIT') {
          const e = attrList(n, 'explicit_paddings');
          pad = [e[2], e[4], e[3], e[5]];
        } else pad = windowPads(mode, xs, [wt.shape[2], wt.shape[3]], s, d, at, b);
        const inputs = [x(), b.constant(`${n.name}/filter`, wt.shape, wt.data)];
        const act = fusedOps(n, ins, inputs, at);
        y = b.add('conv', n.name, inputs, { stride: s, dilation: d, group: depth ? xs[1] : 1, pad, act });
        break;
      }
      case 'Relu':
        y = b.add('relu', n.name, [x()]);
        break;
      case 'Relu6':
        y = b.add('clip', n.name, [x()], { min: 0, max: 6 });
        break;
      case 'AvgPool':
      case 'MaxPool': {
        const k = attrList(n, 'ksize'), st = attrList(n, 'strides');
        const kk: [number, number] = [k[1], k[2]], s: [number, number] = [st[1], st[2]];
        y = b.add(n.op === 'MaxPool' ? 'maxpool' : 'avgpool', n.name, [x()], { kernel: kk, stride: s, pad: windowPads(attrStr(n, 'padding'), b.shape(x()), kk, s, [1, 1], at, b), countPad: 0 });
        break;
      }
      case 'Mean': {
        const r = rank();
        const axes = Array.from(constOf(ins[1], at).data, (a) => physicalAxis(a, r)).sort();
        const keep = n.attr?.keep_dims?.b ? 1 : 0;
        y = r === 4 && axes.join() === '2,3' ? b.add('gap', n.name, [x()], { keepDims: keep }) : b.add('mean', n.name, [x()], { axes, keepDims: keep });
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        if (n.attr?.transpose_a?.b) b.unsupported(`${at}: transpose_a`);
        const m = constOf(ins[1], at);
        const wt = n.attr?.transpose_b?.b ? m : transpose2(m);
        const inputs = [x(), b.constant(`${n.name}/weight`, wt.shape, wt.data)];
        y = b.add('dense', n.name, inputs, { act: fusedOps(n, ins, inputs, at) });
        break;
      }
      case 'Squeeze': {
        const r = rank();
        let axes = attrList(n, 'squeeze_dims').map((a) => physicalAxis(a, r));
        if (axes.length === 0) axes = b.shape(x()).flatMap((d, i) => (d === 1 && i > 0 ? [i] : []));
        y = b.add('squeeze', n.name, [x()], { axes: axes.sort() });
        break;
      }
      case 'Reshape': {
        const shape = Array.from(constOf(ins[1], at).data);
        let t = x();
        if (rank() === 4) t = b.add('transpose', `${n.name}/to-nhwc`, [t], { perm: [0, 2, 3, 1] });
        if (shape[0] !== -1 && shape.length > 0) shape[0] = -1;
        y = b.add('reshape', n.name, [t], { shape });
        if (shape.length === 4) y = b.add('transpose', `${n.name}/to-nchw`, [y], { perm: [0, 3, 1, 2] });
        break;
      }
      case 'Softmax':
        y = b.add('softmax', n.name, [x()], { axis: physicalAxis(-1, rank()) });
        break;
      case 'Pad': {
        const p = Array.from(constOf(ins[1], at).data);
        const r = rank();
        if (p.length !== 2 * r) bad(`${at}: paddings of ${p.length} values for rank ${r}`);
        const begin = p.filter((_, i) => i % 2 === 0), end = p.filter((_, i) => i % 2 === 1);
        const perm = r === 4 ? [0, 3, 1, 2] : [...Array(r).keys()];
        y = b.add('pad', n.name, [x()], { pads: [...perm.map((i) => begin[i]), ...perm.map((i) => end[i])], value: 0 });
        break;
      }
      case 'ConcatV2': {
        const parts = ins.slice(0, -1).map((s) => tensor(s, at));
        const r = b.shape(parts[0]).length;
        y = b.add('concat', n.name, parts, { axis: physicalAxis(constOf(ins[ins.length - 1], at).data[0], r) });
        break;
      }
      default:
        b.unsupported(`${at}: op ${n.op}`);
    }
    if (y) tensors.set(n.name, y);
  }
  const produced = new Set(nodes.flatMap((n) => (n.input ?? []).map(src)));
  const sinks = nodes.filter((n) => !produced.has(n.name) && tensors.has(n.name));
  if (sinks.length !== 1) bad(`${sinks.length} outputs (${sinks.map((s) => s.name).join(', ')}); one is supported`);
  return b.finish(tensors.get(sinks[0].name)!, 'nhwc');
}

/** A small constant written into the graph itself (floatVal / intVal / tensorContent). */
function inlineTensor(n: Json): { shape: number[]; data: Float32Array } | undefined {
  const t = n.attr?.value?.tensor;
  if (!t) return undefined;
  const shape = (t.tensorShape?.dim ?? []).map((d: Json) => Number(d.size));
  const size = shape.reduce((a: number, d: number) => a * d, 1);
  if (size > MAX_ELEMENTS) bad(`node ${n.name}: inline tensor of ${size} elements`);
  let vals: number[] = (t.floatVal ?? t.intVal ?? t.int64Val ?? []).map(Number);
  if (t.tensorContent) {
    const raw = base64(t.tensorContent);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const f = t.dtype === 'DT_FLOAT';
    vals = Array.from({ length: Math.floor(raw.length / 4) }, (_, i) => (f ? dv.getFloat32(4 * i, true) : dv.getInt32(4 * i, true)));
  }
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = vals[Math.min(i, vals.length - 1)] ?? 0;
  return { shape, data };
}

/**
 * Reads a TF.js model from a model.json path (shards beside it), or from a JS module that
 * exports the model.json object, with shards as modules beside it exporting their bytes
 * base64-encoded (as the nsfwjs package ships them). Loading a JS module runs its code.
 */
export async function readTfjs(path: string): Promise<TfjsArtifacts> {
  const { readFile } = await import('node:fs/promises');
  const { dirname, join, resolve } = await import('node:path');
  path = resolve(path);
  const { existsSync } = await import('node:fs');
  const dir = dirname(path);
  let json: Json;
  if (/\.[cm]?js$/.test(path)) {
    const { createRequire } = await import('node:module');
    const mod = createRequire(import.meta.url)(path);
    json = mod?.default ?? mod;
  } else {
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      return bad(`${path}: not JSON (${(e as Error).message})`);
    }
  }
  if (!json?.modelTopology || !Array.isArray(json.weightsManifest)) bad(`${path} has no modelTopology and weightsManifest`);
  const parts: Uint8Array[] = [];
  for (const g of json.weightsManifest) {
    for (const p of g.paths ?? []) {
      if (typeof p !== 'string' || p.includes('..')) bad(`shard path ${JSON.stringify(p)}`);
      const js = [`${p}.min.js`, `${p}.js`].map((f) => join(dir, f)).find(existsSync);
      if (js) {
        const { createRequire } = await import('node:module');
        const m = createRequire(import.meta.url)(js);
        const v = m?.default ?? m;
        parts.push(typeof v === 'string' ? new Uint8Array(Buffer.from(v, 'base64')) : v instanceof Uint8Array ? v : bad(`${js} exports neither base64 text nor bytes`));
      } else {
        const file = join(dir, p);
        if (!existsSync(file)) bad(`shard ${p} not found beside ${path}`);
        parts.push(new Uint8Array(await readFile(file)));
      }
    }
  }
  const weightData = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    weightData.set(p, at);
    at += p.length;
  }
  return { modelTopology: json.modelTopology, weightsManifest: json.weightsManifest, weightData, format: json.format, signature: json.signature ?? json.userDefinedMetadata?.signature };
}

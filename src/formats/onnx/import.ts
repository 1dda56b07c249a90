import { GraphBuilder, ModelImportError } from '../../graph/builder.js';
import type { Graph } from '../../graph/graph.js';
import { transpose } from '../../graph/ops.js';
import type { Range } from '../../graph/run.js';
import { Msg, readTensor, type OnnxTensor } from './reader.js';

/** The ops onnxToGraph reads (default domain). */
export const ONNX_OPS = ['Conv', 'Gemm', 'MatMul', 'Relu', 'Clip', 'Sigmoid', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'BatchNormalization',
  'Add', 'Sub', 'Mul', 'Div', 'Flatten', 'Reshape', 'Transpose', 'Softmax', 'LogSoftmax', 'Concat', 'Pad', 'Squeeze', 'Identity', 'Dropout',
  'QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul'];

const bad = (why: string): never => {
  throw new ModelImportError(`ONNX model: ${why}`);
};

interface Node { op: string; name: string; domain: string; inputs: string[]; outputs: string[]; attrs: Map<string, Msg> }

/** The code range a quantized tensor of this ONNX type holds. */
function codeRange(dtype: string): [number, number] {
  return dtype === 'int8' ? [-128, 127] : [0, 255];
}

/**
 * ONNX (float, QDQ or QLinear) -> Graph. Quantized tensors are carried as their dequantized float
 * values: QuantizeLinear becomes the rounding it does, DequantizeLinear of a weight folds into a
 * float constant, QLinearConv becomes a float convolution followed by that rounding. `ranges`
 * holds, for each tensor the model quantizes, the range its own scale and zero point cover, so
 * that 8-bit integer execution reproduces the model's codes.
 */
export function onnxToGraph(bytes: Uint8Array): { graph: Graph; ranges: Record<string, Range> } {
  const model = new Msg(bytes);
  const g = model.msg(7) ?? bad('no graph (is this an ONNX model?)');
  const consts = new Map<string, OnnxTensor>();
  for (const t of g.msgs(5)) {
    const x = readTensor(t);
    consts.set(x.name, x);
  }
  const inputs = g.msgs(11).filter((v) => !consts.has(v.str(1)));
  if (inputs.length !== 1) bad(`${inputs.length} graph inputs (one is supported): ${inputs.map((v) => v.str(1)).join(', ')}`);
  const dims = inputs[0].msg(2)?.msg(1)?.msg(2)?.msgs(1).map((d) => (d.all(1).length ? d.int(1) : -1)) ?? [];
  if (dims.length < 2 || dims.slice(1).some((d) => !(d > 0))) bad(`input ${inputs[0].str(1)} has shape [${dims}]; sizes after the batch must be known`);
  const inName = inputs[0].str(1);
  const b = new GraphBuilder(inName, [1, ...dims.slice(1)]);
  const outputs = g.msgs(12).map((v) => v.str(1));
  if (outputs.length !== 1) bad(`${outputs.length} graph outputs (one is supported)`);
  const nodes: Node[] = g.msgs(1).map((n, i) => ({
    op: n.str(4), name: n.str(3) || `node${i}`, domain: n.str(7), inputs: n.strs(1), outputs: n.strs(2),
    attrs: new Map(n.msgs(5).map((a) => [a.str(1), a])),
  }));
  const ranges: Record<string, Range> = {};
  // ONNX tensor name -> graph tensor name.
  const names = new Map<string, string>([[inName, inName]]);
  const tensor = (s: string, at: string) => names.get(s) ?? (consts.has(s) ? b.constant(s, consts.get(s)!.dims, consts.get(s)!.data) : bad(`${at} reads ${s}, which nothing before it produces`));
  const constOf = (s: string | undefined, at: string, what: string) => (s && consts.get(s)) || bad(`${at}: ${what} (${s}) must be a constant initializer`);
  const scalar = (s: string | undefined, at: string, what: string) => {
    const t = constOf(s, at, what);
    if (t.data.length !== 1) bad(`${at}: ${what} must be a single value (per-tensor), it has ${t.data.length}`);
    return t.data[0];
  };
  const ints = (n: Node, k: string, fallback: number[]) => (n.attrs.has(k) ? n.attrs.get(k)!.ints(8) : fallback);
  const int = (n: Node, k: string, fallback: number) => (n.attrs.has(k) ? n.attrs.get(k)!.int(3) : fallback);
  const float = (n: Node, k: string, fallback: number) => (n.attrs.has(k) ? n.attrs.get(k)!.float(2) : fallback);
  const str = (n: Node, k: string, fallback: string) => (n.attrs.has(k) ? n.attrs.get(k)!.str(4) : fallback);
  const rankOf = (s: string) => b.shape(s).length;
  const axisOf = (a: number, r: number) => (a < 0 ? a + r : a);

  /** Pads [t, l, b, r] from pads / auto_pad of a window op. */
  const windowPads = (n: Node, x: number[], k: number[], s: number[], d: number[]): number[] => {
    const auto = str(n, 'auto_pad', 'NOTSET');
    if (auto === 'NOTSET') {
      const p = ints(n, 'pads', [0, 0, 0, 0]);
      if (p.length !== 4) b.unsupported(`node ${n.name} (${n.op}): pads [${p}] (2-D only)`);
      return p;
    }
    if (auto === 'VALID') return [0, 0, 0, 0];
    const pads = [0, 1].map((i) => {
      const out = Math.ceil(x[2 + i] / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - x[2 + i]);
      const small = Math.floor(total / 2);
      return auto === 'SAME_LOWER' ? [total - small, small] : [small, total - small];
    });
    return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]];
  };

  /** A dequantized float copy of a quantized constant (per tensor or per channel on `axis`). */
  const dequant = (q: OnnxTensor, scale: OnnxTensor, zero: OnnxTensor | undefined, axis: number): Float32Array => {
    const out = new Float32Array(q.data.length);
    const C = q.dims[axis] ?? 1, inner = q.dims.slice(axis + 1).reduce((a, c) => a * c, 1);
    for (let i = 0; i < out.length; i++) {
      const c = scale.data.length === 1 ? 0 : Math.floor(i / inner) % C;
      out[i] = (q.data[i] - (zero ? zero.data[zero.data.length === 1 ? 0 : c] : 0)) * scale.data[c];
    }
    return out;
  };

  for (const n of nodes) {
    const at = `node ${n.name} (${n.op})`;
    if (n.domain && n.domain !== 'ai.onnx') {
      b.unsupported(`${at}: domain ${n.domain}`);
      continue;
    }
    if (n.op === 'Constant') {
      const t = n.attrs.get('value')?.msg(5);
      if (!t) {
        b.unsupported(`${at}: only a tensor 'value'`);
        continue;
      }
      consts.set(n.outputs[0], { ...readTensor(t), name: n.outputs[0] });
      continue;
    }
    // After a problem, later nodes read the unsupported node's input in its place, so that every
    // problem is found in one pass; errors that follow from an earlier problem are not reported.
    const passOn = () => {
      const from = names.get(n.inputs[0]);
      if (from) for (const o of n.outputs) names.set(o, from);
    };
    if (!ONNX_OPS.includes(n.op)) {
      b.unsupported(`${at}: op ${n.op}`);
      passOn();
      continue;
    }
    try {
      convert(n, at);
    } catch (e) {
      if (!(e instanceof ModelImportError) || b.problems.length === 0) throw e;
      passOn();
    }
  }

  function convert(n: Node, at: string): void {
    if (n.op === 'DequantizeLinear' && consts.has(n.inputs[0])) {
      const q = consts.get(n.inputs[0])!;
      const data = dequant(q, constOf(n.inputs[1], at, 'scale'), consts.get(n.inputs[2] ?? ''), axisOf(int(n, 'axis', 1), q.dims.length));
      consts.set(n.outputs[0], { name: n.outputs[0], dims: q.dims, dtype: 'float', data });
      return;
    }
    const x = () => tensor(n.inputs[0], at);
    let y: string;
    const unsupportedAttr = (k: string, ok: (v: number) => boolean, fallback: number) => {
      const v = int(n, k, fallback);
      if (!ok(v)) b.unsupported(`${at}: ${k}=${v}`);
    };
    switch (n.op) {
      case 'Conv':
      case 'QLinearConv': {
        const ql = n.op === 'QLinearConv';
        const wi = ql ? 3 : 1;
        const w = constOf(n.inputs[wi], at, 'the weight');
        if (w.dims.length !== 4) {
          b.unsupported(`${at}: a ${w.dims.length - 2}-D convolution (2-D only)`);
          return;
        }
        const s = ints(n, 'strides', [1, 1]), d = ints(n, 'dilations', [1, 1]);
        const xs = b.shape(x());
        let wData = w.data, bias: Float32Array | undefined;
        if (ql) {
          const xScale = scalar(n.inputs[1], at, 'x_scale');
          const wScale = constOf(n.inputs[4], at, 'w_scale');
          wData = dequant(w, wScale, consts.get(n.inputs[5]), 0);
          const B = n.inputs[8] ? constOf(n.inputs[8], at, 'B') : undefined;
          if (B) bias = B.data.map((v, o) => v * xScale * wScale.data[wScale.data.length === 1 ? 0 : o]);
        } else if (n.inputs[2]) bias = constOf(n.inputs[2], at, 'the bias').data;
        const ins = [x(), b.constant(`${n.name}/W`, w.dims, wData)];
        if (bias) ins.push(b.constant(`${n.name}/B`, [bias.length], bias));
        y = b.add('conv', n.name, ins, { stride: s, dilation: d, group: int(n, 'group', 1), pad: windowPads(n, xs, w.dims.slice(2), s, d), act: 'none' });
        if (ql) y = quantize(y, scalar(n.inputs[6], at, 'y_scale'), constOf(n.inputs[7], at, 'y_zero_point'), n.outputs[0]);
        break;
      }
      case 'Gemm':
      case 'MatMul':
      case 'QLinearMatMul': {
        const ql = n.op === 'QLinearMatMul';
        const bi = ql ? 3 : 1;
        const m = constOf(n.inputs[bi], at, 'B');
        if (rankOf(x()) !== 2 || m.dims.length !== 2) {
          b.unsupported(`${at}: only [N, K] x constant [K, O] is supported`);
          return;
        }
        if (int(n, 'transA', 0)) b.unsupported(`${at}: transA=1`);
        let data = ql ? dequant(m, constOf(n.inputs[4], at, 'b_scale'), consts.get(n.inputs[5]), 1) : m.data;
        const alpha = float(n, 'alpha', 1);
        if (alpha !== 1) data = data.map((v) => v * alpha);
        const transB = n.op === 'Gemm' && int(n, 'transB', 0) === 1;
        const [R, C] = m.dims;
        const W = transB ? data : transpose({ data, shape: [R, C] }, [1, 0]).data;
        const ins = [x(), b.constant(`${n.name}/W`, transB ? [R, C] : [C, R], W)];
        if (n.op === 'Gemm' && n.inputs[2]) {
          const c = constOf(n.inputs[2], at, 'C');
          const beta = float(n, 'beta', 1);
          const O = transB ? R : C;
          if (c.data.length !== O) b.unsupported(`${at}: C of ${c.data.length} values (only a bias of ${O})`);
          ins.push(b.constant(`${n.name}/B`, [O], c.data.map((v) => v * beta)));
        }
        y = b.add('dense', n.name, ins, { act: 'none' });
        if (ql) y = quantize(y, scalar(n.inputs[6], at, 'y_scale'), constOf(n.inputs[7], at, 'y_zero_point'), n.outputs[0]);
        break;
      }
      case 'Relu':
        y = b.add('relu', n.name, [x()]);
        break;
      case 'Sigmoid':
        y = b.add('sigmoid', n.name, [x()]);
        break;
      case 'Clip': {
        const lo = n.inputs[1] ? scalar(n.inputs[1], at, 'min') : float(n, 'min', -3.4e38);
        const hi = n.inputs[2] ? scalar(n.inputs[2], at, 'max') : float(n, 'max', 3.4e38);
        y = b.add('clip', n.name, [x()], { min: lo, max: hi });
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const k = ints(n, 'kernel_shape', []);
        if (k.length !== 2) {
          b.unsupported(`${at}: kernel_shape [${k}] (2-D only)`);
          return;
        }
        unsupportedAttr('ceil_mode', (v) => v === 0, 0);
        unsupportedAttr('storage_order', (v) => v === 0, 0);
        if (ints(n, 'dilations', [1, 1]).some((v) => v !== 1)) b.unsupported(`${at}: dilations`);
        const s = ints(n, 'strides', [1, 1]);
        y = b.add(n.op === 'MaxPool' ? 'maxpool' : 'avgpool', n.name, [x()], {
          kernel: k, stride: s, pad: windowPads(n, b.shape(x()), k, s, [1, 1]), countPad: int(n, 'count_include_pad', 0),
        });
        break;
      }
      case 'GlobalAveragePool':
        y = b.add('gap', n.name, [x()], { keepDims: 1 });
        break;
      case 'BatchNormalization': {
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => constOf(n.inputs[i], at, ['scale', 'B', 'mean', 'var'][i - 1]).data);
        const eps = float(n, 'epsilon', 1e-5);
        const k = scale.map((g, c) => g / Math.sqrt(variance[c] + eps));
        const sh = bias.map((v, c) => v - mean[c] * k[c]);
        y = b.add('affine', n.name, [x(), b.constant(`${n.name}/scale`, [k.length], k), b.constant(`${n.name}/shift`, [k.length], sh)]);
        break;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        y = b.add(n.op.toLowerCase() as 'add', n.name, [tensor(n.inputs[0], at), tensor(n.inputs[1], at)]);
        break;
      case 'Flatten': {
        const axis = axisOf(int(n, 'axis', 1), rankOf(x()));
        if (axis !== 1) b.unsupported(`${at}: axis=${axis} (only 1)`);
        y = b.add('flatten', n.name, [x()], {});
        break;
      }
      case 'Reshape':
        y = b.add('reshape', n.name, [x()], { shape: Array.from(constOf(n.inputs[1], at, 'shape').data) });
        break;
      case 'Transpose': {
        const r = rankOf(x());
        y = b.add('transpose', n.name, [x()], { perm: ints(n, 'perm', [...Array(r).keys()].reverse()) });
        break;
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const r = rankOf(x());
        const opset = model.msgs(8).find((o) => !o.str(1))?.int(2) ?? 13;
        const axis = axisOf(int(n, 'axis', opset >= 13 ? -1 : 1), r);
        if (opset < 13 && axis !== r - 1) b.unsupported(`${at}: axis ${axis} before opset 13 (softmax over flattened trailing axes)`);
        y = b.add('softmax', n.name, [x()], { axis, log: n.op === 'LogSoftmax' ? 1 : 0 });
        break;
      }
      case 'Concat': {
        const r = rankOf(tensor(n.inputs[0], at));
        y = b.add('concat', n.name, n.inputs.map((s) => tensor(s, at)), { axis: axisOf(int(n, 'axis', 1), r) });
        break;
      }
      case 'Pad': {
        if (str(n, 'mode', 'constant') !== 'constant') b.unsupported(`${at}: mode ${str(n, 'mode', '')} (only constant)`);
        const pads = n.inputs[1] ? Array.from(constOf(n.inputs[1], at, 'pads').data) : ints(n, 'pads', []);
        if (n.inputs[3]) b.unsupported(`${at}: axes input`);
        const value = n.inputs[2] ? scalar(n.inputs[2], at, 'constant_value') : float(n, 'value', 0);
        y = b.add('pad', n.name, [x()], { pads, value });
        break;
      }
      case 'Squeeze': {
        const r = rankOf(x());
        const axes = (n.inputs[1] ? Array.from(constOf(n.inputs[1], at, 'axes').data) : ints(n, 'axes', b.shape(x()).flatMap((d, i) => (d === 1 ? [i] : []))))
          .map((a) => axisOf(a, r)).sort();
        y = b.add('squeeze', n.name, [x()], { axes });
        break;
      }
      case 'Identity':
      case 'Dropout':
        y = x();
        break;
      case 'QuantizeLinear': {
        const zp = n.inputs[2] ? constOf(n.inputs[2], at, 'y_zero_point') : { name: '', dims: [], dtype: 'uint8', data: new Float32Array(1) };
        y = quantize(x(), scalar(n.inputs[1], at, 'y_scale'), zp, n.outputs[0]);
        break;
      }
      case 'DequantizeLinear': {
        // Its input is already carried as dequantized values; the scale must match its quantizer's.
        y = x();
        break;
      }
      default:
        return;
    }
    names.set(n.outputs[0], y);
    if (n.outputs.length > 1 && n.op !== 'Dropout') b.unsupported(`${at}: ${n.outputs.length} outputs`);
  }

  /** The rounding a QuantizeLinear does, as a node; records the range its codes cover. */
  function quantize(t: string, scale: number, zero: OnnxTensor, name: string): string {
    if (zero.data.length !== 1) bad(`${name}: a per-channel activation zero point`);
    if (!(scale > 0)) bad(`${name}: scale ${scale}`);
    const [qmin, qmax] = codeRange(zero.dtype);
    const z = zero.data[0];
    const out = b.add('fakequant', name, [t], { scale, zero: z, qmin, qmax });
    ranges[out] = [(qmin - z) * scale, (qmax - z) * scale];
    return out;
  }

  const out = names.get(outputs[0]) ?? (b.problems.length ? '' : bad(`the output ${outputs[0]} is never produced`));
  return { graph: b.finish(out, 'nchw'), ranges };
}

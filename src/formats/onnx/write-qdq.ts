import { ArgumentError } from '../../errors.js';
import type { Graph, Node } from '../../ir/graph.js';
import { fromNumbers, sizeOf, zeros, type Tensor } from '../../ir/tensor.js';
import { activationQuant, layerInputs, layerQuant, takesCodes, type QuantOptions, type Range } from '../../kernels/wasm/int-conv.js';
import { attrInt } from '../../ops/registry.js';
import { writeOnnx } from './write-ir.js';

/**
 * The quantized execution of a graph as ONNX QDQ, for onnxruntime to run as an independent
 * oracle: before each Conv / Gemm that runs on codes (with a static range: `quant.bits` and
 * `quant.ranges`, or `quant.layers` per node), the input is clipped to the range its codes cover
 * and passed through QuantizeLinear / DequantizeLinear (uint8) with that range's scale and zero
 * point; its weights become int8 per output channel (symmetric, scale max |w| / (2^(b-1) - 1) at
 * the layer's weight bits b) behind a DequantizeLinear. onnxruntime then computes each layer from
 * codes in float, where faster-cnn adds table entries or multiplies integers.
 */
export function writeQdq(g: Graph, quant: Pick<QuantOptions, 'bits' | 'ranges' | 'layers' | 'biasCorrection'>): Uint8Array {
  const consts = new Map(g.consts);
  const nodes: Node[] = [];
  let k = 0;
  const c = (name: string, t: Tensor) => {
    const key = `${name}#qdq${k++}`;
    consts.set(key, t);
    return key;
  };
  const levels = Object.entries(quant.layers ?? {}).filter(([, l]) => l.levels).map(([name]) => name);
  if (levels.length) throw new ArgumentError('quant.layers', levels.join(', '), 'uniform codes only: QDQ has no form for non-uniform levels');
  for (const node of g.nodes) {
    // A layer with refitted weights (calibration's refit) runs them and their bias.
    const n = { ...node, inputs: layerInputs(quant, node, g.consts) };
    const w = consts.get(n.inputs[1]);
    const { bits, weightBits, range, channelRanges } = layerQuant(quant, n);
    const eligible = takesCodes(n, w) && bits && (range || channelRanges);
    if (!eligible) {
      nodes.push(node);
      continue;
    }
    const L = (1 << bits) - 1, top = 2 ** (weightBits - 1) - 1;
    const x = n.inputs[0];
    if (channelRanges) {
      nodes.push(...channelQdq(n, w!, consts, channelRanges, bits, weightBits, quant.biasCorrection?.[n.name], c, () => k++));
      continue;
    }
    const { scale, zero } = activationQuant(range!, bits);
    // Below 8 bits a Clip keeps the codes within 0..2^bits - 1; at 8 bits QuantizeLinear's own
    // saturation does (and onnxruntime's QDQ fusions then see the usual DQ -> Conv -> Q form).
    const q = `${x}:q${k++}`, dq = `${x}:dq${k++}`;
    let clipped = x;
    if (L < 255) {
      clipped = `${x}:clip${k++}`;
      nodes.push({ op: 'Clip', name: `${n.name}/clip`, inputs: [x, c('lo', fromNumbers('float32', [], [(0 - zero) * scale])), c('hi', fromNumbers('float32', [], [(L - zero) * scale]))], outputs: [clipped], attrs: {} });
    }
    const s = c('x_scale', fromNumbers('float32', [], [scale])), z = c('x_zero', fromNumbers('uint8', [], [zero]));
    nodes.push({ op: 'QuantizeLinear', name: `${n.name}/quantize`, inputs: [clipped, s, z], outputs: [q], attrs: {} });
    nodes.push({ op: 'DequantizeLinear', name: `${n.name}/dequantize`, inputs: [q, s, z], outputs: [dq], attrs: {} });
    // int8 weights within ±top, one scale per output channel.
    const O = w!.shape[0], K = sizeOf(w!.shape) / O, wd = w!.data as Float32Array;
    const qw = zeros('int8', w!.shape), scales = new Float32Array(O);
    for (let o = 0; o < O; o++) {
      let m = 0;
      for (let i = o * K; i < (o + 1) * K; i++) m = Math.max(m, Math.abs(wd[i]));
      scales[o] = m > 0 ? m / top : 1;
      for (let i = o * K; i < (o + 1) * K; i++) (qw.data as Int8Array)[i] = Math.max(-top, Math.min(top, Math.round(wd[i] / scales[o])));
    }
    const wq = `${n.inputs[1]}:dq${k++}`;
    nodes.push({
      op: 'DequantizeLinear', name: `${n.name}/weights`, outputs: [wq], attrs: { axis: 0 },
      inputs: [c('w_int8', qw), c('w_scale', { dtype: 'float32', shape: [O], data: scales }), c('w_zero', zeros('int8', [O]))],
    });
    // Bias correction (calibration): subtracted from the bias, as the integer kernel's scale-back does.
    const corr = quant.biasCorrection?.[n.name];
    let rest = n.inputs.slice(2);
    if (corr && corr.length === O) {
      const b = rest[0] ? consts.get(rest[0]) : undefined;
      const nb = new Float32Array(O);
      for (let o = 0; o < O; o++) nb[o] = (b ? Number(b.data[o]) : 0) - corr[o];
      rest = [c('bias', { dtype: 'float32', shape: [O], data: nb })];
    }
    nodes.push({ ...n, inputs: [dq, wq, ...rest] });
  }
  return writeOnnx({ ...g, nodes, consts, opset: Math.max(g.opset, 13) });
}

/**
 * A layer with a range per input channel (LayerQuant.channelRanges) in QDQ form: the input clipped per channel
 * (Max, Min) and quantized per channel (axis 1); the weights the kernels multiply (the float weights times each
 * input channel's scale, quantized to integers per output channel, written here from the definition, not by
 * the kernels' code) dequantized and divided by those scales again, so that the float convolution of the
 * dequantized input sums what the kernels sum.
 */
function channelQdq(n: Node, w: Tensor, consts: Map<string, Tensor>, ranges: Range[], bits: number, weightBits: number, corr: ArrayLike<number> | undefined,
  c: (name: string, t: Tensor) => string, next: () => number): Node[] {
  const groups = n.op === 'Conv' ? attrInt(n, 'group', 1) : 1;
  const C = ranges.length, L = (1 << bits) - 1, top = 2 ** (weightBits - 1) - 1, x = n.inputs[0];
  const O = w.shape[0], Cg = w.shape[1], KK = sizeOf(w.shape) / (O * Cg), Og = O / groups, wd = w.data as Float32Array;
  const scales = new Float32Array(C), zerosX = new Uint8Array(C);
  for (let ch = 0; ch < C; ch++) ({ scale: scales[ch], zero: zerosX[ch] } = activationQuant(ranges[ch], bits));
  // A channel whose range is only 0 is left out of the weights.
  const used = (ch: number) => ranges[ch][0] < 0 || ranges[ch][1] > 0;
  const chOf = (o: number, cg: number) => Math.floor(o / Og) * Cg + cg;
  const qw = new Int8Array(wd.length), wScales = new Float32Array(O), inv = new Float32Array(O * Cg);
  for (let o = 0; o < O; o++) {
    const folded = (cg: number, k: number) => (used(chOf(o, cg)) ? Math.fround(wd[(o * Cg + cg) * KK + k] * scales[chOf(o, cg)]) : 0);
    let m = 0;
    for (let cg = 0; cg < Cg; cg++) for (let k = 0; k < KK; k++) m = Math.max(m, Math.abs(folded(cg, k)));
    const sw = m > 0 ? m / top : 1;
    wScales[o] = sw;
    for (let cg = 0; cg < Cg; cg++) {
      inv[o * Cg + cg] = used(chOf(o, cg)) ? 1 / scales[chOf(o, cg)] : 0;
      for (let k = 0; k < KK; k++) qw[(o * Cg + cg) * KK + k] = Math.max(-top, Math.min(top, Math.round(folded(cg, k) / sw)));
    }
  }
  const axisShape = n.op === 'Conv' ? [1, C, 1, 1] : [1, C];
  const lo = Float32Array.from(scales, (sc, i) => (0 - zerosX[i]) * sc), hi = Float32Array.from(scales, (sc, i) => (L - zerosX[i]) * sc);
  const floor = `${x}:max${next()}`, clipped = `${x}:min${next()}`, q = `${x}:q${next()}`, dq = `${x}:dq${next()}`, wq = `${n.inputs[1]}:dq${next()}`, wf = `${n.inputs[1]}:unscaled${next()}`;
  const s = c('x_scale', { dtype: 'float32', shape: [C], data: scales }), z = c('x_zero', { dtype: 'uint8', shape: [C], data: zerosX });
  let rest = n.inputs.slice(2);
  if (corr && corr.length === O) {
    const b = rest[0] ? consts.get(rest[0]) : undefined;
    rest = [c('bias', { dtype: 'float32', shape: [O], data: Float32Array.from({ length: O }, (_, o) => (b ? Number(b.data[o]) : 0) - corr[o]) })];
  }
  return [
    { op: 'Max', name: `${n.name}/clip-low`, inputs: [x, c('lo', { dtype: 'float32', shape: axisShape, data: lo })], outputs: [floor], attrs: {} },
    { op: 'Min', name: `${n.name}/clip-high`, inputs: [floor, c('hi', { dtype: 'float32', shape: axisShape, data: hi })], outputs: [clipped], attrs: {} },
    { op: 'QuantizeLinear', name: `${n.name}/quantize`, inputs: [clipped, s, z], outputs: [q], attrs: { axis: 1 } },
    { op: 'DequantizeLinear', name: `${n.name}/dequantize`, inputs: [q, s, z], outputs: [dq], attrs: { axis: 1 } },
    {
      op: 'DequantizeLinear', name: `${n.name}/weights`, outputs: [wq], attrs: { axis: 0 },
      inputs: [c('w_int8', { dtype: 'int8', shape: w.shape, data: qw }), c('w_scale', { dtype: 'float32', shape: [O], data: wScales }), c('w_zero', zeros('int8', [O]))],
    },
    { op: 'Mul', name: `${n.name}/unscale`, inputs: [wq, c('w_unscale', { dtype: 'float32', shape: n.op === 'Conv' ? [O, Cg, 1, 1] : [O, Cg], data: inv })], outputs: [wf], attrs: {} },
    { ...n, inputs: [dq, wf, ...rest] },
  ];
}

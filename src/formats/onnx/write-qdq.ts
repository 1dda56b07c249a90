import { ArgumentError } from '../../errors.js';
import type { Graph, Node } from '../../ir/graph.js';
import { fromNumbers, sizeOf, zeros, type Tensor } from '../../ir/tensor.js';
import { activationQuant, layerQuant, takesCodes, type QuantOptions } from '../../kernels/wasm/int-conv.js';
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
  for (const n of g.nodes) {
    const w = consts.get(n.inputs[1]);
    const { bits, weightBits, range } = layerQuant(quant, n);
    const eligible = takesCodes(n, w) && bits && range;
    if (!eligible) {
      nodes.push(n);
      continue;
    }
    const L = (1 << bits) - 1, top = 2 ** (weightBits - 1) - 1;
    const { scale, zero } = activationQuant(range, bits);
    const x = n.inputs[0];
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

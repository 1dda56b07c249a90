import { ArgumentError } from '../../errors.js';
import {
  AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, QuantReLU, ReLU, Residual, quantizePerChannel, type Layer,
} from '../../nn/layers.js';
import type { Sequential } from '../../nn/model.js';
import { DT, encodeModel, tensor, type OnnxNode, type OnnxTensor } from './builder.js';

/**
 * Exports a network as ONNX (opset 13) in QDQ form: the input and every quantized activation pass
 * QuantizeLinear/DequantizeLinear (uint8 codes), weights are int8 initializers behind per-channel
 * DequantizeLinear, around float Conv/Gemm. onnxruntime then computes what our integer inference
 * computes, up to float rounding. Input: 'input' [N, C, H, W] floats in [0, 1]; output: 'output'.
 */
export function exportOnnx(net: Sequential, inputShape: [number, number, number] = [1, 28, 28]): Uint8Array {
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  let n = 0;
  const name = (p: string) => `${p}_${n++}`;
  const f32 = (nm: string, v: ArrayLike<number>, dims: number[] = []) => (inits.push(tensor(nm, DT.FLOAT, dims, Float32Array.from(v))), nm);
  const node = (op: string, inputs: string[], attrs?: OnnxNode['attrs']) => {
    const out = name(op.toLowerCase());
    nodes.push({ op, inputs, outputs: [out], name: out, attrs });
    return out;
  };
  /** QuantizeLinear + DequantizeLinear to uint8 codes of step `scale`. */
  const qdq = (x: string, scale: number) => {
    const s = f32(name('scale'), [scale]);
    inits.push(tensor(name('zp'), DT.UINT8, [], new Uint8Array([0])));
    const zp = inits[inits.length - 1].name;
    return node('DequantizeLinear', [node('QuantizeLinear', [x, s, zp]), s, zp]);
  };
  /** int8 weights behind a per-output-channel DequantizeLinear. */
  const weight = (w: Float32Array, O: number, bits: number | undefined, dims: number[]) => {
    if (!bits) return f32(name('w'), w, dims);
    const q = quantizePerChannel(w, O, bits);
    const wq = name('w_int8');
    inits.push(tensor(wq, DT.INT8, dims, q.q));
    const zp = name('w_zp');
    inits.push(tensor(zp, DT.INT8, [O], new Int8Array(O)));
    return node('DequantizeLinear', [wq, f32(name('w_scale'), q.scales, [O]), zp], { axis: 0 });
  };
  const unsupported: string[] = [];
  const emit = (layers: Layer[], x: string, path: string): string => {
    layers.forEach((l, i) => {
      const at = `${path}${i} ${l.type}`;
      if (l instanceof Conv2d) {
        x = node('Conv', [x, weight(l.weight.value, l.outChannels, l.weightBits, [l.outChannels, l.inChannels, l.kernel, l.kernel]), f32(name('b'), l.bias.value, [l.outChannels])],
          { kernel_shape: [l.kernel, l.kernel], pads: [l.pad, l.pad, l.pad, l.pad], strides: [l.stride, l.stride] });
      } else if (l instanceof Linear) {
        x = node('Gemm', [x, weight(l.weight.value, l.outFeatures, l.weightBits, [l.outFeatures, l.inFeatures]), f32(name('b'), l.bias.value, [l.outFeatures])], { transB: 1 });
      } else if (l instanceof QuantReLU) {
        const a = Math.max(1e-8, l.alpha.value[0]);
        x = node('Clip', [x, f32(name('min'), [0]), f32(name('max'), [a])]);
        if (l.bits) x = qdq(x, l.scale);
      } else if (l instanceof ReLU) x = node('Relu', [x]);
      else if (l instanceof MaxPool2d) x = node('MaxPool', [x], { kernel_shape: [l.size, l.size], strides: [l.size, l.size] });
      else if (l instanceof AvgPool2d) x = node('AveragePool', [x], { kernel_shape: [l.size, l.size], strides: [l.size, l.size] });
      else if (l instanceof Flatten) x = node('Flatten', [x], { axis: 1 });
      else if (l instanceof LogSoftmax) x = node('LogSoftmax', [x], { axis: 1 });
      else if (l instanceof BatchNorm2d) {
        x = node('BatchNormalization', [x, f32(name('gamma'), l.gamma.value, [l.channels]), f32(name('beta'), l.beta.value, [l.channels]),
          f32(name('mean'), l.runningMean.value, [l.channels]), f32(name('var'), l.runningVar.value, [l.channels])], { epsilon: { float: l.eps } });
      } else if (l instanceof Residual) x = node('Add', [x, emit(l.inner, x, `${at}/`)]);
      else if (!(l instanceof Dropout)) unsupported.push(at);
    });
    return x;
  };
  const out = emit(net.layers, qdq('input', 1 / 255), '');
  if (unsupported.length) throw new ArgumentError('network', unsupported.join(', '), 'layers ONNX export supports');
  nodes.push({ op: 'Identity', inputs: [out], outputs: ['output'], name: 'output' });
  return encodeModel({
    name: 'faster-cnn',
    inputs: [{ name: 'input', dataType: DT.FLOAT, dims: ['N', ...inputShape] }],
    outputs: [{ name: 'output', dataType: DT.FLOAT, dims: ['N', 'K'] }],
    initializers: inits,
    nodes,
  });
}

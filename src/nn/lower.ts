import { ArgumentError } from '../errors.js';
import { irBuilder } from '../formats/ir-builder.js';
import type { Graph, Node, ValueInfo } from '../ir/graph.js';
import { fromNumbers, type Tensor as IrTensor } from '../ir/tensor.js';
import type { LayerQuant } from '../kernels/wasm/int-conv.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, QuantReLU, ReLU, Residual, type Layer } from './layers.js';
import type { Sequential } from './model.js';
import { TableConv2d, TableLinear } from './table-weights.js';

/** A network trained here as a runtime graph, with the per-layer quantization its training fixed. */
export interface Lowered {
  graph: Graph;
  /** Conv / Gemm node name -> the codes it reads (bits, range) and its weight bits. Empty for float networks. */
  layers: Record<string, LayerQuant>;
}

/** The codes flowing between layers: their width and the real value of one step; null where values are floats. */
type Codes = { bits: number; scale: number } | null;

/** Whether a network runs on activation codes: it has a quantizing ReLU or tables as weights. */
export function isQuantized(net: Sequential): boolean {
  const any = (ls: Layer[]): boolean => ls.some((l) => (l instanceof QuantReLU && Boolean(l.bits)) || l instanceof TableConv2d || l instanceof TableLinear || (l instanceof Residual && any(l.inner)));
  return any(net.layers);
}

/** The graph input and output a network lowers to, without lowering it. */
export function sequentialIo(net: Sequential): { inputs: ValueInfo[]; outputs: ValueInfo[] } {
  const first = net.layers[0];
  const shape = first instanceof Linear || first instanceof TableLinear
    ? ['batch', first.inFeatures]
    : ['batch', first instanceof Conv2d || first instanceof TableConv2d ? first.inChannels : 'channels', 'height', 'width'];
  const name = net.layers.at(-1) instanceof LogSoftmax ? 'log_probabilities' : 'output';
  return { inputs: [{ name: 'pixels', dtype: 'float32', shape }], outputs: [{ name, dtype: 'float32', shape: null }] };
}

const f32 = (shape: number[], data: Float32Array): IrTensor => ({ dtype: 'float32', shape, data: data.slice() });

/**
 * Lowers a Sequential to the IR, input 'pixels' [batch, C, height, width] (or [batch, features]),
 * one output ('log_probabilities' after a LogSoftmax, else 'output'). Float networks become the
 * float graph their forward pass computes. Quantized ones (QuantReLU with bits, table layers)
 * become the graph of their integer inference: the pixels are read as 8-bit codes (step 1/255);
 * a QuantReLU is Clip(0, clip) -> QuantizeLinear -> DequantizeLinear, the fake quantization its
 * forward pass computes; each Conv2d / Linear after it runs on those codes (`layers` says with
 * which width, range and weight bits), and table layers become `_PciltConv` nodes.
 */
export function lowerSequential(net: Sequential, opts: { integer?: boolean } = {}): Lowered {
  const quantized = isQuantized(net);
  const b = irBuilder();
  const layers: Record<string, LayerQuant> = {};
  const codesBefore = (at: string, codes: Codes): { bits: number; scale: number } => {
    if (!codes) throw new ArgumentError(`the input of ${at}`, 'floats', 'activation codes: put a QuantReLU before it');
    return codes;
  };
  /**
   * With `integer`, a QuantReLU whose codes only layers on codes read (through max pools and
   * flattens) keeps its Clip but drops QuantizeLinear / DequantizeLinear: those layers quantize the
   * clipped values to the same codes themselves, so the pair only costs time.
   */
  const onlyCodeReaders = (ls: Layer[], i: number) => {
    for (let j = i + 1; j < ls.length; j++) {
      const l = ls[j];
      if (l instanceof MaxPool2d || l instanceof Flatten || l instanceof Dropout) continue;
      return l instanceof Conv2d || l instanceof Linear || l instanceof TableConv2d || l instanceof TableLinear;
    }
    return false;
  };
  const emit = (ls: Layer[], x: string, codes: Codes, path: string): { x: string; codes: Codes } => {
    ls.forEach((l, i) => {
      const at = `${path}${i}.${l.type}`;
      if (l instanceof TableConv2d || l instanceof TableLinear) {
        const c = codesBefore(at, codes);
        if (c.bits !== l.bits) throw new ArgumentError(`${l.type}.bits`, l.bits, `the bit width of its input codes (${c.bits})`);
        const conv = l instanceof TableConv2d;
        const O = conv ? l.outChannels : l.outFeatures, K = conv ? l.inChannels * l.kernel * l.kernel : l.inFeatures;
        const shape = [O, K, 1 << l.bits];
        const int = l.entryBits ? l.integerTables() : null;
        const tables = int ? b.constant(`${at}.tables`, { dtype: 'int32', shape, data: Int32Array.from(int.q) }) : b.constant(`${at}.tables`, f32(shape, l.tables()));
        const scales = int ? b.constant(`${at}.scales`, f32([O], int.scales)) : '';
        const attrs: Node['attrs'] = conv ? { kernel_shape: [l.kernel, l.kernel], pads: [l.pad, l.pad, l.pad, l.pad], strides: [l.stride, l.stride] } : {};
        x = b.add('_PciltConv', at, [x, tables, scales, b.constant(`${at}.bias`, f32([O], l.bias.value))], { ...attrs, bits: l.bits, scale: c.scale });
        codes = null;
      } else if (l instanceof Conv2d || l instanceof Linear) {
        const conv = l instanceof Conv2d;
        const O = conv ? l.outChannels : l.outFeatures;
        const shape = conv ? [O, l.inChannels, l.kernel, l.kernel] : [O, l.inFeatures];
        const inputs = [x, b.constant(`${at}.weight`, f32(shape, l.effectiveWeight())), b.constant(`${at}.bias`, f32([O], l.bias.value))];
        x = conv
          ? b.add('Conv', at, inputs, { kernel_shape: [l.kernel, l.kernel], pads: [l.pad, l.pad, l.pad, l.pad], strides: [l.stride, l.stride] })
          : b.add('Gemm', at, inputs, { transB: 1 });
        if (quantized) {
          const c = codesBefore(at, codes);
          layers[at] = { bits: c.bits, range: [0, c.scale * ((1 << c.bits) - 1)], ...(l.weightBits ? { weightBits: l.weightBits } : {}) };
        }
        codes = null;
      } else if (l instanceof QuantReLU) {
        const a = Math.max(1e-8, l.alpha.value[0]);
        x = b.add('Clip', at, [x, b.f32('min', 0), b.f32('max', a)]);
        if (l.bits) {
          if (!(opts.integer && onlyCodeReaders(ls, i))) {
            const s = b.f32('scale', l.scale), z = b.constant('zero', fromNumbers('uint8', [], [0]));
            x = b.add('DequantizeLinear', `${at}/dequantize`, [b.add('QuantizeLinear', `${at}/quantize`, [x, s, z]), s, z]);
          }
          codes = { bits: l.bits, scale: l.scale };
        } else codes = null;
      } else if (l instanceof ReLU) {
        x = b.add('Relu', at, [x]);
        codes = null;
      } else if (l instanceof MaxPool2d) {
        // Max pooling commutes with the (monotone) quantization: codes stay codes.
        x = b.add('MaxPool', at, [x], { kernel_shape: [l.size, l.size], strides: [l.size, l.size] });
      } else if (l instanceof AvgPool2d) {
        x = b.add('AveragePool', at, [x], { kernel_shape: [l.size, l.size], strides: [l.size, l.size] });
        codes = null;
      } else if (l instanceof Flatten) {
        x = b.add('Flatten', at, [x], { axis: 1 });
      } else if (l instanceof LogSoftmax) {
        x = b.add('LogSoftmax', at, [x], { axis: 1 });
        codes = null;
      } else if (l instanceof BatchNorm2d) {
        const c = l.channels, v = (n: string, p: Float32Array) => b.constant(`${at}.${n}`, f32([c], p));
        x = b.add('BatchNormalization', at, [x, v('gamma', l.gamma.value), v('beta', l.beta.value), v('mean', l.runningMean.value), v('var', l.runningVar.value)], { epsilon: l.eps });
        codes = null;
      } else if (l instanceof Residual) {
        const inner = emit(l.inner, x, codes, `${at}/`);
        x = b.add('Add', at, [x, inner.x]);
        codes = null;
      } else if (!(l instanceof Dropout)) {
        throw new ArgumentError('layer', (l as Layer).type, 'a layer inference supports');
      }
    });
    return { x, codes };
  };
  const pixels: Codes = quantized ? { bits: 8, scale: 1 / 255 } : null;
  const { x: last } = emit(net.layers, 'pixels', pixels, '');
  const { inputs, outputs } = sequentialIo(net), name = outputs[0].name;
  // The last node writes the output under its name (an Identity where no node wrote anything).
  const producer = b.nodes.find((n) => n.outputs[0] === last);
  if (producer) producer.outputs = [name];
  else b.add('Identity', 'output', [last], {}, [name]);
  for (const n of b.nodes) n.inputs = n.inputs.map((t) => (t === last ? name : t));
  return {
    graph: { inputs, outputs, nodes: b.nodes, consts: b.consts, opset: 13 },
    layers,
  };
}

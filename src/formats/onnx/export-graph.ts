import { inferShapes, type Graph } from '../../graph/graph.js';
import { DT, encodeModel, tensor, type OnnxNode, type OnnxTensor } from './builder.js';

/**
 * An imported Graph as a float ONNX model (opset 13, NCHW input): for running the same network in
 * onnxruntime as a peer and as an oracle. Fake-quantization nodes become QuantizeLinear +
 * DequantizeLinear pairs again.
 */
export function exportGraphOnnx(g: Graph): Uint8Array {
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  let count = 0;
  const fresh = (s: string) => `${s}_${count++}`;
  const f32 = (name: string, dims: number[], data: ArrayLike<number>) => {
    const n = fresh(name);
    inits.push(tensor(n, DT.FLOAT, dims, Float32Array.from(data)));
    return n;
  };
  const i64 = (name: string, data: number[]) => {
    const n = fresh(name);
    inits.push(tensor(n, DT.INT64, [data.length], BigInt64Array.from(data.map(BigInt))));
    return n;
  };
  const node = (op: string, inputs: string[], attrs?: OnnxNode['attrs'], out = fresh(op)) => {
    nodes.push({ op, inputs, outputs: [out], name: out, attrs });
    return out;
  };
  const names = new Map<string, string>([[g.input.name, 'input']]);
  for (const [k, c] of g.consts) names.set(k, f32(k.replace(/[^\w/.-]/g, '_'), c.shape, c.data));
  const act = (y: string, a: unknown) => (a === 'relu' ? node('Relu', [y]) : a === 'relu6' ? node('Clip', [y, f32('zero', [], [0]), f32('six', [], [6])])
    : a === 'sigmoid' ? node('Sigmoid', [y]) : y);
  for (const n of g.nodes) {
    const ins = n.inputs.map((i) => names.get(i)!);
    const a = n.attrs;
    let y: string;
    switch (n.op) {
      case 'conv': {
        const w = g.consts.get(n.inputs[1])!;
        y = act(node('Conv', ins, { kernel_shape: w.shape.slice(2), strides: a.stride as number[], dilations: a.dilation as number[], pads: a.pad as number[], group: a.group as number }), a.act);
        break;
      }
      case 'dense':
        y = act(node('Gemm', ins, { transB: 1 }), a.act);
        break;
      case 'maxpool':
      case 'avgpool':
        y = node(n.op === 'maxpool' ? 'MaxPool' : 'AveragePool', ins, {
          kernel_shape: a.kernel as number[], strides: a.stride as number[], pads: a.pad as number[], ...(n.op === 'avgpool' ? { count_include_pad: a.countPad as number ?? 0 } : {}),
        });
        break;
      case 'gap':
        y = node('GlobalAveragePool', ins);
        if (!a.keepDims) y = node('Flatten', [y], { axis: 1 });
        break;
      case 'affine': {
        const C = g.consts.get(n.inputs[1])!.data.length;
        const k = names.get(n.inputs[1])!, s = names.get(n.inputs[2])!;
        const shape = i64('cshape', [1, C, 1, 1]);
        y = node('Add', [node('Mul', [ins[0], node('Reshape', [k, shape])]), node('Reshape', [s, shape])]);
        break;
      }
      case 'add': case 'sub': case 'mul': case 'div':
        y = node(n.op[0].toUpperCase() + n.op.slice(1), ins);
        break;
      case 'relu':
        y = node('Relu', ins);
        break;
      case 'sigmoid':
        y = node('Sigmoid', ins);
        break;
      case 'clip':
        y = node('Clip', [ins[0], f32('min', [], [a.min as number]), f32('max', [], [a.max as number])]);
        break;
      case 'softmax':
        y = node(a.log ? 'LogSoftmax' : 'Softmax', ins, { axis: a.axis as number });
        break;
      case 'flatten':
        y = node('Flatten', [a.nhwc ? node('Transpose', ins, { perm: [0, 2, 3, 1] }) : ins[0]], { axis: 1 });
        break;
      case 'reshape':
        y = node('Reshape', [ins[0], i64('shape', a.shape as number[])]);
        break;
      case 'transpose':
        y = node('Transpose', ins, { perm: a.perm as number[] });
        break;
      case 'concat':
        y = node('Concat', ins, { axis: a.axis as number });
        break;
      case 'pad':
        y = node('Pad', [ins[0], i64('pads', a.pads as number[]), f32('value', [], [a.value as number])]);
        break;
      case 'squeeze':
        y = node('Squeeze', [ins[0], i64('axes', a.axes as number[])]);
        break;
      case 'mean':
        y = node('ReduceMean', ins, { axes: a.axes as number[], keepdims: a.keepDims as number });
        break;
      case 'fakequant': {
        const s = f32('scale', [], [a.scale as number]);
        const int8 = (a.qmin as number) < 0;
        const zp = fresh('zp');
        inits.push(tensor(zp, int8 ? DT.INT8 : DT.UINT8, [], int8 ? Int8Array.of(a.zero as number) : Uint8Array.of(a.zero as number)));
        y = node('DequantizeLinear', [node('QuantizeLinear', [ins[0], s, zp]), s, zp]);
        break;
      }
      case 'identity':
        y = ins[0];
        break;
    }
    names.set(n.output, y);
  }
  const out = names.get(g.output)!;
  nodes.push({ op: 'Identity', inputs: [out], outputs: ['output'], name: 'output' });
  return encodeModel({
    name: 'faster-cnn-graph',
    nodes,
    inputs: [{ name: 'input', dataType: DT.FLOAT, dims: ['N', ...g.input.shape.slice(1)] }],
    outputs: [{ name: 'output', dataType: DT.FLOAT, dims: ['N', ...inferShapes(g).get(g.output)!.slice(1)] }],
    initializers: inits,
  });
}

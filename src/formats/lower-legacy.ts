import { ModelImportError } from './errors.js';
import { inferShapes, type Graph as Legacy, type GraphNode } from '../graph/graph.js';
import type { Graph, Node } from '../ir/graph.js';
import { fromNumbers, type Tensor } from '../ir/tensor.js';

/**
 * The NCHW graph that .fcnn version-2 files hold (src/graph/graph.ts, what earlier importers made)
 * as an IR graph of ONNX ops: an NHWC source's input and 4-d output keep their layout through a
 * Transpose at each edge, and every activation the importer fused stays fused (`_act`).
 */
export function lowerLegacy(g: Legacy): Graph {
  const consts = new Map<string, Tensor>();
  for (const [k, c] of g.consts) consts.set(k, { dtype: 'float32', shape: c.shape, data: c.data });
  const nodes: Node[] = [];
  const shapes = inferShapes(g);
  let count = 0;
  const constant = (name: string, t: Tensor) => {
    const k = `${name}#${count++}`;
    consts.set(k, t);
    return k;
  };
  const int64 = (name: string, v: number[]) => constant(name, fromNumbers('int64', [v.length], v));
  const f32 = (name: string, v: number) => constant(name, fromNumbers('float32', [], [v]));
  const add = (op: string, name: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}) => nodes.push({ op, name, inputs, outputs, attrs });
  const nhwc = g.input.layout === 'nhwc' && g.input.shape.length === 4;
  const [, C, H, W] = g.input.shape;
  const inShape = nhwc ? ['batch', H, W, C] : ['batch', ...g.input.shape.slice(1)];
  let input = g.input.name;
  if (nhwc) {
    input = `${g.input.name}:nchw`;
    add('Transpose', `${g.input.name}/to_nchw`, [g.input.name], [input], { perm: [0, 3, 1, 2] });
  }
  const rename = (t: string) => (t === g.input.name ? input : t);
  const act = (a: string | undefined): Node['attrs'] => (a === 'relu' ? { _act: 'relu' } : a === 'relu6' ? { _act: 'clip', _min: 0, _max: 6 } : a === 'sigmoid' ? { _act: 'sigmoid' } : {});
  const perChannel = (n: GraphNode, t: string, rank: number) => {
    const c = g.consts.get(t)!;
    return constant(`${n.name}/${t}`, { dtype: 'float32', shape: [c.data.length, ...new Array(Math.max(0, rank - 2)).fill(1)], data: c.data });
  };
  const rank = (t: string) => shapes.get(t)!.length;
  for (const n of g.nodes) {
    const a = n.attrs, ins = n.inputs.map(rename), out = [n.output];
    const num = (k: string) => a[k] as number, list = (k: string) => a[k] as number[];
    switch (n.op) {
      case 'conv': add('Conv', n.name, ins, out, { strides: list('stride'), dilations: list('dilation'), pads: list('pad'), group: num('group'), ...act(a.act as string) }); break;
      case 'dense': add('Gemm', n.name, ins, out, { transB: 1, ...act(a.act as string) }); break;
      case 'maxpool':
      case 'avgpool':
        add(n.op === 'maxpool' ? 'MaxPool' : 'AveragePool', n.name, ins, out, {
          kernel_shape: list('kernel'), strides: list('stride'), pads: list('pad'), ...(n.op === 'avgpool' ? { count_include_pad: num('countPad') ?? 0 } : {}),
        });
        break;
      case 'gap':
        if (num('keepDims')) add('GlobalAveragePool', n.name, ins, out);
        else {
          add('GlobalAveragePool', n.name, ins, [`${n.output}:4d`]);
          add('Flatten', `${n.name}/flatten`, [`${n.output}:4d`], out, { axis: 1 });
        }
        break;
      case 'affine': {
        const r = rank(n.inputs[0]);
        add('Mul', `${n.name}/scale`, [ins[0], perChannel(n, n.inputs[1], r)], [`${n.output}:scaled`]);
        add('Add', `${n.name}/shift`, [`${n.output}:scaled`, perChannel(n, n.inputs[2], r)], out);
        break;
      }
      case 'add': case 'sub': case 'mul': case 'div':
        add(n.op[0].toUpperCase() + n.op.slice(1), n.name, ins, out); break;
      case 'relu': add('Relu', n.name, ins, out); break;
      case 'sigmoid': add('Sigmoid', n.name, ins, out); break;
      case 'clip': add('Clip', n.name, [ins[0], f32(`${n.name}/min`, num('min')), f32(`${n.name}/max`, num('max'))], out); break;
      case 'softmax': add(a.log ? 'LogSoftmax' : 'Softmax', n.name, ins, out, { axis: num('axis') }); break;
      case 'flatten':
        if (a.nhwc) {
          add('Transpose', `${n.name}/to_nhwc`, ins, [`${n.output}:nhwc`], { perm: [0, 2, 3, 1] });
          add('Flatten', n.name, [`${n.output}:nhwc`], out, { axis: 1 });
        } else add('Flatten', n.name, ins, out, { axis: 1 });
        break;
      case 'reshape': add('Reshape', n.name, [ins[0], int64(`${n.name}/shape`, list('shape'))], out); break;
      case 'transpose': add('Transpose', n.name, ins, out, { perm: list('perm') }); break;
      case 'concat': add('Concat', n.name, ins, out, { axis: num('axis') }); break;
      case 'pad': add('Pad', n.name, [ins[0], int64(`${n.name}/pads`, list('pads')), f32(`${n.name}/value`, num('value'))], out); break;
      case 'squeeze': add('Squeeze', n.name, [ins[0], int64(`${n.name}/axes`, list('axes'))], out); break;
      case 'mean': add('ReduceMean', n.name, ins, out, { axes: list('axes'), keepdims: num('keepDims') }); break;
      case 'identity': add('Identity', n.name, ins, out); break;
      default: throw new ModelImportError(`node ${n.name}: op ${n.op} has no IR lowering`);
    }
  }
  let output = g.output;
  if (nhwc && rank(g.output) === 4) {
    output = `${g.output}:nhwc`;
    add('Transpose', `${g.output}/to_nhwc`, [g.output], [output], { perm: [0, 2, 3, 1] });
  }
  return { inputs: [{ name: g.input.name, dtype: 'float32', shape: inShape }], outputs: [{ name: output, dtype: 'float32', shape: null }], nodes, consts, opset: 13 };
}

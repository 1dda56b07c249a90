import { ModelImportError, UnsupportedModelError } from './errors.js';
import { topoSort, type Graph, type Node, type ValueInfo } from '../ir/graph.js';
import { fromNumbers, MAX_ELEMENTS, sizeOf, zeros, type DType, type Tensor } from '../ir/tensor.js';
import { decodeTypedWeights, type TfjsArtifacts } from './tfjs.js';
import { TO_NCHW, TO_NHWC, filterOihw, irBuilder } from './ir-builder.js';

/**
 * A TF.js graph model (tfjs-converter's GraphDef JSON) as an IR graph, NHWC kept: spatial ops
 * (convolution, pooling, resize, depth/space) run between a Transpose to NCHW and one back,
 * and the layout pass removes the pairs that meet. Inputs and outputs are named by the
 * model's signature keys where it has a signature, else by node names; ops that TF.js runs
 * as control flow (Switch, Merge, Enter, Exit, NextIteration, LoopCond) refuse the model with
 * every such node listed.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const bad = (why: string): never => {
  throw new ModelImportError(`TF.js graph model: ${why}`);
};

/** Functional control flow (sub-graphs in the graph's function library): refused. Switch/Merge conditionals and Enter/Exit loops run. */
const CONTROL_FLOW = ['While', 'StatelessWhile', 'If', 'StatelessIf'];

const TF_DTYPES: Record<string, DType> = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool', DT_INT64: 'int64', DT_UINT8: 'uint8', DT_INT8: 'int8', DT_HALF: 'float32', DT_DOUBLE: 'float32' };
const ONNX_CODE: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 };

const base64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
const attrStr = (n: Json, k: string): string => {
  const s = n.attr?.[k]?.s;
  return typeof s === 'string' ? new TextDecoder().decode(base64(s)) : '';
};
const attrList = (n: Json, k: string): number[] => (n.attr?.[k]?.list?.i ?? []).map(Number);
const attrStrList = (n: Json, k: string): string[] => (n.attr?.[k]?.list?.s ?? []).map((s: string) => new TextDecoder().decode(base64(s)));
const attrInt = (n: Json, k: string, d = 0): number => (n.attr?.[k]?.i === undefined ? d : Number(n.attr[k].i));
const attrF = (n: Json, k: string, d = 0): number => (n.attr?.[k]?.f === undefined ? d : Number(n.attr[k].f));
const attrB = (n: Json, k: string): boolean => n.attr?.[k]?.b === true;
const attrType = (n: Json, k: string): DType | undefined => TF_DTYPES[n.attr?.[k]?.type as string];

/** A Const node's inline value (attr.value.tensor). */
function inlineTensor(n: Json): Tensor | undefined {
  const t = n.attr?.value?.tensor;
  if (!t) return undefined;
  const shape = (t.tensorShape?.dim ?? []).map((d: Json) => Number(d.size));
  const size = sizeOf(shape);
  if (size > MAX_ELEMENTS) bad(`node ${n.name}: inline tensor of ${size} elements`);
  const dtype = TF_DTYPES[t.dtype] ?? bad(`node ${n.name}: constant of type ${t.dtype}`);
  let vals: number[] = (t.floatVal ?? t.intVal ?? t.int64Val ?? t.boolVal ?? []).map(Number);
  if (t.tensorContent) {
    const raw = base64(t.tensorContent);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    vals = Array.from({ length: Math.floor(raw.length / 4) }, (_, i) => (dtype === 'float32' ? dv.getFloat32(4 * i, true) : dv.getInt32(4 * i, true)));
  }
  const v = new Float64Array(size);
  for (let i = 0; i < size; i++) v[i] = vals[Math.min(i, vals.length - 1)] ?? 0;
  return fromNumbers(dtype, shape, v);
}

/** Reads a graph model into the IR. */
export function tfjsGraphToIr(a: TfjsArtifacts): Graph {
  const topo = a.modelTopology as Json;
  const list: Json[] = Array.isArray(topo?.node) ? topo.node : bad('modelTopology has no node list (is this a layers model?)');
  const weights = decodeTypedWeights(a);
  const { consts, nodes, fresh, constant, i64, f32, add } = irBuilder();
  const problems: string[] = [];
  // TF tensor names: "node" (output 0) and "node:k".
  const ref = (s: string) => {
    const m = /^(.*?)(?::(\d+))?$/.exec(s.replace(/^\^/, ''))!;
    return m[2] && m[2] !== '0' ? `${m[1]}:${m[2]}` : m[1];
  };
  // A constant routed through a conditional (Switch, then Identity) is still that constant where a
  // node needs its value at import (a filter); the node stays DEAD through its other inputs.
  const routed = new Map<string, string>();
  const constOf = (s: string): Tensor | undefined => consts.get(ref(s)) ?? consts.get(routed.get(ref(s)) ?? '');
  const needConst = (s: string, at: string): Tensor => constOf(s) ?? bad(`${at}: input ${s} must be a constant`);
  const toNchw = (x: string, name: string) => add('Transpose', `${name}/to_nchw`, [x], { perm: TO_NCHW });
  const toNhwc = (x: string, name: string, out: string) => add('Transpose', `${name}/to_nhwc`, [x], { perm: TO_NHWC }, [out]);
  const asInt64 = (s: string, name: string) => add('Cast', `${name}/i64`, [ref(s)], { to: 7 });

  const inputs: ValueInfo[] = [];
  const signature = a.signature ?? (a.modelTopology as Json)?.signature;
  const sigName = (kind: 'inputs' | 'outputs', tensor: string) => {
    const entries = Object.entries((signature?.[kind] ?? {}) as Record<string, Json>);
    return entries.find(([, v]) => ref(String(v?.name ?? '')) === ref(tensor))?.[0];
  };
  const flow = list.filter((n) => CONTROL_FLOW.includes(n.op));
  if (flow.length) throw new UnsupportedModelError(flow.map((n) => `node ${n.name}: control flow (${n.op}) is not run yet`));

  const frames = loopFrames(list, ref);
  const branch = onBranch(list, ref, frames.loopCond);
  // The IR nodes each TF node became (while loops are cut out of the graph by these, below).
  const made = new Map<string, [number, number]>();
  for (const n of list) {
    const start = nodes.length;
    const at = `node ${n.name} (${n.op})`;
    const ins = dataInputs(n, ref);
    const out = n.name as string;
    const x = ins[0];
    try {
      switch (n.op) {
        case 'Switch':
          if (constOf(x)) for (const o of [out, `${out}:1`]) routed.set(o, routed.get(x) ?? x);
          // A loop's Switch: the body runs only while the condition holds, so both sides are the variable.
          if (frames.loopCond.has(ins[1])) for (const o of [out, `${out}:1`]) add('Identity', o, [x], {}, [o]);
          else add('Switch', out, [x, ins[1]], {}, [out, `${out}:1`]);
          break;
        case 'Merge':
          // A loop variable's Merge (Enter, NextIteration) is an input of the loop's graphs.
          if (!frames.varMerge.has(out)) add('Merge', out, ins, {}, [out, `${out}:1`]);
          break;
        case 'Enter':
          if (constOf(x)) routed.set(out, routed.get(x) ?? x);
          break;
        case 'Exit':
          break;
        case 'LoopCond': case 'NextIteration':
          add('Identity', out, [x], {}, [out]);
          break;
        case 'TensorArrayV3':
          // The handle is only passed around: the flow (output 1) carries the elements.
          add('Identity', out, [x], {}, [out]);
          add('_ListNew', `${out}/list`, [x], { dtype: attrType(n, 'dtype') ?? 'float32' }, [`${out}:1`]);
          break;
        case 'TensorListReserve':
          add('_ListNew', out, [ins[1]], { dtype: attrType(n, 'element_dtype') ?? 'float32' }, [out]);
          break;
        case 'TensorListFromTensor':
          add('Identity', out, [x], {}, [out]);
          break;
        case 'TensorListStack': {
          const elem = constOf(ins[1]);
          const all = add('Range', `${out}/all`, [i64(`${out}/zero`, [0]), add('Cast', `${out}/n`, [add('_ListSize', `${out}/size`, [x])], { to: 7 }), i64(`${out}/one`, [1])]);
          add('_ListGather', out, [x, all], elem ? { element_shape: Array.from(elem.data as Int32Array, Number) } : {}, [out]);
          break;
        }
        case 'TensorArrayScatterV3':
          add('_ListScatter', out, [ins[3], ins[1], ins[2]], {}, [out]);
          break;
        case 'TensorArrayWriteV3':
          add('_ListSet', out, [ins[3], ins[1], ins[2]], {}, [out]);
          break;
        case 'TensorListSetItem':
          add('_ListSet', out, [x, ins[1], ins[2]], {}, [out]);
          break;
        case 'TensorArrayReadV3':
          add('_ListGet', out, [ins[2], ins[1]], {}, [out]);
          break;
        case 'TensorArrayGatherV3': {
          const dims = (n.attr?.element_shape?.shape?.dim ?? []) as Json[];
          add('_ListGather', out, [ins[2], ins[1]], n.attr?.element_shape?.shape?.unknownRank ? {} : { element_shape: dims.map((d) => Number(d.size ?? -1)) }, [out]);
          break;
        }
        case 'TensorListGetItem':
          add('_ListGet', out, [x, ins[1]], {}, [out]);
          break;
        case 'TensorArraySizeV3': case 'TensorListLength':
          add('_ListSize', out, [n.op === 'TensorArraySizeV3' ? ins[1] : x], {}, [out]);
          break;
        case 'Where':
          // TF's one-input Where: the coordinates of the true elements, [count, rank].
          add('Transpose', out, [add('NonZero', `${out}/nonzero`, [x])], { perm: [1, 0] }, [out]);
          break;
        case 'Placeholder': case 'PlaceholderWithDefault': {
          if (n.op === 'PlaceholderWithDefault' && constOf(x)) {
            add('Identity', out, [x], {}, [out]);
            break;
          }
          const dims = (n.attr?.shape?.shape?.dim ?? []).map((d: Json, i: number) => (Number(d.size ?? -1) >= 0 ? Number(d.size) : `${out}_${i}`));
          // tfjs has no 8-bit dtypes: it feeds (and so expects) int32 where TF says uint8 or int8.
          const dtype = attrType(n, 'dtype') ?? 'float32';
          inputs.push({ name: out, dtype: dtype === 'uint8' || dtype === 'int8' ? 'int32' : dtype, shape: n.attr?.shape?.shape?.unknownRank ? null : dims });
          break;
        }
        case 'Const': {
          const t = weights.get(out) ?? inlineTensor(n) ?? bad(`${at} has no value`);
          consts.set(out, t);
          break;
        }
        case 'Identity': case 'StopGradient': case 'Snapshot': case 'EnsureShape':
          if (routed.has(x)) routed.set(out, routed.get(x)!);
          add('Identity', out, [x], {}, [out]);
          break;
        case 'IdentityN':
          ins.forEach((s, i) => add('Identity', `${out}/${i}`, [s], {}, [i ? `${out}:${i}` : out]));
          break;
        case 'Conv2D': case '_FusedConv2D': case 'DepthwiseConv2dNative': case 'FusedDepthwiseConv2dNative': {
          const depthwise = n.op.includes('Depthwise');
          const w = needConst(ins[1], at);
          const [KH, KW, C] = w.shape;
          const strides = attrList(n, 'strides'), dil = attrList(n, 'dilations');
          const pad = attrStr(n, 'padding');
          const attrs: Node['attrs'] = {
            kernel_shape: [KH, KW], strides: strides.length ? [strides[1], strides[2]] : [1, 1], dilations: dil.length ? [dil[1], dil[2]] : [1, 1],
            group: depthwise ? C : 1,
          };
          if (pad === 'SAME') attrs.auto_pad = 'SAME_UPPER';
          else if (pad === 'EXPLICIT') {
            const p = attrList(n, 'explicit_paddings');
            attrs.pads = [p[2], p[4], p[3], p[5]];
          }
          const convIns = [toNchw(x, out), constant(`${out}/filter`, filterOihw(w, depthwise))];
          let post: string[] = [];
          for (const op of attrStrList(n, 'fused_ops')) {
            if (op === 'BiasAdd') convIns.push(ins[2]);
            else post.push(op);
          }
          if (convIns[2] && !constOf(convIns[2])) bad(`${at}: its bias must be a constant`);
          if (convIns[2]) convIns[2] = constant(`${out}/bias`, constOf(convIns[2])!);
          const y = add('Conv', out, convIns, attrs);
          let t = y;
          [t, post] = fusedTail(n, t, post, ins, out, add, f32);
          if (post.length) bad(`${at}: fused ops ${post.join(', ')}`);
          toNhwc(t, out, out);
          break;
        }
        case 'Conv2DBackpropInput': {
          // ins: input_sizes, filter [KH, KW, O, C], out_backprop (NHWC).
          const w = needConst(ins[1], at), sizes = constOf(ins[0]);
          const [KH, KW, O, C] = w.shape;
          const src = w.data as Float32Array, f = zeros('float32', [C, O, KH, KW]), d = f.data as Float32Array;
          for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let o = 0; o < O; o++) for (let c = 0; c < C; c++) d[((c * O + o) * KH + kh) * KW + kw] = src[((kh * KW + kw) * O + o) * C + c];
          const s = attrList(n, 'strides'), same = attrStr(n, 'padding') === 'SAME';
          // The output size: given, or (when computed at run time) what the padding implies: SAME in * stride, VALID (in - 1) * stride + k.
          const size = sizes ? Array.from(sizes.data as Int32Array, Number) : undefined;
          const y = add('ConvTranspose', out, [toNchw(ins[2], out), constant(`${out}/filter`, f)], {
            kernel_shape: [KH, KW], strides: [s[1], s[2]], ...(size ? { output_shape: [size[1], size[2]] } : {}), ...(same ? { auto_pad: 'SAME_UPPER' } : {}),
          });
          toNhwc(y, out, out);
          break;
        }
        case 'MaxPool': case 'AvgPool': {
          const k = attrList(n, 'ksize'), s = attrList(n, 'strides');
          const y = add(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', out, [toNchw(x, out)], {
            kernel_shape: [k[1], k[2]], strides: [s[1], s[2]], ...(attrStr(n, 'padding') === 'SAME' ? { auto_pad: 'SAME_UPPER' } : {}),
          });
          toNhwc(y, out, out);
          break;
        }
        case 'ResizeBilinear': case 'ResizeNearestNeighbor': {
          const nearest = n.op === 'ResizeNearestNeighbor', align = attrB(n, 'align_corners'), half = attrB(n, 'half_pixel_centers');
          const xc = toNchw(x, out);
          const head = add('Slice', `${out}/nc`, [add('Shape', `${out}/shape`, [xc]), i64(`${out}/s0`, [0]), i64(`${out}/s2`, [2])]);
          const sizes = add('Concat', `${out}/sizes`, [head, asInt64(ins[1], out)], { axis: 0 });
          const y = add('Resize', out, [xc, '', '', sizes], {
            mode: nearest ? 'nearest' : 'linear',
            coordinate_transformation_mode: align ? 'align_corners' : half ? (nearest ? 'tf_half_pixel_for_nn' : 'half_pixel') : 'asymmetric',
            nearest_mode: align ? 'round_prefer_ceil' : 'floor',
          });
          toNhwc(y, out, out);
          break;
        }
        case 'DepthToSpace': case 'SpaceToDepth': {
          const y = add(n.op, out, [toNchw(x, out)], { blocksize: attrInt(n, 'block_size'), ...(n.op === 'DepthToSpace' ? { mode: 'DCR' } : {}) });
          toNhwc(y, out, out);
          break;
        }
        case 'MatMul': case '_FusedMatMul': case 'BatchMatMul': case 'BatchMatMulV2': {
          const ta = attrB(n, 'transpose_a') || attrB(n, 'adj_x'), tb = attrB(n, 'transpose_b') || attrB(n, 'adj_y');
          // The operands' ranks are known only when they run: the Transpose swaps whatever two axes are last.
          const t = (s: string, name: string, flip: boolean) => (flip ? add('Transpose', name, [s], { _swapLast: 1 }) : s);
          let y = add('MatMul', n.op === '_FusedMatMul' ? `${out}/matmul` : out, [t(x, `${out}/ta`, ta), t(ins[1], `${out}/tb`, tb)], {}, [n.op === '_FusedMatMul' ? fresh(out) : out]);
          if (n.op === '_FusedMatMul') {
            let post: string[] = [];
            for (const op of attrStrList(n, 'fused_ops')) {
              if (op === 'BiasAdd') y = add('Add', `${out}/bias`, [y, ins[2]]);
              else post.push(op);
            }
            [y, post] = fusedTail(n, y, post, ins, out, add, f32);
            if (post.length) bad(`${at}: fused ops ${post.join(', ')}`);
            add('Identity', `${out}/out`, [y], {}, [out]);
          }
          break;
        }
        case 'BiasAdd': case 'Add': case 'AddV2': case 'Sub': case 'Mul': case 'RealDiv': case 'Div': case 'Maximum': case 'Minimum': case 'Pow':
        case 'Greater': case 'GreaterEqual': case 'Less': case 'LessEqual': case 'Equal': case 'LogicalAnd': case 'LogicalOr': case 'Atan2': {
          const op = ({ BiasAdd: 'Add', AddV2: 'Add', RealDiv: 'Div', Maximum: 'Max', Minimum: 'Min', LogicalAnd: 'And', LogicalOr: 'Or', GreaterEqual: 'GreaterOrEqual', LessEqual: 'LessOrEqual' } as Record<string, string>)[n.op] ?? n.op;
          add(op, out, [x, ins[1]], {}, [out]);
          break;
        }
        case 'NotEqual':
          add('Not', out, [add('Equal', `${out}/eq`, [x, ins[1]])], {}, [out]);
          break;
        case 'FloorDiv':
          add('Floor', out, [add('Div', `${out}/div`, [x, ins[1]])], {}, [out]);
          break;
        case 'FloorMod':
          add('Mod', out, [x, ins[1]], { fmod: 0 }, [out]);
          break;
        case 'SquaredDifference': {
          const d = add('Sub', `${out}/sub`, [x, ins[1]]);
          add('Mul', out, [d, d], {}, [out]);
          break;
        }
        case 'AddN':
          add('Sum', out, ins, {}, [out]);
          break;
        case 'Einsum':
          add('Einsum', out, ins, { equation: attrStr(n, 'equation') }, [out]);
          break;
        case 'Relu': case 'Sigmoid': case 'Tanh': case 'Exp': case 'Log': case 'Sqrt': case 'Abs': case 'Neg': case 'Floor': case 'Ceil': case 'Round':
        case 'Sign': case 'Reciprocal': case 'Erf': case 'Softplus': case 'Softsign': case 'Elu': case 'Selu': case 'Sin': case 'Cos': case 'LogicalNot':
        case 'Tan': case 'Asin': case 'Acos': case 'Atan': case 'Sinh': case 'Cosh': case 'Asinh': case 'Acosh': case 'Atanh': {
          add(n.op === 'LogicalNot' ? 'Not' : n.op, out, [x], {}, [out]);
          break;
        }
        case 'Relu6':
          add('Clip', out, [x, f32(`${out}/lo`, 0), f32(`${out}/hi`, 6)], {}, [out]);
          break;
        case 'LeakyRelu':
          add('LeakyRelu', out, [x], { alpha: attrF(n, 'alpha', 0.2) }, [out]);
          break;
        case 'Prelu':
          add('PRelu', out, [x, ins[1]], {}, [out]);
          break;
        case 'Rsqrt':
          add('Reciprocal', out, [add('Sqrt', `${out}/sqrt`, [x])], {}, [out]);
          break;
        case 'Square':
          add('Mul', out, [x, x], {}, [out]);
          break;
        case 'Mean': case 'Sum': case 'Max': case 'Min': case 'Prod': {
          const op = `Reduce${n.op}`;
          add(op, out, [x, asInt64(ins[1], out)], { keepdims: attrB(n, 'keep_dims') ? 1 : 0 }, [out]);
          break;
        }
        case 'ArgMax': case 'ArgMin': {
          const axis = Number(needConst(ins[1], at).data[0]);
          const y = add(n.op, `${out}/arg`, [x], { axis, keepdims: 0 });
          add('Cast', out, [y], { to: ONNX_CODE[attrType(n, 'output_type') ?? 'int64'] }, [out]);
          break;
        }
        case 'Softmax': case 'LogSoftmax':
          add(n.op, out, [x], { axis: -1 }, [out]);
          break;
        case 'Reshape':
          add('Reshape', out, [x, asInt64(ins[1], out)], {}, [out]);
          break;
        case 'Squeeze': {
          const axes = attrList(n, 'squeeze_dims').length ? attrList(n, 'squeeze_dims') : attrList(n, 'axis');
          add('Squeeze', out, axes.length ? [x, i64(`${out}/axes`, axes)] : [x], {}, [out]);
          break;
        }
        case 'ExpandDims':
          add('Unsqueeze', out, [x, asInt64(ins[1], out)], {}, [out]);
          break;
        case 'Transpose':
          add('Transpose', out, [x], { perm: Array.from(needConst(ins[1], at).data as Int32Array, Number) }, [out]);
          break;
        case 'ConcatV2': case 'Concat': {
          const axisIn = n.op === 'ConcatV2' ? ins[ins.length - 1] : ins[0];
          const parts = n.op === 'ConcatV2' ? ins.slice(0, -1) : ins.slice(1);
          add('Concat', out, parts, { axis: Number(needConst(axisIn, at).data[0]) }, [out]);
          break;
        }
        case 'Pack': {
          const axis = attrInt(n, 'axis');
          const parts = ins.map((s, i) => add('Unsqueeze', `${out}/u${i}`, [s, i64(`${out}/axis`, [axis])]));
          add('Concat', out, parts, { axis }, [out]);
          break;
        }
        case 'Unpack': {
          const axis = attrInt(n, 'axis'), num = attrInt(n, 'num');
          const parts = Array.from({ length: num }, (_, i) => fresh(`${out}/part${i}`));
          add('Split', `${out}/split`, [x], { axis }, parts);
          parts.forEach((p, i) => add('Squeeze', `${out}/sq${i}`, [p, i64(`${out}/axis`, [axis])], {}, [i ? `${out}:${i}` : out]));
          break;
        }
        case 'Split': case 'SplitV': {
          const num = attrInt(n, 'num_split');
          const [axisIn, value, sizes] = n.op === 'Split' ? [ins[0], ins[1], undefined] : [ins[2], ins[0], ins[1]];
          const outs = Array.from({ length: num }, (_, i) => (i ? `${out}:${i}` : out));
          add('Split', out, sizes ? [value, asInt64(sizes, out)] : [value], { axis: Number(needConst(axisIn, at).data[0]), ...(sizes ? {} : { num_outputs: num }) }, outs);
          break;
        }
        case 'Slice': {
          const begin = asInt64(ins[1], out), size = asInt64(ins[2], out);
          // size -1 runs to the end: end = begin + size, with -1 mapped to the largest index.
          const big = add('Where', `${out}/end`, [
            add('Less', `${out}/open`, [size, i64(`${out}/zero`, [0])]), i64(`${out}/max`, [2 ** 31 - 1]), add('Add', `${out}/sum`, [begin, size]),
          ]);
          add('Slice', out, [x, begin, big], {}, [out]);
          break;
        }
        case 'StridedSlice':
          stridedSlice(n, x, ins, out, { add, needConst, constOf, asInt64, i64, constant, at });
          break;
        case 'SparseToDense': {
          // The default everywhere, then ScatterND of the values at the index rows ([N, R]; a scalar or [N] when R is 1).
          const shape = asInt64(ins[1], out);
          const rows = add('Concat', `${out}/rows`, [i64(`${out}/all`, [-1]), add('Shape', `${out}/rank`, [shape])], { axis: 0 });
          const idx = add('Reshape', `${out}/idx`, [asInt64(ins[0], `${out}/ix`), rows]);
          const n = add('Slice', `${out}/n`, [add('Shape', `${out}/idx_shape`, [idx]), i64(`${out}/zero`, [0]), i64(`${out}/one`, [1])]);
          const dense = add('Expand', `${out}/dense`, [ins[3], shape]);
          add('ScatterND', out, [dense, idx, add('Expand', `${out}/values`, [ins[2], n])], {}, [out]);
          break;
        }
        case 'SpaceToBatchND': case 'BatchToSpaceND':
          add(n.op, out, [x, ins[1], ins[2]], {}, [out]);
          break;
        case 'BroadcastTo':
          add('Expand', out, [x, asInt64(ins[1], out)], {}, [out]);
          break;
        case 'Tile':
          add('Tile', out, [x, asInt64(ins[1], out)], {}, [out]);
          break;
        case 'Pad': case 'PadV2': case 'MirrorPad': {
          // TF paddings [rank, 2] (begin, end per axis) as ONNX pads [begins..., ends...]; computed ones are reordered when they run.
          const p = constOf(ins[1]);
          let pads: string;
          if (p) {
            const v = Array.from(p.data as Int32Array, Number), r = p.shape[0];
            pads = i64(`${out}/pads`, [...Array.from({ length: r }, (_, i) => v[2 * i]), ...Array.from({ length: r }, (_, i) => v[2 * i + 1])]);
          } else pads = add('Reshape', `${out}/pads`, [add('Transpose', `${out}/pads_t`, [asInt64(ins[1], out)], { perm: [1, 0] }), i64(`${out}/flat`, [-1])]);
          const mode = n.op === 'MirrorPad' ? attrStr(n, 'mode') : 'CONSTANT';
          if (mode === 'SYMMETRIC') bad(`${at}: SYMMETRIC mirror padding`);
          add('Pad', out, [x, pads, ...(n.op === 'PadV2' ? [ins[2]] : [])], { mode: mode === 'REFLECT' ? 'reflect' : 'constant' }, [out]);
          break;
        }
        case 'Shape': case 'Size': {
          const y = add(n.op, `${out}/i64`, [x]);
          add('Cast', out, [y], { to: ONNX_CODE[attrType(n, 'out_type') ?? 'int32'] }, [out]);
          break;
        }
        case 'Cast':
          add('Cast', out, [x], { to: ONNX_CODE[attrType(n, 'DstT') ?? bad(`${at}: cast to ${n.attr?.DstT?.type}`)] }, [out]);
          break;
        case 'Fill':
          add('Expand', out, [ins[1], asInt64(x, out)], {}, [out]);
          break;
        case 'ZerosLike': case 'OnesLike': {
          const zero = add('Mul', `${out}/zero`, [x, add('CastLike', `${out}/c0`, [f32(`${out}/0`, 0), x])]);
          add(n.op === 'ZerosLike' ? 'Identity' : 'Add', out, n.op === 'ZerosLike' ? [zero] : [zero, add('CastLike', `${out}/c1`, [f32(`${out}/1`, 1), x])], {}, [out]);
          break;
        }
        case 'GatherV2': case 'Gather': {
          const axis = n.op === 'GatherV2' ? Number(needConst(ins[2], at).data[0]) : 0;
          add('Gather', out, [x, ins[1]], { axis }, [out]);
          break;
        }
        case 'Select': case 'SelectV2':
          add('Where', out, [x, ins[1], ins[2]], {}, [out]);
          break;
        case 'TopKV2': {
          add('TopK', out, [x, add('Reshape', `${out}/k`, [asInt64(ins[1], out), i64(`${out}/one`, [1])])], { axis: -1 }, [out, fresh(`${out}/idx`)]);
          add('Cast', `${out}/indices`, [nodes[nodes.length - 1].outputs[1]], { to: 6 }, [`${out}:1`]);
          break;
        }
        case 'NonMaxSuppressionV3': case 'NonMaxSuppressionV4': case 'NonMaxSuppressionV5': {
          const boxes = add('Unsqueeze', `${out}/boxes`, [x, i64(`${out}/a0`, [0])]);
          const scores = add('Unsqueeze', `${out}/scores`, [ins[1], i64(`${out}/a01`, [0, 1])]);
          if (n.op === 'NonMaxSuppressionV5' && Number(constOf(ins[5])?.data[0] ?? 0) !== 0) bad(`${at}: soft NMS (soft_nms_sigma > 0)`);
          const sel = add('NonMaxSuppression', `${out}/nms`, [boxes, scores, asInt64(ins[2], out), ins[3], ins[4] ?? ''], { center_point_box: 0 });
          const idx = add('Gather', `${out}/col`, [sel, i64(`${out}/two`, [2])], { axis: 1 });
          const flat = add('Reshape', `${out}/flat`, [idx, i64(`${out}/m1`, [-1])]);
          add('Cast', `${out}/i32`, [flat], { to: 6 }, [out]);
          if (n.op === 'NonMaxSuppressionV5') {
            add('Gather', `${out}/sel_scores`, [ins[1], flat], { axis: 0 }, [`${out}:1`]);
            add('Cast', `${out}/count`, [add('Size', `${out}/size`, [flat])], { to: 6 }, [`${out}:2`]);
          } else if (n.op === 'NonMaxSuppressionV4') add('Cast', `${out}/count`, [add('Size', `${out}/size`, [flat])], { to: 6 }, [`${out}:1`]);
          break;
        }
        case 'FusedBatchNorm': case 'FusedBatchNormV3': {
          const [s, o, m, v] = ins.slice(1, 5).map((i) => needConst(i, at).data as Float32Array);
          const eps = attrF(n, 'epsilon', 1e-3), C = s.length;
          const k = new Float32Array(C), b = new Float32Array(C);
          for (let c = 0; c < C; c++) {
            k[c] = s[c] / Math.sqrt(v[c] + eps);
            b[c] = o[c] - m[c] * k[c];
          }
          const y = add('Mul', `${out}/scale`, [x, constant(`${out}/k`, { dtype: 'float32', shape: [C], data: k })]);
          add('Add', out, [y, constant(`${out}/b`, { dtype: 'float32', shape: [C], data: b })], {}, [out]);
          break;
        }
        case 'GatherNd':
          add('GatherND', out, [x, asInt64(ins[1], out)], {}, [out]);
          break;
        case 'Range':
          add('Range', out, [x, ins[1], ins[2]], {}, [out]);
          break;
        case 'NoOp':
          break;
        default:
          problems.push(`${at}: op ${n.op}`);
      }
      made.set(out, [start, nodes.length]);
    } catch (e) {
      if (e instanceof ModelImportError) problems.push(e.message.replace(/^TF\.js graph model: /, ''));
      else throw e;
    }
  }
  problems.push(...frames.problems);
  if (problems.length) throw new UnsupportedModelError(problems);
  // Indices in `made` are into the nodes as they stand now.
  const asMade = nodes.slice();
  for (const f of frames.list) cutLoop(f, list, made, asMade, nodes, consts, add, ref);

  // Outputs: the signature's, else every produced tensor nothing reads.
  const read = new Set(nodes.flatMap((n) => n.inputs));
  let outputs: string[];
  const sigOuts = Object.values((signature?.outputs ?? {}) as Record<string, Json>).map((v) => ref(String(v?.name ?? '')));
  if (sigOuts.length) outputs = sigOuts;
  // Without a signature: every produced tensor nothing reads, except those on a conditional branch
  // (a Switch's unused side, pivots: left over, and DEAD on one branch).
  else outputs = list.filter((n) => n.op !== 'Const' && n.op !== 'NoOp' && n.op !== 'Placeholder' && !read.has(n.name) && !branch.has(n.name)).map((n) => n.name as string);
  // Signature keys name the graph's inputs and outputs where the model has them.
  const outInfo: ValueInfo[] = outputs.map((t) => {
    const key = sigName('outputs', t);
    if (key && key !== t) add('Identity', `${key}/out`, [t], {}, [key]);
    return { name: key ?? t, dtype: 'float32', shape: null };
  });
  for (const v of inputs) {
    const key = sigName('inputs', v.name);
    if (key && key !== v.name) {
      for (const n of nodes) n.inputs = n.inputs.map((t) => (t === v.name ? key : t));
      v.name = key;
    }
  }
  // Declared output dtypes where a Cast or comparison fixes them; the runtime reports the real ones.
  const graph: Graph = { inputs, outputs: outInfo, nodes, consts, opset: 18 };
  // A loop node stands where its frame ended, after nodes that read its Exits: the passes want run order.
  return frames.list.length ? { ...graph, nodes: topoSort(graph) } : graph;
}

type Add = (op: string, name: string, inputs: string[], attrs?: Node['attrs'], outputs?: string[]) => string;

/** The activation a fused conv / matmul ends with: returns the new tensor and any op not understood. */
function fusedTail(n: Json, y: string, post: string[], ins: string[], out: string, add: Add, f32: (name: string, v: number) => string): [string, string[]] {
  const rest: string[] = [];
  for (const op of post) {
    if (op === 'Relu') y = add('Relu', `${out}/relu`, [y]);
    else if (op === 'Relu6') y = add('Clip', `${out}/relu6`, [y, f32(`${out}/lo`, 0), f32(`${out}/hi`, 6)]);
    else if (op === 'Elu') y = add('Elu', `${out}/elu`, [y]);
    else if (op === 'Sigmoid') y = add('Sigmoid', `${out}/sigmoid`, [y]);
    else if (op === 'Tanh') y = add('Tanh', `${out}/tanh`, [y]);
    else if (op === 'LeakyRelu') y = add('LeakyRelu', `${out}/leaky`, [y], { alpha: attrF(n, 'leakyrelu_alpha', 0.2) });
    else if (op === 'Prelu') {
      // The alpha of a fused Prelu is the last input; channels are last (NHWC) once transposed back, so it is applied after.
      rest.push(op);
    } else rest.push(op);
  }
  if (rest.length === 1 && rest[0] === 'Prelu') {
    const t = add('Transpose', `${out}/prelu_nhwc`, [y], { perm: TO_NHWC });
    const p = add('PRelu', `${out}/prelu`, [t, ins[ins.length - 1]]);
    return [add('Transpose', `${out}/prelu_nchw`, [p], { perm: TO_NCHW }), []];
  }
  return [y, rest];
}

/**
 * StridedSlice and its masks, as Slice plus the axes it adds or removes. Specs before an ellipsis
 * address axes from the front; specs after it address axes from the back (negative axes), so the
 * input's rank need not be known when the graph is imported. The strides must be constants (they fix
 * each spec's direction); begin and end may be computed (jax2tf exports compute ends from shapes):
 * their elements are then gathered at run time, where the shape arithmetic folds them once per plan.
 */
function stridedSlice(n: Json, x: string, ins: string[], out: string,
  h: { add: Add; needConst: (s: string, at: string) => Tensor; constOf: (s: string) => Tensor | undefined; asInt64: (s: string, name: string) => string;
    i64: (name: string, v: number[]) => string; constant: (name: string, t: Tensor) => string; at: string }) {
  const s = Array.from(h.needConst(ins[3], h.at).data as Int32Array, Number);
  const big = 2 ** 31 - 1;
  // A spec's begin or end: a number, or element i of the begin (end) input, known at run time.
  type Spec = number | { of: 'begin' | 'end'; i: number; shrink?: boolean };
  const known = [1, 2].map((k) => h.constOf(ins[k])).map((t) => (t ? Array.from(t.data as Int32Array, Number) : null));
  const spec = (k: 0 | 1, i: number, shrink = false): Spec => {
    const v = known[k];
    if (!v) return { of: k ? 'end' : 'begin', i, shrink };
    return shrink ? (v[i] === -1 ? big : v[i] + 1) : v[i];
  };
  const bm = attrInt(n, 'begin_mask'), em = attrInt(n, 'end_mask'), ellipsisMask = attrInt(n, 'ellipsis_mask');
  const newAxis = attrInt(n, 'new_axis_mask'), shrink = attrInt(n, 'shrink_axis_mask');
  const has = (mask: number, i: number) => (mask & (1 << i)) !== 0;
  // TF uses the first ellipsis only; later ellipsis bits are ignored.
  const ellipsis = s.findIndex((_, i) => has(ellipsisMask, i));
  const starts: Spec[] = [], ends: Spec[] = [], axes: number[] = [], steps: number[] = [], squeeze: number[] = [], unsqueeze: number[] = [];
  // Where each spec lands: input axis (sliced, squeezed) and output axis (new axes), counted from the
  // back after the ellipsis. A new axis takes no input axis; a shrunk one leaves no output axis.
  const after = (i: number, count: (j: number) => boolean) => s.slice(i + 1).filter((_, k) => count(i + 1 + k)).length;
  let axis = 0, outAxis = 0;
  for (let i = 0; i < s.length; i++) {
    if (i === ellipsis) continue;
    const back = ellipsis >= 0 && i > ellipsis;
    if (has(newAxis, i)) {
      unsqueeze.push(back ? -(after(i, (j) => !has(shrink, j) || has(newAxis, j)) + 1) : outAxis++);
      continue;
    }
    const at = back ? -(after(i, (j) => !has(newAxis, j)) + 1) : axis++;
    if (has(shrink, i)) {
      starts.push(spec(0, i));
      ends.push(spec(0, i, true));
      squeeze.push(at);
    } else {
      starts.push(has(bm, i) ? (s[i] > 0 ? 0 : big) : spec(0, i));
      ends.push(has(em, i) ? (s[i] > 0 ? big : -big) : spec(1, i));
      if (!back) outAxis++;
    }
    axes.push(at);
    steps.push(has(shrink, i) ? 1 : s[i]);
  }
  // The computed begin and end as int64, cast once each.
  const cast = new Map<'begin' | 'end', string>();
  const computed = (of: 'begin' | 'end') => cast.get(of) ?? cast.set(of, h.asInt64(ins[of === 'begin' ? 1 : 2], `${out}/${of}`)).get(of)!;
  // A vector of specs: constants, with the computed elements gathered and put in their places.
  const vector = (name: string, specs: Spec[]): string => {
    if (specs.every((v) => typeof v === 'number')) return h.i64(name, specs as number[]);
    let y = h.i64(`${name}/known`, specs.map((v) => (typeof v === 'number' ? v : 0)));
    for (const [of, cut] of [['begin', false], ['begin', true], ['end', false]] as const) {
      const here = specs.map((v) => typeof v !== 'number' && v.of === of && !!v.shrink === cut);
      if (!here.some(Boolean)) continue;
      const tag = `${name}/${of}${cut ? '_shrunk' : ''}`;
      const idx = specs.map((v, j) => (here[j] ? (v as { i: number }).i : 0));
      let g = h.add('Gather', tag, [computed(of), h.i64(`${tag}/at`, idx)], { axis: 0 });
      // A shrunk axis ends one past its begin; begin -1 (the last element) runs to the end.
      if (cut) g = h.add('Where', `${tag}/end`, [h.add('Equal', `${tag}/last`, [g, h.i64(`${tag}/minus1`, [-1])]), h.i64(`${tag}/big`, [big]), h.add('Add', `${tag}/next`, [g, h.i64(`${tag}/one`, [1])])]);
      y = h.add('Where', `${tag}/put`, [h.constant(`${tag}/mask`, fromNumbers('bool', [here.length], here.map(Number))), g, y]);
    }
    return y;
  };
  let y = x;
  if (axes.length) y = h.add('Slice', `${out}/slice`, [x, vector(`${out}/starts`, starts), vector(`${out}/ends`, ends), h.i64(`${out}/axes`, axes), h.i64(`${out}/steps`, steps)]);
  if (squeeze.length) y = h.add('Squeeze', `${out}/squeeze`, [y, h.i64(`${out}/sq`, squeeze)]);
  if (unsqueeze.length) y = h.add('Unsqueeze', `${out}/unsqueeze`, [y, h.i64(`${out}/usq`, unsqueeze)]);
  h.add('Identity', out, [y], {}, [out]);
}

/** A TF node's data inputs as tensor names ("node", "node:k"); control inputs ("^node") only order work. */
function dataInputs(n: Json, ref: (s: string) => string): string[] {
  return ((n.input ?? []) as string[]).filter((t) => !t.startsWith('^')).map(ref);
}

/**
 * TF tensors that may be DEAD: the outputs of a conditional's Switch nodes (not a loop's, whose
 * predicate is a LoopCond) and everything that reads them (Merge only when all its inputs may be).
 * Control inputs only order work, as in tfjs: they are not followed.
 */
function onBranch(list: Json[], ref: (s: string) => string, loopCond: Set<string>): Set<string> {
  const may = new Set<string>();
  const outs = (n: Json) => [n.name as string, ...Array.from({ length: 4 }, (_, k) => `${n.name}:${k + 1}`)];
  for (let changed = true; changed;) {
    changed = false;
    for (const n of list) {
      if (may.has(n.name)) continue;
      const ins = dataInputs(n, ref);
      const hit = (n.op === 'Switch' && !loopCond.has(ins[1])) || (n.op === 'Merge' ? ins.length > 0 && ins.every((t) => may.has(t)) : ins.some((t) => may.has(t)));
      if (hit) {
        for (const o of outs(n)) may.add(o);
        changed = true;
      }
    }
  }
  return may;
}

/** A while loop's frame: its TF nodes and the roles some of them play. */
interface Frame {
  name: string;
  members: Set<string>;
  /** Per loop variable: its Enter, Merge, NextIteration and Exit (where it has one). */
  vars: { enter: string; merge: string; next: string; exit?: string }[];
  /** Enters of values the loop only reads. */
  reads: string[];
  cond: string;
}

/**
 * The while loops' frames (tf.while_loop, tf.map_fn): every node that reads an Enter of the frame,
 * directly or through other frame nodes, up to its Exits. Nested loops are refused.
 */
function loopFrames(list: Json[], ref: (s: string) => string): { list: Frame[]; loopCond: Set<string>; varMerge: Set<string>; problems: string[] } {
  const byName = new Map<string, Json>(list.map((n) => [n.name as string, n]));
  const frameOf = new Map<string, string>();
  const problems: string[] = [];
  for (const n of list) if (n.op === 'Enter') frameOf.set(n.name, attrStr(n, 'frame_name'));
  // Frames are traced by node: "node:k" counts as "node".
  const dataIns = (n: Json) => dataInputs(n, ref).map((t) => t.replace(/:\d+$/, ''));
  for (let changed = true; changed;) {
    changed = false;
    for (const n of list) {
      if (n.op === 'Enter' || frameOf.has(n.name)) continue;
      const from = new Set(dataIns(n).filter((t) => frameOf.has(t) && byName.get(t)?.op !== 'Exit').map((t) => frameOf.get(t)!));
      if (from.size > 1) problems.push(`node ${n.name} (${n.op}): reads two loops' frames (nested loops are not run)`);
      if (from.size) {
        frameOf.set(n.name, [...from][0]);
        changed = true;
      }
    }
  }
  for (const n of list) if (n.op === 'Enter' && frameOf.has(dataIns(n)[0] ?? '')) problems.push(`node ${n.name} (Enter): a loop inside a loop is not run`);
  const frames: Frame[] = [];
  const loopCond = new Set<string>(), varMerge = new Set<string>();
  for (const name of new Set(frameOf.values())) {
    const members = new Set([...frameOf].filter(([, f]) => f === name).map(([k]) => k));
    const of = (op: string) => [...members].map((m) => byName.get(m)!).filter((m) => m.op === op);
    const conds = of('LoopCond');
    if (conds.length !== 1) {
      problems.push(`loop ${name}: ${conds.length} LoopCond nodes (one expected)`);
      continue;
    }
    loopCond.add(conds[0].name);
    const vars: Frame['vars'] = [];
    for (const m of of('Merge')) {
      const ins = dataIns(m);
      const enter = ins.find((t) => byName.get(t)?.op === 'Enter'), next = ins.find((t) => byName.get(t)?.op === 'NextIteration');
      if (!enter || !next) continue;
      varMerge.add(m.name);
      const sw = of('Switch').find((w) => dataIns(w)[0] === m.name);
      const exit = sw && of('Exit').find((e) => dataIns(e)[0] === sw.name);
      vars.push({ enter, merge: m.name, next, exit: exit?.name });
    }
    const used = new Set(vars.map((v) => v.enter));
    frames.push({ name, members, vars, reads: of('Enter').map((e) => e.name).filter((e) => !used.has(e)), cond: conds[0].name });
  }
  return { list: frames, loopCond, varMerge, problems };
}

/**
 * Replaces a loop's IR nodes by one _TfLoop node (src/ops/loop.ts): its inputs are the variables'
 * first values and the values the loop reads, its `cond` and `body` graphs what the frame computes
 * from them (each with the constants it uses), its outputs the Exits.
 */
function cutLoop(f: Frame, list: Json[], made: Map<string, [number, number]>, asMade: Node[], nodes: Node[], consts: Map<string, Tensor>, add: Add, ref: (s: string) => string): void {
  const inFrame = new Set<Node>();
  for (const m of f.members) {
    const r = made.get(m);
    if (r) for (let i = r[0]; i < r[1]; i++) inFrame.add(asMade[i]);
  }
  const body = nodes.filter((n) => inFrame.has(n));
  const inputs: ValueInfo[] = [...f.vars.map((v) => v.merge), ...f.reads].map((name) => ({ name, dtype: 'float32', shape: null }));
  const graphOf = (outs: string[]): Graph => {
    // The frame's nodes the outputs need, in order, and the constants they read.
    const need = new Set(outs), keep: Node[] = [];
    for (let i = body.length - 1; i >= 0; i--) {
      if (!body[i].outputs.some((o) => need.has(o))) continue;
      keep.unshift(body[i]);
      for (const t of body[i].inputs) need.add(t);
    }
    const used = new Map([...consts].filter(([k]) => need.has(k)));
    return { inputs, outputs: outs.map((name) => ({ name, dtype: 'float32', shape: null })), nodes: keep, consts: used, opset: 18 };
  };
  const cond = graphOf([f.cond]), step = graphOf(f.vars.map((v) => v.next));
  const rest = nodes.filter((n) => !inFrame.has(n));
  nodes.length = 0;
  nodes.push(...rest);
  const enterInput = (e: string) => dataInputs(list.find((n) => n.name === e)!, ref)[0];
  add('_TfLoop', f.name, [...f.vars.map((v) => enterInput(v.enter)), ...f.reads.map(enterInput)], { cond, body: step, vars: f.vars.length },
    f.vars.map((v, i) => v.exit ?? `${f.name}/unused${i}`));
}

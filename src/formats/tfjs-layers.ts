import { ArgumentError, FasterCnnError } from '../errors.js';
import { ModelImportError, UnsupportedModelError } from './errors.js';
import type { AttrValue, Graph, Node, ValueInfo } from '../ir/graph.js';
import { fromNumbers, zeros, type Tensor } from '../ir/tensor.js';
import { opDef } from '../ops/index.js';
import { decodeTypedWeights, type TfjsArtifacts } from './tfjs.js';
import { TO_NCHW, TO_NHWC, filterOihw, irBuilder } from './ir-builder.js';

/**
 * A TF.js layers model (Keras JSON: Sequential or functional) as an IR graph, NHWC kept as
 * Keras computes it: convolutions, pooling and resizing run between a Transpose to NCHW and
 * one back (the layout pass removes the pairs that meet), every other layer on NHWC directly.
 * Functional models keep every input and output layer, named by layer.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const bad = (why: string): never => {
  throw new ModelImportError(`TF.js layers model: ${why}`);
};


/** Keras activations as IR ops: [op, attrs] steps applied in order. */
const ACTIVATIONS: Record<string, [string, Node['attrs']][]> = {
  linear: [], relu: [['Relu', {}]], sigmoid: [['Sigmoid', {}]], tanh: [['Tanh', {}]], elu: [['Elu', {}]], selu: [['Selu', {}]],
  softplus: [['Softplus', {}]], softsign: [['Softsign', {}]], exponential: [['Exp', {}]], gelu: [['Gelu', {}]],
  hard_sigmoid: [['HardSigmoid', { alpha: 0.2, beta: 0.5 }]], swish: [['_SiLU', {}]], silu: [['_SiLU', {}]],
  softmax: [['Softmax', { axis: -1 }]], relu6: [['_Relu6', {}]],
};

function pair(v: unknown, what: string): [number, number] {
  const p = typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? v : bad(`${what} is ${JSON.stringify(v)}`);
  if (!p.every((x: unknown) => Number.isInteger(x) && (x as number) >= 1)) bad(`${what} is ${JSON.stringify(v)}`);
  return p as [number, number];
}

/**
 * What a custom layer's builder gets: the layer's inputs (NHWC, as Keras computes them), its Keras
 * config and weights, and ways to add ONNX operators and constants. Returns the layer's output.
 */
export interface CustomLayerContext {
  /** The layer's input values, in the order of its inbound nodes. */
  inputs: string[];
  /** The layer's `config` from model.json (e.g. `{ name, beta: 0.2 }`). */
  config: Record<string, unknown>;
  /** The layer's weight of that name (e.g. 'kernel', 'bias'), as stored: Keras layout. */
  weight(name: string): Tensor;
  /** Adds an ONNX operator (opset 18; spatial ones read NCHW) on these inputs; returns its first output. */
  op(type: string, inputs: string[], attrs?: Record<string, AttrValue>): string;
  /** A constant: a float32 scalar or vector from numbers, or any tensor. */
  constant(value: number | number[] | Tensor): string;
}

/**
 * A Keras layer class that a library registers itself (`tf.serialization.registerClass`), such as
 * UpscalerJS's MultiplyBeta: built from ONNX operators by the importer's caller.
 */
export type CustomLayer = (layer: CustomLayerContext) => string;

/** Runs a custom layer's builder, checking what it adds and returns. */
function buildCustom(cls: string, f: CustomLayer, name: string, ins: string[], config: Record<string, unknown>, weight: (w: string) => Tensor,
  add: (op: string, name: string, ins: string[], attrs?: Node['attrs']) => string, constant: (name: string, t: Tensor) => string): string {
  const arg = `customLayers.${cls}`;
  const made = new Set(ins);
  const ctx: CustomLayerContext = {
    inputs: [...ins],
    config,
    weight,
    op: (type, inputs, attrs = {}) => {
      if (!opDef(type)) throw new ArgumentError(`${arg} op type`, type, 'an ONNX operator the runtime has (src/ops)');
      if (!Array.isArray(inputs) || !inputs.every((i) => i === '' || made.has(i))) {
        throw new ArgumentError(`${arg} op inputs`, inputs, "names from the layer's inputs, its constants or its ops' outputs ('' for an omitted one)");
      }
      const out = add(type, `${name}/${type.toLowerCase()}`, inputs, attrs);
      made.add(out);
      return out;
    },
    constant: (value) => {
      const t = typeof value === 'number' ? fromNumbers('float32', [], [value])
        : Array.isArray(value) && value.every((v) => typeof v === 'number') ? fromNumbers('float32', [value.length], value)
          : value && typeof value === 'object' && 'dtype' in value && 'shape' in value && 'data' in value ? value as Tensor
            : (() => { throw new ArgumentError(`${arg} constant`, value, 'a number, an array of numbers or a tensor'); })();
      const k = constant(`${name}/const`, t);
      made.add(k);
      return k;
    },
  };
  let y: unknown;
  try {
    y = f(ctx);
  } catch (e) {
    if (e instanceof FasterCnnError) throw e;
    throw new ModelImportError(`layer ${name} (${cls}): customLayers.${cls} threw: ${(e as Error)?.message ?? e}`);
  }
  if (typeof y !== 'string' || !made.has(y)) throw new ArgumentError(`${arg} result`, y, "the name of the layer's output: one of its inputs or a value its ops made");
  return y;
}

export function tfjsLayersToIr(a: TfjsArtifacts, customLayers: Record<string, CustomLayer> = {}): Graph {
  const topo = a.modelTopology as Json;
  const cfg = topo?.model_config ?? topo;
  if (!cfg?.class_name) bad('modelTopology is not a Keras model_config');
  const layers: Json[] = Array.isArray(cfg.config) ? cfg.config : cfg.config?.layers ?? bad('model_config.config.layers is missing');
  if (!layers.length) bad('the model has no layers');
  const sequential = cfg.class_name === 'Sequential';
  const weights = decodeTypedWeights(a);
  const { consts, nodes, constant, add: addNode } = irBuilder();
  const problems: string[] = [];
  const inputs: ValueInfo[] = [];
  const add = (op: string, name: string, ins: string[], attrs: Node['attrs'] = {}, out?: string) => addNode(op, name, ins, attrs, out === undefined ? undefined : [out]);
  const weight = (layer: string, w: string): Tensor => {
    const hit = weights.get(`${layer}/${w}`) ?? [...weights.entries()].find(([k]) => k.endsWith(`/${layer}/${w}`))?.[1];
    return hit ?? bad(`layer ${layer} has no weight ${w}`);
  };
  const activate = (x: string, act: string | undefined, name: string, at: string) => {
    const steps = ACTIVATIONS[act ?? 'linear'] ?? (problems.push(`${at}: activation ${JSON.stringify(act)}`), []);
    for (const [op, attrs] of steps) {
      x = op === '_Relu6' ? add('Clip', `${name}/relu6`, [x, constant('zero', fromNumbers('float32', [], [0])), constant('six', fromNumbers('float32', [], [6]))])
        : add(op, `${name}/${op.toLowerCase()}`, [x], attrs);
    }
    return x;
  };
  const declareInput = (name: string, shape: unknown[]) => {
    inputs.push({ name, dtype: 'float32', shape: shape.map((d, i) => (Number.isInteger(d) && (d as number) > 0 ? d as number : i === 0 ? 'batch' : `${name}_${i}`)) });
  };
  const tensors = new Map<string, string>();
  let last = '';
  if (sequential) {
    const first = layers[0].config ?? {};
    const shape: unknown[] = first.batch_input_shape ?? first.batch_shape ?? bad('the first layer has no batch_input_shape');
    declareInput('input', shape);
    last = 'input';
  }
  for (const layer of layers) {
    const c: Json = layer.config ?? {};
    const name: string = c.name ?? layer.name;
    const at = `layer ${name} (${layer.class_name})`;
    let ins: string[];
    if (sequential) ins = [last];
    else {
      const inbound: unknown[] = layer.inbound_nodes?.[0] ?? [];
      ins = inbound.map((e) => {
        const src = Array.isArray(e) ? e[0] : (e as Json)?.args ? bad(`${at}: Keras 3 inbound nodes are not read`) : bad(`${at}: inbound node ${JSON.stringify(e)}`);
        return tensors.get(src) ?? bad(`${at} reads layer ${src}, which is not defined before it`);
      });
    }
    if (layer.class_name === 'InputLayer') {
      if (!sequential) declareInput(name, c.batch_input_shape ?? c.batch_shape ?? bad(`${at} has no batch_input_shape`));
      tensors.set(name, sequential ? 'input' : name);
      last = sequential ? 'input' : name;
      continue;
    }
    const x = ins[0] ?? bad(`${at} has no input`);
    let y = x;
    const spatial = (op: string, inputsNchw: string[], attrs: Node['attrs'], act?: string) => {
      let t = add(op, name, [add('Transpose', `${name}/to_nchw`, [x], { perm: TO_NCHW }), ...inputsNchw], attrs);
      t = activate(t, act, name, at);
      return add('Transpose', `${name}/to_nhwc`, [t], { perm: TO_NHWC });
    };
    /** A window layer's padding mode ('same' or 'valid') as ONNX attributes. */
    const padding = (): Node['attrs'] => {
      if (!['same', 'valid'].includes(c.padding ?? 'valid')) bad(`${at}: padding ${JSON.stringify(c.padding)}`);
      return c.padding === 'same' ? { auto_pad: 'SAME_UPPER' } : {};
    };
    try {
      const custom = Object.hasOwn(customLayers, layer.class_name) ? customLayers[layer.class_name] : undefined;
      if (custom) y = buildCustom(layer.class_name, custom, name, ins, c, (w) => weight(name, w), add, constant);
      else switch (layer.class_name) {
        case 'Conv2D': case 'DepthwiseConv2D': case 'SeparableConv2D': {
          if (c.data_format === 'channels_first') bad(`${at}: channels_first`);
          const k = pair(c.kernel_size, `${at} kernel_size`), s = pair(c.strides ?? 1, `${at} strides`), d = pair(c.dilation_rate ?? 1, `${at} dilation_rate`);
          const attrs: Node['attrs'] = { kernel_shape: k, strides: s, dilations: d, ...padding() };
          const bias = c.use_bias !== false ? [constant(`${name}/bias`, weight(name, 'bias'))] : [];
          if (layer.class_name === 'Conv2D') {
            y = spatial('Conv', [constant(`${name}/kernel`, filterOihw(weight(name, 'kernel'), false)), ...bias], { ...attrs, group: c.groups ?? 1 }, c.activation);
          } else if (layer.class_name === 'DepthwiseConv2D') {
            const w = weight(name, 'depthwise_kernel');
            y = spatial('Conv', [constant(`${name}/kernel`, filterOihw(w, true)), ...bias], { ...attrs, group: w.shape[2] }, c.activation);
          } else {
            // Depthwise (no bias), then pointwise with the bias and activation.
            const dw = weight(name, 'depthwise_kernel'), pw = weight(name, 'pointwise_kernel');
            const t = add('Conv', `${name}/depthwise`, [add('Transpose', `${name}/to_nchw`, [x], { perm: TO_NCHW }), constant(`${name}/dw`, filterOihw(dw, true))], { ...attrs, group: dw.shape[2] });
            let p = add('Conv', `${name}/pointwise`, [t, constant(`${name}/pw`, filterOihw(pw, false)), ...bias], { kernel_shape: [1, 1] });
            p = activate(p, c.activation, name, at);
            y = add('Transpose', `${name}/to_nhwc`, [p], { perm: TO_NHWC });
          }
          break;
        }
        case 'Conv2DTranspose': {
          const k = pair(c.kernel_size, `${at} kernel_size`), s = pair(c.strides ?? 1, `${at} strides`);
          const w = weight(name, 'kernel'); // [KH, KW, O, C]
          const [KH, KW, O, C] = w.shape;
          const f = zeros('float32', [C, O, KH, KW]), src = w.data as Float32Array, dst = f.data as Float32Array;
          for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) for (let o = 0; o < O; o++) for (let ci = 0; ci < C; ci++) dst[((ci * O + o) * KH + kh) * KW + kw] = src[((kh * KW + kw) * O + o) * C + ci];
          const bias = c.use_bias !== false ? [constant(`${name}/bias`, weight(name, 'bias'))] : [];
          const outPad: Node['attrs'] = c.output_padding ? { output_padding: pair(c.output_padding, `${at} output_padding`) } : {};
          y = spatial('ConvTranspose', [constant(`${name}/kernel`, f), ...bias], { kernel_shape: k, strides: s, ...padding(), ...outPad }, c.activation);
          break;
        }
        case 'MaxPooling2D': case 'AveragePooling2D': {
          const k = pair(c.pool_size ?? 2, `${at} pool_size`), s = pair(c.strides ?? c.pool_size ?? 2, `${at} strides`);
          y = spatial(layer.class_name === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [], { kernel_shape: k, strides: s, ...padding() });
          break;
        }
        case 'GlobalAveragePooling2D': case 'GlobalMaxPooling2D':
          y = add(layer.class_name === 'GlobalMaxPooling2D' ? 'ReduceMax' : 'ReduceMean', name, [x], { axes: [1, 2], keepdims: c.keepdims ? 1 : 0 });
          break;
        case 'UpSampling2D': {
          const [sh, sw] = pair(c.size ?? 2, `${at} size`);
          const mode = c.interpolation === 'bilinear' ? 'linear' : 'nearest';
          y = spatial('Resize', ['', constant(`${name}/scales`, fromNumbers('float32', [4], [1, 1, sh, sw]))], { mode, coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
          break;
        }
        case 'ZeroPadding2D': {
          const p = c.padding ?? 1;
          const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p[0]) ? p : [[p[0], p[0]], [p[1], p[1]]];
          y = add('Pad', name, [x, constant(`${name}/pads`, fromNumbers('int64', [8], [0, t, l, 0, 0, b, r, 0]))]);
          break;
        }
        case 'Cropping2D': {
          const p = c.cropping ?? 0;
          const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p[0]) ? p : [[p[0], p[0]], [p[1], p[1]]];
          const big = 2 ** 31 - 1;
          y = add('Slice', name, [x, constant('starts', fromNumbers('int64', [2], [t, l])), constant('ends', fromNumbers('int64', [2], [b ? -b : big, r ? -r : big])), constant('axes', fromNumbers('int64', [2], [1, 2]))]);
          break;
        }
        case 'BatchNormalization': {
          const axis = c.axis === undefined ? -1 : Array.isArray(c.axis) ? c.axis[0] : c.axis;
          if (axis !== -1 && axis !== 3) bad(`${at}: axis ${axis} (only the channel axis, last)`);
          const mean = weight(name, 'moving_mean').data as Float32Array, variance = weight(name, 'moving_variance').data as Float32Array, n = mean.length;
          const gamma = c.scale === false ? new Float32Array(n).fill(1) : weight(name, 'gamma').data as Float32Array;
          const beta = c.center === false ? new Float32Array(n) : weight(name, 'beta').data as Float32Array;
          const k = new Float32Array(n), sh = new Float32Array(n);
          for (let i = 0; i < n; i++) {
            k[i] = gamma[i] / Math.sqrt(variance[i] + (c.epsilon ?? 1e-3));
            sh[i] = beta[i] - mean[i] * k[i];
          }
          y = add('Add', name, [add('Mul', `${name}/scale`, [x, constant(`${name}/k`, { dtype: 'float32', shape: [n], data: k })]), constant(`${name}/b`, { dtype: 'float32', shape: [n], data: sh })]);
          break;
        }
        case 'Dense': {
          const w = weight(name, 'kernel');
          y = add('MatMul', name, [x, constant(`${name}/kernel`, w)]);
          if (c.use_bias !== false) y = add('Add', `${name}/bias`, [y, constant(`${name}/bias`, weight(name, 'bias'))]);
          y = activate(y, c.activation, name, at);
          break;
        }
        case 'Activation':
          y = activate(x, c.activation, name, at);
          break;
        case 'ReLU': {
          if (c.threshold) bad(`${at}: threshold ${c.threshold}`);
          const slope = c.negative_slope ?? 0;
          y = c.max_value !== null && c.max_value !== undefined
            ? add('Clip', name, [slope ? add('LeakyRelu', `${name}/leaky`, [x], { alpha: slope }) : x, constant('lo', fromNumbers('float32', [], [slope ? -Infinity : 0])), constant('hi', fromNumbers('float32', [], [c.max_value]))])
            : slope ? add('LeakyRelu', name, [x], { alpha: slope }) : add('Relu', name, [x]);
          break;
        }
        case 'LeakyReLU':
          y = add('LeakyRelu', name, [x], { alpha: c.alpha ?? 0.3 });
          break;
        case 'ELU':
          y = add('Elu', name, [x], { alpha: c.alpha ?? 1 });
          break;
        case 'PReLU':
          y = add('PRelu', name, [x, constant(`${name}/alpha`, weight(name, 'alpha'))]);
          break;
        case 'Softmax':
          y = add('Softmax', name, [x], { axis: c.axis ?? -1 });
          break;
        case 'Add': case 'Multiply': case 'Subtract': case 'Maximum': case 'Minimum': {
          const op = { Add: 'Add', Multiply: 'Mul', Subtract: 'Sub', Maximum: 'Max', Minimum: 'Min' }[layer.class_name as 'Add'];
          y = ins.slice(1).reduce((acc, t, i) => add(op, `${name}/${i}`, [acc, t]), x);
          break;
        }
        case 'Average':
          y = add('Mean', name, ins);
          break;
        case 'Concatenate':
          y = add('Concat', name, ins, { axis: c.axis ?? -1 });
          break;
        case 'Flatten':
          y = add('Flatten', name, [x], { axis: 1 });
          break;
        case 'Reshape':
          y = add('Reshape', name, [x, constant(`${name}/shape`, fromNumbers('int64', [c.target_shape.length + 1], [0, ...c.target_shape]))]);
          break;
        case 'Permute':
          y = add('Transpose', name, [x], { perm: [0, ...(c.dims as number[])] });
          break;
        case 'Dropout': case 'SpatialDropout2D': case 'GaussianNoise': case 'GaussianDropout': case 'AlphaDropout': case 'ActivityRegularization':
          y = add('Identity', name, [x]);
          break;
        default:
          problems.push(`${at}: layer type ${layer.class_name} (a class its library registers itself: importModel's customLayers can build it)`);
      }
    } catch (e) {
      if (e instanceof ModelImportError) problems.push(e.message.replace(/^TF\.js layers model: /, ''));
      else throw e;
    }
    tensors.set(name, y);
    last = y;
  }
  if (problems.length) throw new UnsupportedModelError(problems);
  const outLayers: unknown[] = sequential ? [] : cfg.config?.output_layers ?? [];
  const outNames = outLayers.length ? outLayers.map((o) => (Array.isArray(o) ? o[0] as string : bad(`output layer ${JSON.stringify(o)}`))) : [layers[layers.length - 1].config?.name ?? 'output'];
  const outputs: ValueInfo[] = outNames.map((n) => {
    const t = outLayers.length ? tensors.get(n) ?? bad(`output layer ${n} is not defined`) : last;
    const key = outNames.length === 1 && sequential ? 'output' : n;
    add('Identity', `${key}/out`, [t], {}, key);
    return { name: key, dtype: 'float32', shape: null };
  });
  return { inputs, outputs, nodes, consts, opset: 18 };
}

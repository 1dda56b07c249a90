import { ArgumentError } from '../errors.js';
import { decodeAny, encodeGraph, encodeModel } from '../formats/fcnn.js';
import { MAX_TENSOR, sizeOf, type Graph } from '../graph/graph.js';
import { optimize } from '../graph/optimize.js';
import { GraphRunner, type NodeProfile, type Range } from '../graph/run.js';
import { checkPreprocess, type Preprocess } from '../images/preprocess.js';
import { IntegerNet, type StageTiming } from './integer.js';
import type { Sequential } from './model.js';
import { QuantReLU } from './layers.js';
import type { Tensor } from './tensor.js';

export interface PredictOptions {
  /** Engine for the integer convolutions ('auto', 'wasm', 'webgpu', 'js'). */
  backend?: string;
  /** Integer networks: table look-ups (default; imported graphs: 'auto') or direct multiplication. */
  kernel?: 'auto' | 'pcilt' | 'direct';
  threads?: number;
  timings?: StageTiming[];
  /** Imported graphs: override the stored activation bit width (0 = float32). */
  activationBits?: number;
  /** Imported graphs: one entry per node, with the integer kernel 'auto' chose and why. */
  profile?: NodeProfile[];
}

/** What an imported graph's metadata says about running it. */
export interface GraphMeta {
  source?: string;
  /** Activation codes of this many bits in every convolution and dense layer; absent: float32. */
  activationBits?: number;
  /** Calibrated (static) activation ranges per tensor; absent: measured per input (dynamic). */
  ranges?: Record<string, Range>;
  preprocessing?: Preprocess;
}

/**
 * A network ready for inference. Trained here (a Sequential): quantized ones run as integers
 * (PCILT), float ones in float. Imported (a Graph): float32, or integer convolutions on
 * activation codes when `meta.activationBits` is set.
 */
export class Model {
  private integer?: IntegerNet;
  private runner?: GraphRunner;

  constructor(private readonly sequential: Sequential | null, readonly meta: Record<string, unknown> & GraphMeta = {}, readonly graph: Graph | null = null) {
    if (!sequential && !graph) throw new ArgumentError('model', null, 'a Sequential or a Graph');
    if (graph) this.runner = new GraphRunner(graph);
  }

  /** The layer stack of a model trained here; imported graphs have none. */
  get net(): Sequential {
    if (!this.sequential) throw new ArgumentError('model', 'an imported graph', 'a model trained with faster-cnn (a Sequential of layers) for this operation');
    return this.sequential;
  }

  get quantized(): boolean {
    if (!this.sequential) return Boolean(this.meta.activationBits);
    return this.sequential.layers.some((l) => l instanceof QuantReLU && l.bits);
  }

  integerNet(): IntegerNet {
    this.integer ??= IntegerNet.fromQat(this.net);
    return this.integer;
  }

  /**
   * Trained models: pixels in [0, 1], [N, 1, 28, 28] -> log-probabilities [N, 10]. Imported
   * graphs: the input in the source model's own layout and shape (NHWC for TF.js models, NCHW
   * for ONNX ones) -> its output tensor.
   */
  async predict(x: Tensor, opts: PredictOptions = {}): Promise<Tensor> {
    if (this.graph) return this.predictGraph(x, opts);
    if (!(x?.data instanceof Float32Array) || !Array.isArray(x.shape) || x.shape.length !== 4) {
      throw new ArgumentError('input', x?.shape ?? x, 'a { data: Float32Array, shape: [N, C, H, W] } tensor');
    }
    return this.quantized ? this.integerNet().run(x, { ...opts, kernel: opts.kernel === 'direct' ? 'direct' : 'pcilt' }) : this.net.forward(x, false);
  }

  /** The input shape this model takes for a batch of n, in its source layout. */
  inputShape(n = 1): number[] {
    if (!this.graph) return [n, 1, 28, 28];
    const [, C, H, W] = this.graph.input.shape;
    return this.graph.input.layout === 'nhwc' ? [n, H, W, C] : [n, ...this.graph.input.shape.slice(1)];
  }

  /** An imported model's input, checked against its shape and converted to the graph's NCHW. */
  checkedInput(x: Tensor): Tensor {
    const g = this.graph!;
    const want = this.inputShape(x?.shape?.[0]);
    if (!(x?.data instanceof Float32Array) || !Array.isArray(x.shape) || x.shape.length !== want.length || !Number.isInteger(x.shape[0]) || x.shape[0] < 1
      || x.shape.some((d, i) => i > 0 && d !== want[i]) || x.data.length !== sizeOf(x.shape) || sizeOf(x.shape) > MAX_TENSOR) {
      throw new ArgumentError('input', x?.shape ?? x, `a { data: Float32Array, shape: [${['N', ...want.slice(1)].join(', ')}] } tensor (${g.input.layout.toUpperCase()})`);
    }
    return g.input.layout === 'nhwc' && x.shape.length === 4 ? nhwcToNchw(x) : x;
  }

  /**
   * Fixes an imported model's activation ranges (static quantization) to those the inputs
   * (source layout) reach when run in float32.
   */
  async calibrate(inputs: Tensor | Tensor[]): Promise<void> {
    if (!this.graph || !this.meta.activationBits) throw new ArgumentError('calibration', 'given', 'used together with activationBits');
    const observe = new Map<string, Range>();
    for (const x of Array.isArray(inputs) ? inputs : [inputs]) await this.runner!.run(this.checkedInput(x), { observe });
    this.meta.ranges = Object.fromEntries(observe);
  }

  private async predictGraph(x: Tensor, opts: PredictOptions): Promise<Tensor> {
    const g = this.graph!;
    const bits = opts.activationBits ?? this.meta.activationBits;
    const y = await this.runner!.run(this.checkedInput(x), {
      activationBits: bits || undefined, ranges: this.meta.ranges, backend: opts.backend, threads: opts.threads,
      kernel: opts.kernel, profile: opts.profile,
    });
    return g.input.layout === 'nhwc' && y.shape.length === 4 ? nchwToNhwc(y) : y;
  }
}

function nhwcToNchw(x: Tensor): Tensor {
  const [N, H, W, C] = x.shape;
  const d = new Float32Array(x.data.length);
  for (let n = 0; n < N; n++) for (let p = 0; p < H * W; p++) for (let c = 0; c < C; c++) d[(n * C + c) * H * W + p] = x.data[(n * H * W + p) * C + c];
  return { data: d, shape: [N, C, H, W] };
}

function nchwToNhwc(x: Tensor): Tensor {
  const [N, C, H, W] = x.shape;
  const d = new Float32Array(x.data.length);
  for (let n = 0; n < N; n++) for (let p = 0; p < H * W; p++) for (let c = 0; c < C; c++) d[(n * H * W + p) * C + c] = x.data[(n * C + c) * H * W + p];
  return { data: d, shape: [N, H, W, C] };
}

export async function loadModel(pathOrBytes: string | Uint8Array): Promise<Model> {
  // Node's file system is imported only for paths, so that the module also loads in browsers.
  const bytes = typeof pathOrBytes === 'string' ? new Uint8Array(await (await import('node:fs/promises')).readFile(pathOrBytes)) : pathOrBytes;
  const { model, graph, meta } = decodeAny(bytes);
  return new Model(model ?? null, meta, graph ?? null);
}

export async function saveModel(model: Model | Sequential, path: string, meta: Record<string, unknown> = {}): Promise<void> {
  const m = model instanceof Model ? model : new Model(model, meta);
  const bytes = m.graph ? encodeGraph(m.graph, { ...m.meta, ...meta }) : encodeModel(m.net, { ...m.meta, ...meta });
  await (await import('node:fs/promises')).writeFile(path, bytes);
}

export interface ImportOptions {
  /** Run convolutions and dense layers on activation codes of this many bits (1..8); absent: float32. */
  activationBits?: number;
  /**
   * Inputs (in the source layout) whose activation ranges fix the quantization (static);
   * without them ranges are measured per input at run time (dynamic).
   */
  calibration?: Tensor | Tensor[];
  /** How `faster-cnn run` prepares images; defaults from the model's input. */
  preprocessing?: Partial<Preprocess>;
}

/**
 * Imports an ONNX model (path or bytes), a TF.js model (model.json path, or a JS module that
 * exports one), or a .fcnn file, and returns the model loadModel would return for it once saved.
 */
export async function importModel(src: string | Uint8Array, opts: ImportOptions = {}): Promise<Model> {
  const bits = opts.activationBits;
  if (bits !== undefined && !(Number.isInteger(bits) && bits >= 1 && bits <= 8)) throw new ArgumentError('activationBits', bits, 'an integer 1..8');
  const isFcnn = (b: Uint8Array) => b[0] === 0x46 && b[1] === 0x43 && b[2] === 0x4e && b[3] === 0x4e;
  let graph: Graph;
  let source: string;
  let own: Record<string, Range> = {};
  let stored: Partial<Preprocess> | undefined;
  if (typeof src === 'string' && /\.(json|[cm]?js)$/i.test(src)) {
    const { readTfjs, tfjsToGraph } = await import('../formats/tfjs.js');
    graph = tfjsToGraph(await readTfjs(src));
    source = 'tfjs';
  } else {
    const bytes = typeof src === 'string' ? new Uint8Array(await (await import('node:fs/promises')).readFile(src)) : src;
    if (!(bytes instanceof Uint8Array)) throw new ArgumentError('src', src, 'a path (.onnx, model.json, .js, .fcnn) or the bytes of an ONNX or .fcnn model');
    if (isFcnn(bytes)) {
      // A saved import keeps its settings unless new ones are asked for.
      const m = await loadModel(bytes);
      if (!m.graph || (bits === undefined && opts.calibration === undefined && opts.preprocessing === undefined)) return m;
      graph = m.graph;
      source = String(m.meta.source ?? 'fcnn');
      stored = m.meta.preprocessing;
    } else {
      const { onnxToGraph } = await import('../formats/onnx/import.js');
      ({ graph, ranges: own } = onnxToGraph(bytes));
      source = 'onnx';
    }
  }
  if (!stored) graph = optimize(graph);
  const [, C, H, W] = graph.input.shape;
  const preprocessing = checkPreprocess({
    width: W, height: H, channels: C === 1 ? 'gray' : 'rgb', layout: graph.input.layout, ...stored, ...opts.preprocessing,
  });
  const model = new Model(null, { source, activationBits: bits, preprocessing }, graph);
  if (opts.calibration !== undefined) await model.calibrate(opts.calibration);
  else if (bits === 8 && Object.keys(own).length) {
    // A quantized ONNX model's own scales and zero points: its 8-bit codes, reproduced exactly.
    model.meta.ranges = own;
  }
  return model;
}


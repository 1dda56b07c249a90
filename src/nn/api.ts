import { ArgumentError } from '../errors.js';
import { restoreChoices, saveChoices, type SavedChoices } from '../backends/auto.js';
import { engineIfReady, machineKey, startWorkers } from '../backends/wasm/engine.js';
import { ensureCostModel } from '../kernels/wasm/calibrate.js';
import { decodeAny, encodeIr, encodeModel } from '../formats/fcnn.js';
import { lowerLegacy } from '../formats/lower-legacy.js';
import type { CustomLayer } from '../formats/tfjs-layers.js';
import type { Graph, ValueInfo } from '../ir/graph.js';
import { dtypeOf, type DType, type Tensor as IrTensor } from '../ir/tensor.js';
import { checkPreprocess, type Preprocess } from '../images/preprocess.js';
import type { Range } from '../kernels/wasm/int-conv.js';
import { optimizeGraph } from '../passes/optimize.js';
import { calibrate, type CalibratedLayer, type CalibrationMethod, type CalibrationOptions } from '../passes/calibrate.js';
import { tune, type TuneOptions, type TuneResult } from '../passes/tune.js';
import { Session, type NodeTiming } from '../runtime/session.js';
import type { LayerChoice, QuantOptions } from '../kernels/wasm/int-conv.js';
import { prepareLayers } from '../kernels/wasm/int-conv.js';
import { fnv4End, fnv4Start, fnv4Value, fnv4Words } from '../kernels/wasm/hash.js';
import { BatchNorm2d, Residual, type Layer } from './layers.js';
import { isQuantized, lowerSequential, sequentialIo, type Lowered } from './lower.js';
import type { Sequential } from './model.js';
import type { Tensor } from './tensor.js';

export interface PredictOptions {
  /**
   * 'webgpu': the whole model on the WebGPU device (tensors stay there between nodes; ops without a
   * GPU kernel run on the CPU, and `profile` counts the bytes they move). Otherwise the engine of the
   * layers on activation codes ('auto', 'wasm', 'js').
   */
  backend?: string;
  /** backend 'webgpu': filled with the bytes that crossed between host and device for CPU-run ops, and the dispatches. */
  gpu?: { crossedBytes?: number; dispatches?: number };
  /** Layers on activation codes: 'auto' (default) measures table look-ups against direct multiplication; 'pcilt' or 'direct' forces one. */
  kernel?: 'auto' | 'pcilt' | 'direct';
  threads?: number;
  /**
   * Imported graphs: override the stored activation bit width (0 = float32). Networks trained
   * here keep the widths their training fixed; 0 runs them in float (their fake quantization).
   */
  activationBits?: number;
  /** One entry per node run, with the kernel that ran it (and for layers on codes what 'auto' measured). */
  profile?: NodeProfile[];
  /** Inner values run() returns besides the outputs, by name. */
  keep?: string[];
}

export interface NodeProfile extends NodeTiming {
  /** Layers on codes: the kernel 'auto' chose and what each candidate measured. */
  candidates?: Record<string, number>;
  /** Layers on codes: 'auto' took the choice saved with the model, measured on this machine. */
  saved?: boolean;
  /** Layers on codes: what this machine's cost model predicted for each candidate, when it chose; `probing` while later calls still measure them. */
  predicted?: Record<string, number>;
  probing?: boolean;
  /** Layers on codes: the width of the codes they read. */
  bits?: number;
  /** Layers on codes run by look-ups: the bytes of their tables. */
  tableBytes?: number;
  /** Layers on codes: multiply-adds (or table look-ups) of this run. */
  macs?: number;
}

/** What an imported graph's metadata says about running it. */
export interface GraphMeta {
  source?: string;
  /** Activation codes of this many bits in every convolution and dense layer; absent: float32. */
  activationBits?: number;
  /** Calibrated (static) activation ranges per tensor; absent: measured per input (dynamic). */
  ranges?: Record<string, Range>;
  /**
   * Per node: layers on codes at another width than activationBits (calibration keeps the edges at 8 bits), on
   * non-uniform levels, with a range per input channel, or on refitted weights (graph constants named by `weight`, `bias`).
   */
  layers?: Record<string, CalibratedLayer>;
  /** Per node: what calibration subtracts from each output channel of a layer on codes. */
  biasCorrection?: Record<string, number[]>;
  /** How the ranges were calibrated ('mse': the share of each tensor's min/max range kept). */
  calibration?: { method: CalibrationMethod; inputs: number; clips?: Record<string, number>; refit?: { inputs: number; layers: number } };
  preprocessing?: Preprocess;
  /**
   * What 'auto' chose per layer on codes when the model was saved, and the machine it measured on:
   * loadModel takes them on the same machine, so the first run does not time every candidate.
   */
  autoChoices?: SavedChoices;
}

/** A tensor given to run(): its dtype is that of its typed array unless stated. */
export interface Feed { data: IrTensor['data']; shape: number[]; dtype?: DType }

/**
 * A hash of a network's layers and every value they hold (parameters and batch-norm statistics):
 * four interleaved FNV-style lanes over their bits (kernels/wasm/hash.ts), in wasm for large arrays
 * (0.95 ms a call in JS on MNIST's 420k parameters, 40% of its 2.4 ms run, and 20-25 ms cold).
 */
function fingerprint(net: Sequential): number {
  const h = fnv4Start();
  const walk = (ls: Layer[]) => {
    for (const l of ls) {
      for (const ch of l.type) fnv4Value(h, ch.charCodeAt(0));
      const arrays = [...l.params().map((p) => p.value), ...(l instanceof BatchNorm2d ? [l.runningMean.value, l.runningVar.value] : [])];
      for (const a of arrays) {
        fnv4Value(h, a.length);
        fnv4Words(h, new Int32Array(a.buffer, a.byteOffset, a.length));
      }
      if (l instanceof Residual) walk(l.inner);
    }
  };
  walk(net.layers);
  return fnv4End(h);
}

/**
 * A network ready for inference, run by the graph runtime (src/runtime). Imported (a graph):
 * float32, or convolutions on activation codes when `meta.activationBits` is set. Trained here (a
 * Sequential): lowered to the same IR (src/nn/lower.ts), its quantized layers on the codes its
 * training fixed. `run` maps input names to tensors and returns every output by name.
 */
export class Model {
  private graphSession?: Session;
  private lowered?: { fingerprint: number; forms: Partial<Record<'float' | 'integer', Lowered & { session: Session }>> };

  constructor(private readonly sequential: Sequential | null, readonly meta: Record<string, unknown> & GraphMeta = {}, readonly graph: Graph | null = null) {
    if (!sequential && !graph) throw new ArgumentError('model', null, 'a Sequential or a Graph');
    if (graph) this.graphSession = new Session(graph);
  }

  /** An imported model's runtime session (made again when calibration adds constants to its graph). */
  get session(): Session | undefined {
    return this.graphSession;
  }

  /**
   * The runtime graph of a network trained here, lowered on first use and again whenever its
   * layers or values changed since (training after a run is seen, not stale).
   */
  async lower(form: 'float' | 'integer' = 'integer'): Promise<Lowered & { session: Session }> {
    const net = this.net, f = fingerprint(net);
    if (this.lowered?.fingerprint !== f) this.lowered = { fingerprint: f, forms: {} };
    // Two forms, each made when first asked for: the float graph (fake quantization written out) and the graph integer inference runs.
    let lowered = this.lowered.forms[form];
    if (!lowered) {
      const { graph, layers } = lowerSequential(net, { integer: form === 'integer' });
      const optimized = await optimizeGraph(graph);
      lowered = this.lowered.forms[form] = { graph: optimized, layers, session: new Session(optimized) };
    }
    return lowered;
  }

  /** The layer stack of a model trained here; imported graphs have none. */
  get net(): Sequential {
    if (!this.sequential) throw new ArgumentError('model', 'an imported graph', 'a model trained with faster-cnn (a Sequential of layers) for this operation');
    return this.sequential;
  }

  /** The model's inputs and outputs, in the source's order, with their dtypes and shapes (named sizes are bound per call). */
  get inputs(): ValueInfo[] {
    return this.graph ? this.graph.inputs : sequentialIo(this.net).inputs;
  }

  get outputs(): ValueInfo[] {
    return this.graph ? this.graph.outputs : sequentialIo(this.net).outputs;
  }

  get quantized(): boolean {
    return this.sequential ? isQuantized(this.sequential) : Boolean(this.meta.activationBits);
  }

  /**
   * Runs the model: `feeds` maps each input name to { data, shape, dtype? } (a one-input model
   * also takes the tensor alone); resolves to every output by name, in the source's layout.
   */
  async run(feeds: Record<string, Feed> | Feed, opts: PredictOptions = {}): Promise<Record<string, IrTensor>> {
    const trained = this.graph ? null : await this.lower(opts.activationBits === 0 ? 'float' : 'integer');
    const session = trained?.session ?? this.session!, inputs = session.inputs;
    const single = feeds && typeof feeds === 'object' && 'data' in feeds && 'shape' in feeds && ArrayBuffer.isView((feeds as Feed).data);
    if (single && inputs.length !== 1) throw new ArgumentError('feeds', feeds, `an object mapping the model's ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}) to tensors`);
    const named = single ? { [inputs[0].name]: feeds as Feed } : (feeds as Record<string, Feed>);
    const typed: Record<string, IrTensor> = {};
    for (const [k, v] of Object.entries(named ?? {})) typed[k] = { data: v?.data, shape: v?.shape, dtype: v?.dtype ?? dtypeOf(v?.data) } as IrTensor;
    const bits = opts.activationBits ?? this.meta.activationBits;
    if (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= 8)) throw new ArgumentError('activationBits', bits, 'an integer 0..8 (0: float32)');
    if (trained && opts.activationBits) throw new ArgumentError('activationBits', bits, '0 (float32) or absent for a network trained here: its training fixed its widths');
    if (opts.kernel !== undefined && !['auto', 'pcilt', 'direct'].includes(opts.kernel)) throw new ArgumentError('kernel', opts.kernel, "'auto', 'pcilt' or 'direct'");
    const choices = opts.profile ? new Map<string, LayerChoice>() : undefined;
    const timings: NodeTiming[] | undefined = opts.profile ? [] : undefined;
    const on = { kernel: opts.kernel, backend: opts.backend, choices };
    let quant: QuantOptions | undefined;
    if (trained) quant = bits === 0 || !Object.keys(trained.layers).length ? undefined : { layers: trained.layers, ...on };
    else if (bits) {
      // Per-layer widths and bias corrections were calibrated for the stored width; another width asked for at run time applies to every layer.
      const stored = bits === this.meta.activationBits;
      quant = { bits, ranges: this.meta.ranges, ...(stored ? { biasCorrection: this.meta.biasCorrection, layers: this.meta.layers } : {}), ...on };
    }
    // 'auto' predicts each layer's kernel from this machine's cost model (calibrated on first use, then kept).
    if (quant && (opts.kernel ?? 'auto') === 'auto' && opts.backend !== 'webgpu') await ensureCostModel().catch(() => null);
    const out = await session.run(typed, { threads: opts.threads, profile: timings, keep: opts.keep, quant, backend: opts.backend === 'webgpu' ? 'webgpu' : undefined, gpu: opts.gpu });
    if (opts.profile && timings) {
      for (const t of timings) {
        const c = choices?.get(t.node);
        opts.profile.push(c ? { ...t, ...c, kernel: c.kernel ?? t.kernel } : t);
      }
    }
    return out;
  }

  /**
   * One input to one output. Trained models: pixels in [0, 1], e.g. [N, 1, 28, 28] ->
   * log-probabilities [N, 10]. Imported graphs: the input in the source model's own layout (NHWC
   * for TF.js models, NCHW for ONNX ones) -> the output.
   */
  async predict(x: Tensor, opts: PredictOptions = {}): Promise<Tensor> {
    const { inputs, outputs } = this;
    if (inputs.length !== 1 || outputs.length !== 1) {
      throw new ArgumentError('model', `${inputs.length} inputs and ${outputs.length} outputs`, 'one input and one output for predict(); use run(feeds) for this model');
    }
    if (!(x?.data instanceof Float32Array)) throw new ArgumentError('input', x?.shape ?? x, `a { data: Float32Array, shape } tensor for input ${inputs[0].name}`);
    const y = (await this.run({ [inputs[0].name]: x }, opts))[outputs[0].name];
    return { data: y.data as Float32Array, shape: y.shape };
  }

  /** The first input's shape for a batch of n, in its source layout (named sizes other than the batch from the preprocessing). */
  inputShape(n = 1): number[] {
    if (!this.graph) return [n, 1, 28, 28];
    const s = this.inputs[0].shape ?? [];
    const p = this.meta.preprocessing;
    const nhwc = p?.layout === 'nhwc';
    return s.map((d, i) => {
      if (i === 0) return n;
      if (typeof d === 'number' && d > 0) return d;
      const axis = nhwc ? ['', 'h', 'w', 'c'][i] : ['', 'c', 'h', 'w'][i];
      return axis === 'h' ? p?.height ?? 224 : axis === 'w' ? p?.width ?? 224 : p?.channels === 'gray' ? 1 : 3;
    });
  }

  /** Calibration or tuning inputs (one tensor or several, in the source layout) as feeds of the model's first input. */
  private feedsOf(inputs: Tensor | Tensor[]): Record<string, IrTensor>[] {
    return (Array.isArray(inputs) ? inputs : [inputs]).map((x) => ({ [this.inputs[0].name]: { dtype: 'float32' as const, shape: x?.shape, data: x?.data } as IrTensor }));
  }

  /**
   * Fixes an imported model's activation ranges (static quantization) from inputs in the source
   * layout: 'mse' (default) clips each layer input's range where its layers' quantized outputs come
   * closest to float and corrects each layer's mean output error; 'minmax' keeps the full range
   * the inputs reached (src/passes/calibrate.ts). `refit`: more inputs on which to refit the pointwise
   * layers' weights (every convolution's with `refitLayers: 'all'`) to their quantized inputs (src/passes/refit.ts);
   * the new weights join the graph's constants.
   */
  async calibrate(inputs: Tensor | Tensor[], opts: Omit<CalibrationOptions, 'refit'> & { refit?: Tensor | Tensor[] } = {}): Promise<void> {
    const bits = this.meta.activationBits;
    if (!this.graph || !bits) throw new ArgumentError('calibration', 'given', 'used together with activationBits');
    const feeds = this.feedsOf(inputs);
    const method = opts.method ?? 'mse';
    const refit = opts.refit === undefined ? undefined : this.feedsOf(opts.refit);
    const c = await calibrate(this.session!, feeds, bits, { ...opts, method, refit });
    // Refitted weights are new constants: a session made now knows them as such (their integer layouts are kept).
    if (c.refitted) this.graphSession = new Session(this.graph);
    this.meta.ranges = c.ranges;
    if (c.layers && Object.keys(c.layers).length) this.meta.layers = c.layers;
    else delete this.meta.layers;
    if (c.biasCorrection) this.meta.biasCorrection = c.biasCorrection;
    else delete this.meta.biasCorrection;
    this.meta.calibration = { method, inputs: feeds.length, ...(c.clips ? { clips: c.clips } : {}), ...(refit ? { refit: { inputs: refit.length, layers: c.refitted?.length ?? 0 } } : {}) };
  }

  /**
   * What a model does as it loads rather than in its first call: starts the worker threads its
   * layers run on (50-90 ms to spawn) and waits until they can take tasks; for a quantized model
   * also lowers a network trained here to its integer graph, and quantizes and lays out its
   * layers' constant weights (while the workers start).
   */
  async prepare(): Promise<void> {
    const workers = startWorkers();
    // The kernels its first call will predict (prepareLayers makes some of them ready) come from this machine's cost model.
    if (this.quantized) await ensureCostModel().catch(() => null);
    if (this.graph && this.quantized) await prepareLayers(this.graph, { bits: this.meta.activationBits, layers: this.meta.layers });
    else if (this.quantized) {
      // A network trained here runs as the integer graph it lowers to: made now, once.
      const lowered = await this.lower('integer');
      await prepareLayers(lowered.graph, { layers: lowered.layers });
    }
    await workers;
  }

  /**
   * Chooses each layer input's activation width (from `widths`) by measured speed and error against
   * the float model on `inputs` (src/passes/tune.ts), and keeps the fastest plan within the budget:
   * the model then runs it (its meta holds the widths, ranges and bias corrections; .fcnn keeps them).
   */
  async tune(inputs: Tensor | Tensor[], opts: TuneOptions = {}): Promise<TuneResult> {
    if (!this.graph) throw new ArgumentError('model', 'a network trained here', 'an imported model (its training fixed a trained network\'s widths)');
    const feeds = this.feedsOf(inputs);
    const r = await tune(this.session!, feeds, opts);
    Object.assign(this.meta, r.meta);
    this.meta.calibration = { method: 'mse', inputs: feeds.length };
    this.meta.tuned = { widths: r.chosen.widths, ms: r.chosen.ms, agreement: r.chosen.agreement, meanAbsDiff: r.chosen.meanAbsDiff, budget: opts.budget ?? 0.02 };
    return r;
  }
}

export async function loadModel(pathOrBytes: string | Uint8Array): Promise<Model> {
  // Node's file system is imported only for paths, so that the module also loads in browsers.
  const bytes = typeof pathOrBytes === 'string' ? new Uint8Array(await (await import('node:fs/promises')).readFile(pathOrBytes)) : pathOrBytes;
  const { model, graph, ir, meta } = decodeAny(bytes);
  // Version-2 files (the older graph form) are lowered to the runtime graph as they load.
  const g = ir ?? (graph ? lowerLegacy(graph) : null);
  if (meta.autoChoices) {
    // Where the wasm engine cannot run, there is nothing to choose between.
    const machine = await machineKey().catch(() => null);
    if (machine) restoreChoices(meta.autoChoices as SavedChoices, machine);
  }
  const m = new Model(model ?? null, meta, g);
  await m.prepare();
  return m;
}

export async function saveModel(model: Model | Sequential, path: string, meta: Record<string, unknown> = {}): Promise<void> {
  const m = model instanceof Model ? model : new Model(model, meta);
  // What 'auto' measured for layers on codes in this process (an imported model run before saving).
  const learned = m.graph && m.meta.activationBits && engineIfReady() ? saveChoices(await machineKey(), 'layer|') : undefined;
  const extra = learned && Object.keys(learned.choices).length ? { autoChoices: learned } : {};
  const bytes = m.graph ? encodeIr(m.graph, { ...m.meta, ...extra, ...meta }) : encodeModel(m.net, { ...m.meta, ...meta });
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
  /** How calibration chooses ranges: 'mse' (default) or 'minmax'; see Model.calibrate. */
  calibrationMethod?: CalibrationMethod;
  /** Calibration progress messages. */
  onProgress?: (message: string) => void;
  /** How `faster-cnn run` prepares images; defaults from the model's input. */
  preprocessing?: Partial<Preprocess>;
  /** Fixed sizes for named input dimensions, e.g. { input: [1, 3, 224, 224] }. */
  inputShapes?: Record<string, number[]>;
  /**
   * TF.js layers models: Keras layer classes their library registers itself, by class name, built
   * from ONNX operators, e.g. `{ MultiplyBeta: ({ inputs: [x], config, op, constant }) => op('Mul', [x, constant(config.beta as number)]) }`.
   */
  customLayers?: Record<string, CustomLayer>;
}

/**
 * Ranges a quantized ONNX model fixes itself: the output of each DequantizeLinear that reads a
 * QuantizeLinear (what the next layer reads), from that pair's scale and zero point.
 */
function ownRanges(g: Graph): Record<string, Range> {
  const ranges: Record<string, Range> = {};
  const quantizers = new Map(g.nodes.filter((n) => n.op === 'QuantizeLinear').map((n) => [n.outputs[0], n]));
  for (const n of g.nodes) {
    const q = n.op === 'DequantizeLinear' ? quantizers.get(n.inputs[0]) : undefined;
    if (!q) continue;
    const s = g.consts.get(q.inputs[1]), z = q.inputs[2] ? g.consts.get(q.inputs[2]) : undefined;
    if (!s || s.data.length !== 1 || (z && z.data.length !== 1)) continue;
    const scale = (s.data as Float32Array)[0], zero = z ? Number(z.data[0]) : 0;
    const [lo, hi] = z?.dtype === 'int8' ? [-128, 127] : [0, 255];
    ranges[n.outputs[0]] = [(lo - zero) * scale, (hi - zero) * scale];
  }
  return ranges;
}

/** Pins named dimensions of the inputs to the sizes given. */
function pinShapes(g: Graph, shapes: Record<string, number[]>): Graph {
  for (const name of Object.keys(shapes)) {
    const v = g.inputs.find((i) => i.name === name);
    const s = shapes[name];
    if (!v) throw new ArgumentError('inputShapes', name, `one of the model's inputs: ${g.inputs.map((i) => i.name).join(', ')}`);
    if (!Array.isArray(s) || (v.shape && s.length !== v.shape.length) || !s.every((d, i) => Number.isInteger(d) && d > 0 && (typeof v.shape?.[i] !== 'number' || v.shape[i] === d || (v.shape[i] as number) < 0))) {
      throw new ArgumentError(`inputShapes.${name}`, s, `positive sizes matching [${v.shape}]`);
    }
  }
  return { ...g, inputs: g.inputs.map((v) => (shapes[v.name] ? { ...v, shape: shapes[v.name] } : v)) };
}

/**
 * Imports an ONNX model (path or bytes), a TF.js model (model.json path, or a JS module that
 * exports one), or a .fcnn file, and returns the model loadModel would return for it once saved.
 */
export async function importModel(src: string | Uint8Array, opts: ImportOptions = {}): Promise<Model> {
  const bits = opts.activationBits;
  if (bits !== undefined && !(Number.isInteger(bits) && bits >= 1 && bits <= 8)) throw new ArgumentError('activationBits', bits, 'an integer 1..8');
  const custom = opts.customLayers;
  if (custom !== undefined && (typeof custom !== 'object' || custom === null || Array.isArray(custom) || !Object.values(custom).every((f) => typeof f === 'function'))) {
    throw new ArgumentError('customLayers', custom, 'an object mapping Keras class names to functions that build the layer');
  }
  const isFcnn = (b: Uint8Array) => b[0] === 0x46 && b[1] === 0x43 && b[2] === 0x4e && b[3] === 0x4e;
  let graph: Graph;
  let source: string;
  let layout: 'nchw' | 'nhwc' = 'nchw';
  let stored: Partial<Preprocess> | undefined;
  if (typeof src === 'string' && /\.(json|[cm]?js)$/i.test(src)) {
    const { readTfjs } = await import('../formats/tfjs.js');
    const artifacts = await readTfjs(src);
    if (Array.isArray((artifacts.modelTopology as { node?: unknown })?.node)) {
      if (custom) throw new ArgumentError('customLayers', Object.keys(custom), `absent for ${src}: a TF.js graph model, which has no Keras layers`);
      const { tfjsGraphToIr } = await import('../formats/tfjs-graph.js');
      graph = tfjsGraphToIr(artifacts);
    } else {
      const { tfjsLayersToIr } = await import('../formats/tfjs-layers.js');
      graph = tfjsLayersToIr(artifacts, custom);
    }
    source = 'tfjs';
    layout = 'nhwc';
  } else {
    if (custom) throw new ArgumentError('customLayers', Object.keys(custom), 'absent for a model that is not a TF.js layers model (model.json with Keras layers)');
    const bytes = typeof src === 'string' ? new Uint8Array(await (await import('node:fs/promises')).readFile(src)) : src;
    if (!(bytes instanceof Uint8Array)) throw new ArgumentError('src', src, 'a path (.onnx, model.json, .js, .fcnn) or the bytes of an ONNX or .fcnn model');
    if (isFcnn(bytes)) {
      // A saved import keeps its settings unless new ones are asked for.
      const m = await loadModel(bytes);
      if (!m.graph || (bits === undefined && opts.calibration === undefined && opts.preprocessing === undefined && !opts.inputShapes)) return m;
      graph = m.graph;
      source = String(m.meta.source ?? 'fcnn');
      stored = m.meta.preprocessing;
      layout = stored?.layout ?? 'nchw';
    } else {
      const { readOnnx } = await import('../formats/onnx/read-ir.js');
      graph = readOnnx(bytes);
      source = 'onnx';
    }
  }
  if (opts.inputShapes) graph = pinShapes(graph, opts.inputShapes);
  if (!stored) graph = await optimizeGraph(graph);
  const first = graph.inputs[0]?.shape ?? [];
  const dim = (i: number) => (typeof first[i] === 'number' && (first[i] as number) > 0 ? first[i] as number : undefined);
  const [h, w, c] = layout === 'nhwc' ? [dim(1), dim(2), dim(3)] : [dim(2), dim(3), dim(1)];
  const preprocessing = checkPreprocess({
    width: w ?? 224, height: h ?? 224, channels: c === 1 ? 'gray' : 'rgb', layout, ...stored, ...opts.preprocessing,
  });
  const model = new Model(null, { source, activationBits: bits, preprocessing }, graph);
  if (opts.calibration !== undefined) await model.calibrate(opts.calibration, { method: opts.calibrationMethod, onProgress: opts.onProgress });
  else if (bits === 8 && source === 'onnx') {
    // A quantized ONNX model's own scales and zero points: its 8-bit codes, reproduced exactly.
    const own = ownRanges(graph);
    if (Object.keys(own).length) model.meta.ranges = own;
  }
  await model.prepare();
  return model;
}

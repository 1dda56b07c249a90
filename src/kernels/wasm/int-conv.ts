import { ArgumentError } from '../../errors.js';
import { autoRun, knownWinner, lastAutoChoice, predictChoice, predictedWinner, type AutoChoice, type Candidate } from '../../backends/auto.js';
import { candidateAdder } from '../../backends/registry.js';
import { predict } from '../../backends/cost-model.js';
import { floatLayer, freezeWeights, prepareDirect, preparePcilt, wasmBackend, type ChannelCodes, type FloatLayer } from '../../backends/wasm/backend.js';
import { engineIfReady, engineUnavailableReason, stageF32, type Engine } from '../../backends/wasm/engine.js';
import { conv2dDirect, pciltConv2d } from '../../conv/conv2d.js';
import { INT32_MAX, convGeometry, type ConvGeometry } from '../../conv/geometry.js';
import type { DirectJob } from '../../backends/types.js';
import type { Graph, Node } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import { applyFusedActivation, fusedActivation, type FusedActivation } from '../../ops/conv.js';
import { roundEven } from '../../ops/unary.js';
import { attrFloat, attrInt, attrInts, registerKernel, type Inputs, type OpContext } from '../../ops/registry.js';
import { windowOf } from '../../ops/window.js';
import { releases } from '../../runtime/memory.js';
import { buildPcilt, type PciltTables } from '../../tables/pcilt.js';
import { copyOf, type Shape4, type WeightTensor } from '../../tensor.js';

/**
 * Convolutions and fully connected layers on activation codes (ctx.quant set): the input is
 * quantized to codes of `bits` bits, int8 per-channel weights multiply them exactly (table
 * look-ups or multiplication, whichever 'auto' measured faster), and the int32 sums are scaled
 * back to float with bias and activation. On the wasm engine all of it runs in wasm; elsewhere
 * step by step in JS around the chosen backend (the reference twin).
 */

/** [min, max] of the values a tensor took. */
export type Range = [number, number];

/** One layer's quantization, where it differs from the graph-wide setting. */
export interface LayerQuant {
  /** Activation bits of the layer's input codes (0: the layer runs in float32). */
  bits: number;
  /** Signed per-output-channel weight bits (2..8, default 8): integer weights within ±(2^(b-1) - 1). */
  weightBits?: number;
  /** The input range the codes cover (static); absent: QuantOptions.ranges, else measured per input. */
  range?: Range;
  /**
   * Non-uniform codes: the real value of each of the 2^bits codes (increasing, one of them 0). The
   * input is quantized to the nearest level and the layer runs on PCILT tables of w * level,
   * which cost what uniform tables cost; `range` is then unused.
   */
  levels?: number[];
  /**
   * A range per input channel (calibrated): channel c's codes take their own scale and zero point, and the
   * weights reading it absorb its scale (folded in before they are quantized to integers), so that the
   * kernels run as for one range. Uniform codes only; `range` is then unused.
   */
  channelRanges?: Range[];
  /**
   * The names of graph constants that replace the node's weight and bias when it runs on codes: calibration's
   * refit (src/passes/refit.ts) stores weights fitted to the layer's quantized inputs beside the float ones.
   */
  weight?: string;
  bias?: string;
}

/** What quantized execution needs from the caller. */
export interface QuantOptions {
  /** Activation bits of every Conv and Gemm input (0 or absent: only the layers in `layers` run on codes). */
  bits?: number;
  /** Static ranges by tensor name (calibration); a tensor without one is measured per input. */
  ranges?: Record<string, Range>;
  /** Per-layer settings by node name; they take precedence over `bits` and `ranges`. */
  layers?: Record<string, LayerQuant>;
  /** Per node: amounts subtracted from its output channels (bias correction, src/passes/calibrate.ts). */
  biasCorrection?: Record<string, ArrayLike<number>>;
  kernel?: 'auto' | 'pcilt' | 'direct';
  backend?: string;
  /** Filled with the kernel each layer ran (and, under 'auto', what each candidate measured). */
  choices?: Map<string, LayerChoice>;
}

/**
 * What a layer ran on codes: its kernel, what 'auto' measured (`saved`: it took the choice stored with
 * the model for this machine, so no timings here), its table size and multiply-adds.
 */
export interface LayerChoice {
  kernel?: string; candidates?: Record<string, number>; saved?: boolean; bits?: number; tableBytes?: number; macs?: number;
  /** The machine's cost model's ms per candidate, when it chose (see AutoChoice.predicted); `probing` while later calls still measure. */
  predicted?: Record<string, number>; probing?: boolean;
}

/** The settings a Conv or Gemm node runs with: bits 0 where it stays in float32. */
export function layerQuant(q: QuantOptions | undefined, node: Node): LayerQuant & { weightBits: number } {
  const l = q?.layers?.[node.name];
  return { bits: l?.bits ?? q?.bits ?? 0, weightBits: l?.weightBits ?? 8, range: l?.range ?? q?.ranges?.[node.inputs[0]], levels: l?.levels, channelRanges: l?.channelRanges };
}

/**
 * The names a node reads when it runs with `q`: its own inputs, or for a layer with refitted weights
 * (LayerQuant.weight / .bias) those constants in place of its weight and bias. Throws where they name no constant.
 */
export function layerInputs(q: QuantOptions | undefined, node: Node, consts: ReadonlyMap<string, Tensor>): string[] {
  const l = q?.layers?.[node.name];
  if (!l || (l.weight === undefined && l.bias === undefined)) return node.inputs;
  const names = [...node.inputs];
  for (const [k, key] of [[1, 'weight'], [2, 'bias']] as const) {
    const name = l[key];
    if (name === undefined) continue;
    if (consts.get(name)?.dtype !== 'float32') throw new ArgumentError(`quant.layers['${node.name}'].${key}`, name, 'the name of a float32 constant of the graph');
    names[k] = name;
  }
  return names;
}

/** Affine activation quantization with 0 exactly representable (padding and ReLU zeros stay exact). */
export function activationQuant(r: Range, bits: number): { scale: number; zero: number } {
  const L = (1 << bits) - 1;
  const lo = Math.min(r[0], 0), hi = Math.max(r[1], 0);
  const scale = hi > lo ? (hi - lo) / L : 1;
  return { scale, zero: Math.min(L, Math.max(0, Math.round(-lo / scale))) };
}

export function rangeOf(d: Float32Array): Range {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** A layer's weights as 8-bit integers, once per weight array (and its tables, once per bit width). */
export interface IntWeights {
  weight: { data: Int8Array; shape: [number, number, number, number] };
  scales: Float32Array;
  sums: Float64Array;
  /** The largest sum of |w| over one output channel: with codes up to L, sums stay within L times it. */
  maxAbsSum: number;
  tables: Map<number | string, PciltTables>;
}

const intWeights = new WeakMap<Float32Array, Map<number, IntWeights>>();

/**
 * A layer's integer weights at `bits` (symmetric per output channel, scale max |w| / (2^(bits-1) - 1)):
 * once per array and width where the weight is a constant (`cache`), else made for this call.
 */
export function weightsOf(w: Tensor, cache: boolean, bits: number): IntWeights {
  const data = w.data as Float32Array;
  let iw = cache ? intWeights.get(data)?.get(bits) : undefined;
  if (iw) return iw;
  const shape = (w.shape.length === 2 ? [w.shape[0], w.shape[1], 1, 1] : w.shape) as [number, number, number, number];
  const top = 2 ** (bits - 1) - 1;
  // Large layers in wasm (a first run quantizes every layer's weights: 5-9 ms in JS for a 400k-weight 1x1 layer).
  const e = engineIfReady();
  const { q, scales, sums, maxAbsSum } = e && data.length >= WASM_QUANT_MIN ? quantizePerChannelWasm(e, data, shape[0], top) : quantizePerChannel(data, shape[0], top);
  freezeWeights(q);
  iw = { weight: { data: q, shape }, scales, sums, maxAbsSum, tables: new Map() };
  if (cache) intWeights.set(data, (intWeights.get(data) ?? new Map()).set(bits, iw));
  return iw;
}

/** A layer's weights with its input channels' activation scales folded in (LayerQuant.channelRanges), and its codes' scales and zero points. */
interface ChannelWeights { w: IntWeights; codes: ChannelCodes; zeroSums: Float64Array }

const channelCache = new WeakMap<Float32Array, WeakMap<Range[], Map<string, ChannelWeights>>>();

/**
 * Weights for codes with a range per input channel: w[o][c][k] * scale_c (scale_c and zero_c those of
 * activationQuant(ranges[c], bits), scale_c in float32), quantized per output channel as weightsOf does; and
 * per output channel the sum of its integer weights times their channels' zero points. Once per weight array,
 * ranges array and widths where the weight is a constant.
 */
export function channelWeights(wt: Tensor, cache: boolean, ranges: Range[], bits: number, weightBits: number, groups: number): ChannelWeights {
  const data = wt.data as Float32Array, key = `${bits}|${weightBits}|${groups}`;
  const byRanges = cache ? channelCache.get(data) ?? new WeakMap<Range[], Map<string, ChannelWeights>>() : undefined;
  const known = byRanges?.get(ranges)?.get(key);
  if (known) return known;
  const shape = (wt.shape.length === 2 ? [wt.shape[0], wt.shape[1], 1, 1] : wt.shape) as [number, number, number, number];
  const [O, Cg, KH, KW] = shape, KK = KH * KW, Og = O / groups;
  if (ranges.length !== Cg * groups) throw new ArgumentError('channelRanges.length', ranges.length, `${Cg * groups} (the layer's input channels)`);
  const scales = new Float32Array(ranges.length), zeros = new Uint8Array(ranges.length);
  for (const [c, r] of ranges.entries()) {
    if (!Array.isArray(r) || !(r[0] <= r[1]) || !Number.isFinite(r[0]) || !Number.isFinite(r[1])) throw new ArgumentError(`channelRanges[${c}]`, r, 'a finite [min, max] with min <= max');
    const q = activationQuant(r, bits);
    scales[c] = q.scale;
    zeros[c] = q.zero;
  }
  const channel = (o: number, cg: number) => Math.floor(o / Og) * Cg + cg;
  // A channel whose range is only 0 reads as 0 (its codes clip there): its weights are left out, so that they
  // do not set the integer weights' scale for the channels that carry something (activationQuant's scale 1 would).
  const fold = Float32Array.from(ranges, (r, c) => (Math.min(r[0], 0) < Math.max(r[1], 0) ? scales[c] : 0));
  const folded = new Float32Array(data.length);
  for (let o = 0; o < O; o++) for (let cg = 0; cg < Cg; cg++) for (let k = 0; k < KK; k++) folded[(o * Cg + cg) * KK + k] = data[(o * Cg + cg) * KK + k] * fold[channel(o, cg)];
  const { q, scales: ws, sums, maxAbsSum } = quantizePerChannel(folded, O, 2 ** (weightBits - 1) - 1);
  freezeWeights(q);
  const zeroSums = new Float64Array(O);
  for (let o = 0; o < O; o++) for (let cg = 0; cg < Cg; cg++) for (let k = 0; k < KK; k++) zeroSums[o] += q[(o * Cg + cg) * KK + k] * zeros[channel(o, cg)];
  const made: ChannelWeights = { w: { weight: { data: q, shape }, scales: ws, sums, maxAbsSum, tables: new Map() }, codes: { scales, zeros }, zeroSums };
  if (byRanges) {
    channelCache.set(data, byRanges);
    byRanges.set(ranges, (byRanges.get(ranges) ?? new Map()).set(key, made));
  }
  return made;
}

/**
 * Quantizes the weights of every layer of `graph` that will run on codes and lays them out for the
 * default direct kernel, ahead of its first run (40 + 20 ms for MobileNetV2 at 8 bits), as they are
 * constants: what a model does while it loads rather than in its first call. Returns how many
 * layers it prepared.
 */
export async function prepareLayers(graph: Graph, q: QuantOptions): Promise<number> {
  // Large weight arrays are quantized in wasm: wait for the engine, where it can run.
  await engineUnavailableReason();
  let n = 0;
  for (const node of graph.nodes) {
    if (node.op !== 'Conv' && node.op !== 'Gemm') continue;
    const w = graph.consts.get(layerInputs(q, node, graph.consts)[1]);
    const { bits, weightBits, levels, channelRanges } = layerQuant(q, node);
    if (!bits || !takesCodes(node, w)) continue;
    const groups = node.op === 'Conv' ? attrInt(node, 'group', 1) : 1;
    const iw = channelRanges ? channelWeights(w!, true, channelRanges, bits, weightBits, groups).w : weightsOf(w!, true, weightBits);
    n++;
    if (levels || !engineIfReady() || iw.maxAbsSum * ((1 << bits) - 1) > INT32_MAX) continue;
    // The direct kernel's weight layout depends on the weights' shape and the groups, not on the input's size.
    const [O, Cg, KH, KW] = iw.weight.shape;
    const dil = node.op === 'Conv' ? attrInts(node, 'dilations', [1, 1])! : [1, 1];
    const g = convGeometry([1, Cg * groups, (KH - 1) * dil[0] + 1, (KW - 1) * dil[1] + 1], [O, Cg, KH, KW], { groups, dilation: [dil[0], dil[1]] });
    // A dense layer's work is known from its weights (at batch 1): the kernel its first call will take (saved
    // with the model, or predicted) gets its weights laid out or its tables and rows made now. (MNIST's 128 x
    // 3136 layer at 1 bit: 23 ms of its model's first call for its tables, against 0.8 ms a run; 6 ms at 4 bits
    // for the layout of a direct kernel other than the default.) A convolution's work depends on its input's
    // size: the default direct kernel's layout.
    const expected = node.op === 'Gemm' ? expectedKernel(iw, bits, convGeometry([1, Cg, 1, 1], [O, Cg, 1, 1]))?.replace(/-1t$/, '') : undefined;
    const kernel = expected?.startsWith('wasm-direct-') ? expected.slice('wasm-direct-'.length) : undefined;
    await prepareDirect({ input: new Uint8Array(0), weight: iw.weight.data, geometry: g, activationBits: bits, integer: true, kernel });
    if (expected === 'wasm-pcilt') await preparePcilt(tablesOf(iw, bits), 1);
  }
  return n;
}

/** The key under which 'auto' keeps a layer's choice on codes. */
function layerKey(g: ConvGeometry, bits: number, threads: number | undefined): string {
  return `layer|${Object.values(g).join(',')}|${bits}b|t${threads ?? 'default'}`;
}

/** The kernel a layer's first call on the wasm engine will run (at the default threads): the saved or measured choice, else the cost model's prediction. */
function expectedKernel(w: IntWeights, bits: number, g: ConvGeometry): string | undefined {
  const labels = layerCandidates(w.weight.data, () => tablesOf(w, bits), bits, g, undefined, { x: new Float32Array(0), quant: () => { throw new Error('not run'); } }, () => {}).map((c) => c.label);
  const predicted = predict(labels, g, bits, undefined);
  return knownWinner(layerKey(g, bits, undefined)) ?? (predicted ? predictedWinner(labels, predicted) : undefined);
}

/** From this many weights on, weightsOf quantizes in wasm. */
const WASM_QUANT_MIN = 1 << 14;

interface PerChannel { q: Int8Array; scales: Float32Array; sums: Float64Array; maxAbsSum: number }

/**
 * Symmetric per-output-channel integers of float weights [O][K]: scale max |w| / top (1 where all are
 * 0), q = clamp(round(w / scale), -top, top) in float64 with Math.round; the reference twin of the
 * wasm quantize_weights.
 */
export function quantizePerChannel(data: Float32Array, O: number, top: number): PerChannel {
  const K = data.length / O;
  const q = new Int8Array(data.length), scales = new Float32Array(O), sums = new Float64Array(O);
  let maxAbsSum = 0;
  for (let o = 0; o < O; o++) {
    let m = 0, abs = 0;
    for (let k = o * K; k < (o + 1) * K; k++) m = Math.max(m, Math.abs(data[k]));
    const s = m > 0 ? m / top : 1;
    scales[o] = s;
    for (let k = o * K; k < (o + 1) * K; k++) {
      sums[o] += q[k] = Math.max(-top, Math.min(top, Math.round(data[k] / s)));
      abs += Math.abs(q[k]);
    }
    maxAbsSum = Math.max(maxAbsSum, abs);
  }
  return { q, scales, sums, maxAbsSum };
}

/** quantizePerChannel in wasm (kernel quantize_weights): the same numbers, bit for bit. */
export function quantizePerChannelWasm(e: Engine, data: Float32Array, O: number, top: number): PerChannel {
  const K = data.length / O;
  const staged = stageF32(e, data);
  const dst = e.heap.alloc(data.length), scales = e.heap.alloc(O * 4), sums = e.heap.alloc(O * 8);
  try {
    const maxAbsSum = e.kernels.quantize_weights(staged.ptr, dst, O, K, top, scales, sums);
    return {
      q: copyOf(new Int8Array(e.memory.buffer, dst, data.length)),
      scales: copyOf(new Float32Array(e.memory.buffer, scales, O)),
      sums: copyOf(new Float64Array(e.memory.buffer, sums, O)),
      maxAbsSum,
    };
  } finally {
    staged.release();
    for (const p of [dst, scales, sums]) e.heap.release(p);
  }
}

/** Bit-serial tables of 4 activations per index (16 entries per table at every bit width). */
export function layerTables(weight: WeightTensor, bits: number): PciltTables {
  return buildPcilt(weight, { activationBits: bits, bitSerial: bits > 1, groupSize: 4 });
}

/** A layer's tables, built once per layer and width. */
function tablesOf(w: IntWeights, bits: number): PciltTables {
  let t = w.tables.get(bits);
  if (!t) {
    t = layerTables(w.weight, bits);
    w.tables.set(bits, t);
  }
  return t;
}

/** The activations the wasm store clamps to (none, ReLU, ReLU6); others are applied after. */
function storeClamp(a: FusedActivation): [number, number] | null {
  if (a.kind === 'none') return [-Infinity, Infinity];
  if (a.kind === 'relu') return [0, Infinity];
  if (a.kind === 'clip') return [a.min, a.max];
  return null;
}

/**
 * Scale-back of a layer's int32 sums: [k[O], c[O], lo, hi] (float32) with y = clamp(sum * k + c, lo, hi),
 * i.e. (sum - zero * sum(w)) * scale_x * scale_w + bias, as one multiply-add per output.
 */
export function requantRecord(w: { scales: Float32Array; sums: ArrayLike<number> }, scale: number, zero: number, bias: Float32Array | undefined, clamp: [number, number], correction?: ArrayLike<number>,
  zeroSums?: ArrayLike<number>): Float32Array {
  const O = w.scales.length;
  // A correction for another number of channels (a stale calibration) is not applied.
  if (correction?.length !== O) correction = undefined;
  const r = new Float32Array(2 * O + 2);
  for (let o = 0; o < O; o++) {
    const k = scale * w.scales[o];
    r[o] = k;
    // Codes with a zero point per input channel: sum_k w[o][k] * zero[channel of k] (zeroSums) instead of zero * sum_k w[o][k].
    r[O + o] = (bias ? bias[o] : 0) - (correction ? correction[o] : 0) - (zeroSums ? zeroSums[o] : zero * w.sums[o]) * k;
  }
  r[2 * O] = clamp[0];
  r[2 * O + 1] = clamp[1];
  return r;
}

/**
 * Whether a Conv or Gemm node with weight `w` is a layer that can run on codes: float32 weights of a
 * 2-d convolution, or x W^T (+ b) with alpha = beta = 1. Calibration and the QDQ writer ask this too.
 */
export function takesCodes(node: Node, w: Tensor | undefined): boolean {
  if (w?.dtype !== 'float32') return false;
  if (node.op === 'Conv') return w.shape.length === 4;
  return node.op === 'Gemm' && w.shape.length === 2 && attrInt(node, 'transA', 0) === 0 && attrInt(node, 'transB', 0) === 1
    && attrFloat(node, 'alpha', 1) === 1 && attrFloat(node, 'beta', 1) === 1;
}

/** Whether a node runs on codes now: quantization asked for it, float32 inputs of the ranks its layer reads. */
function quantizable(ins: Inputs, node: Node, ctx: OpContext): boolean {
  const [x, w, b] = ins;
  if (!ctx.quant || !layerQuant(ctx.quant, node).bits || x?.dtype !== 'float32' || (b && b.dtype !== 'float32') || !takesCodes(node, w)) return false;
  return node.op === 'Conv' ? x.shape.length === 4 : x.shape.length === 2 && (!b || b.data.length === w!.shape[0]);
}

async function runInteger(ins: Inputs, node: Node, ctx: OpContext): Promise<Tensor[]> {
  const q = ctx.quant!;
  const { bits, weightBits, range, levels, channelRanges } = layerQuant(q, node);
  const x = ins[0]!, bias = ins[2]?.data as Float32Array | undefined;
  const dense = node.op === 'Gemm';
  const groups = dense ? 1 : attrInt(node, 'group', 1);
  if (channelRanges && (levels || !Array.isArray(channelRanges) || channelRanges.length !== x.shape[1])) {
    throw new ArgumentError(`quant.layers['${node.name}'].channelRanges`, channelRanges?.length, `${x.shape[1]} ranges (one per input channel) and no levels`);
  }
  const constant = ctx.constant?.(ins[1]!) ?? false;
  const perChannel = channelRanges ? channelWeights(ins[1]!, constant, channelRanges, bits, weightBits, groups) : undefined;
  const w = perChannel?.w ?? weightsOf(ins[1]!, constant, weightBits);
  const L = (1 << bits) - 1;
  const act = fusedActivation(node), store = storeClamp(act), clamp = store ?? [-Infinity, Infinity];
  const correction = q.biasCorrection?.[node.name];
  const quant = (r: Range) => {
    // Per channel, the activations' scales are in the weights: the sums scale back by the weights' alone.
    if (perChannel) return { zero: 0, scale: 1, levels: L, requant: requantRecord(w, 1, 0, bias, clamp, correction, perChannel.zeroSums), channels: perChannel.codes };
    const { scale, zero } = activationQuant(r, bits);
    return { zero, scale: Math.fround(scale), levels: L, requant: requantRecord(w, Math.fround(scale), zero, bias, clamp, correction) };
  };
  const shape = (dense ? [x.shape[0], x.shape[1], 1, 1] : x.shape) as Shape4;
  const win = dense ? null : windowOf(node, x.shape, ins[1]!.shape.slice(2));
  const conv = {
    padding: (win ? [win.begin[0], win.begin[1], win.end[0], win.end[1]] : [0, 0, 0, 0]) as [number, number, number, number],
    stride: (win ? win.strides : [1, 1]) as [number, number], dilation: (win ? win.dilations : [1, 1]) as [number, number],
    groups, backend: q.backend, threads: ctx.threads,
  };
  const inWasm = wasmAsked(q.backend) && w.maxAbsSum * L <= INT32_MAX && (await engineUnavailableReason()) === null;
  const choice: LayerChoice = {};
  let y: { data: Float32Array; release?: () => void };
  if (levels) y = await levelLayer(w, bits, levels, { data: x.data as Float32Array, shape }, conv, bias, correction, store, q, choice);
  else if (inWasm) y = await wasmLayer(w, bits, convGeometry(shape, w.weight.shape, conv), { x: x.data as Float32Array, range: perChannel ? [0, 0] : range, quant, keep: store !== null }, q, ctx, choice);
  else y = { data: await jsLayer(w, bits, { data: x.data as Float32Array, shape }, conv, quant(perChannel ? [0, 0] : range ?? rangeOf(x.data as Float32Array)), q, choice) };
  if (y.release) releases.set(y.data, y.release);
  const O = w.weight.shape[0];
  choice.bits = bits;
  choice.macs = y.data.length * (w.weight.data.length / O);
  // Uniform look-ups ran on the layer's bit-serial tables (level layers report their own).
  if (!levels && choice.kernel?.includes('pcilt')) choice.tableBytes = tablesOf(w, bits).bytes;
  q.choices?.set(node.name, choice);
  if (!store) applyFusedActivation(act, y.data);
  return [{ dtype: 'float32', shape: dense ? [x.shape[0], O] : [x.shape[0], O, ...win!.out], data: y.data }];
}

/**
 * The whole layer in wasm: PCILT or direct as asked, or as 'auto' measures on the first call
 * (whose candidates' outputs are copies; later calls may keep theirs in wasm memory).
 */
async function wasmLayer(w: IntWeights, bits: number, g: ConvGeometry, layer: FloatLayer, q: QuantOptions, ctx: OpContext, choice: LayerChoice) {
  const tables = () => tablesOf(w, bits);
  if (q.kernel === 'direct' || q.kernel === 'pcilt') {
    choice.kernel = `wasm-${q.kernel}`;
    const none = new Uint8Array(0);
    return q.kernel === 'direct'
      ? floatLayer('direct', { input: none, weight: w.weight.data, geometry: g, activationBits: bits, integer: true, threads: ctx.threads }, layer)
      : floatLayer('pcilt', { input: none, tables: tables(), geometry: g, integer: true, threads: ctx.threads }, layer);
  }
  // The candidates return their output's data, as 'auto' compares them; the latest run's whole
  // result (with its release, when kept) is `last`.
  let last: LayerRun | undefined;
  const candidates = (l: FloatLayer) => layerCandidates(w.weight.data, tables, bits, g, ctx.threads, l, (r) => (last = r));
  const key = layerKey(g, bits, ctx.threads);
  const all = candidates(layer);
  const labels = all.map((c) => c.label);
  const known = knownWinner(key) ?? predictChoice(key, labels, predict(labels, g, bits, ctx.threads));
  const pick = known ? all.find((c) => c.label === known) : undefined;
  if (pick) await pick.run();
  else await autoRun(key, candidates({ ...layer, keep: false }));
  noteAuto(choice, lastAutoChoice());
  return last!;
}

type LayerRun = Awaited<ReturnType<typeof floatLayer>>;

/**
 * The ways 'auto' may run a layer on codes (each on every core and, for small layers, on one):
 * direct first (on a tie 'auto' keeps the first listed, and direct needs no tables), look-ups,
 * the other direct kernels. Each hands its whole result to `done`.
 */
export function layerCandidates(weight: Int8Array, tables: () => PciltTables, bits: number, g: ConvGeometry, threads: number | undefined, l: FloatLayer, done: (r: LayerRun) => void): Candidate[] {
  const none = new Uint8Array(0);
  const found: Candidate[] = [];
  const add = candidateAdder(found, g, threads);
  const direct = async (t: number | undefined, kernel?: string) => {
    const r = await floatLayer('direct', { input: none, weight, geometry: g, activationBits: bits, integer: true, threads: t, kernel }, l);
    done(r);
    return r.data;
  };
  add('wasm-direct', (t) => direct(t));
  add('wasm-pcilt', async (t) => {
    const r = await floatLayer('pcilt', { input: none, tables: tables(), geometry: g, integer: true, threads: t }, l);
    done(r);
    return r.data;
  });
  for (const k of wasmBackend.directKernels!({ input: none, weight, geometry: g, activationBits: bits, integer: true }).slice(1)) add(`wasm-direct-${k}`, (t) => direct(t, k));
  return found;
}

/** A layer's choice as 'auto' made it: the winner, what each candidate measured or was predicted to take, or that it was saved with the model. */
function noteAuto(choice: LayerChoice, auto: AutoChoice | undefined): void {
  choice.kernel = auto?.winner;
  if (auto && Object.keys(auto.ms).length) choice.candidates = auto.ms;
  if (auto?.restored) choice.saved = true;
  if (auto?.predicted) { choice.predicted = auto.predicted; choice.probing = auto.probing; }
}

/** The reference twin: codes, padding and scale-back in JS around conv2dDirect / pciltConv2d on any backend. */
async function jsLayer(w: IntWeights, bits: number, x: { data: Float32Array; shape: Shape4 }, conv: { padding: [number, number, number, number]; stride: [number, number]; dilation: [number, number]; groups: number; backend?: string; threads?: number },
  q: { zero: number; scale: number; levels: number; requant: Float32Array; channels?: ChannelCodes }, opts: QuantOptions, choice: LayerChoice): Promise<Float32Array> {
  const { levels: L } = q;
  const [, C, H, W] = x.shape, plane = H * W;
  // One scale and zero point, or one per channel.
  const scales = q.channels?.scales ?? [q.scale], zeros = q.channels?.zeros ?? [q.zero], per = q.channels ? C : 1;
  const codes = new Uint8Array(x.data.length);
  const xd = x.data;
  for (let i = 0; i < codes.length; i++) {
    const c = per === 1 ? 0 : Math.floor(i / plane) % per;
    // As ONNX QuantizeLinear: the float32 quotient rounded half to even, plus the zero point.
    const t = roundEven(Math.fround(xd[i] / scales[c])) + zeros[c];
    codes[i] = t < 0 ? 0 : t > L ? L : t;
  }
  let shape = x.shape;
  let data: Uint8Array = codes;
  let padding = conv.padding;
  if (Array.prototype.some.call(zeros, (z: number) => z !== 0) && padding.some((p) => p > 0)) {
    // Padding must read as real 0, which is each channel's zero code: pad explicitly.
    data = padCodes(codes, shape, padding, q.channels?.zeros ?? q.zero);
    shape = [shape[0], shape[1], shape[2] + padding[0] + padding[2], shape[3] + padding[1] + padding[3]];
    padding = [0, 0, 0, 0];
  }
  const input = { data, shape };
  let acc;
  if (opts.kernel === 'direct') {
    acc = await conv2dDirect(input, w.weight, { ...conv, padding, activationBits: bits });
    choice.kernel = 'direct';
  } else {
    acc = await pciltConv2d(input, tablesOf(w, bits), { ...conv, padding, backend: opts.kernel === 'pcilt' && !opts.backend ? 'wasm' : opts.backend });
    noteAuto(choice, opts.kernel === 'pcilt' ? undefined : lastAutoChoice());
    choice.kernel ??= 'pcilt';
  }
  return scaleBack(acc, q.requant);
}

/** Integer levels reach at most this magnitude: with int8 weights and 4 activations an index, table entries stay within int16. */
const LEVEL_TOP = 64;

/** Whether a layer may run on the wasm engine for this backend option (none, 'auto' or 'wasm'). */
function wasmAsked(backend: string | undefined): boolean {
  return backend === undefined || backend === 'auto' || backend === 'wasm';
}

/** sum_j |steps[j]|: how far apart the lowest and highest additive levels lie. */
function spanOf(steps: number[]): number {
  return steps.reduce((a, v) => a + Math.abs(v), 0);
}

/** The code of each value's nearest level: codeOfRank[r], r the number of the sorted midpoints below it (ties to the lower level). */
function nearestCodes(x: Float32Array, mids: ArrayLike<number>, codeOfRank: ArrayLike<number>): Uint8Array {
  const codes = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let r = 0;
    while (r < mids.length && x[i] > mids[r]) r++;
    codes[i] = codeOfRank[r];
  }
  return codes;
}

/**
 * Tables of fn(w, code) for a layer on levels, built once per layer and key. Indices of at most 4 bits (16
 * entries a table): wider ones (256 entries at 2 bits) measured slower, the tables outgrowing the caches.
 */
function levelTables(w: IntWeights, key: string, bits: number, fn: (w: number, c: number) => number, choice: LayerChoice): PciltTables {
  let t = w.tables.get(key);
  if (!t) w.tables.set(key, (t = buildPcilt(w.weight, { activationBits: bits, fn, groupSize: Math.max(1, Math.floor(4 / bits)) })));
  choice.tableBytes = t.bytes;
  return t;
}

/** sum_j bit_j(c) * weights[j]. */
function additive(c: number, weights: number[]): number {
  let v = 0;
  for (let j = 0; j < weights.length; j++) if ((c >> j) & 1) v += weights[j];
  return v;
}

/**
 * A layer's levels as integers in steps of `step` (distinct, 0 kept exactly). Additive levels,
 * levels[c] = levels[0] + sum_j bit_j(c) * (levels[2^j] - levels[0]) (within float rounding), stay
 * additive: `planeWeights` are the integers of levels[2^j] - levels[0], and every integer level is
 * levels[0]'s plus its code's plane weights; their span is at most 2^(bits + 2) - 1, so that the direct
 * kernel reads them as codes two bits wider than the layer's (uniform codes are the plane weights
 * 4 * 2^j). Other levels are rounded one by one on a grid of max |level| / 64 (nudged apart where
 * rounding merges two).
 */
export function integerLevels(levels: number[], bits: number): { ints: number[]; step: number; planeWeights?: number[] } {
  const n = 1 << bits;
  if (!Array.isArray(levels) || levels.length !== n || !levels.every((v) => Number.isFinite(v)) || new Set(levels).size !== n || !levels.includes(0)) {
    throw new ArgumentError('levels', levels, `${n} distinct finite numbers, one of them 0`);
  }
  const top = Math.max(...levels.map(Math.abs)), step = top / LEVEL_TOP;
  const steps = Array.from({ length: bits }, (_, j) => levels[1 << j] - levels[0]);
  if (levels.every((v, c) => Math.abs(levels[0] + additive(c, steps) - v) <= 1e-6 * top)) {
    const limit = 2 ** (bits + 2) - 1;
    let unit = spanOf(steps) / limit, planeWeights = steps.map((v) => Math.round(v / unit));
    // Rounding may add up past the limit: a slightly coarser grid then.
    for (let k = 0; k < 4 && spanOf(planeWeights) > limit; k++) {
      unit *= spanOf(planeWeights) / limit;
      planeWeights = steps.map((v) => Math.round(v / unit));
    }
    // The level 0 stays exactly 0: levels[0]'s integer is minus the zero code's plane weights.
    const base = -additive(levels.indexOf(0), planeWeights);
    const ints = levels.map((_, c) => base + additive(c, planeWeights));
    if (new Set(ints).size === n && spanOf(planeWeights) <= limit) return { ints, step: unit, planeWeights };
  }
  const order = levels.map((_, c) => c).sort((a, b) => levels[a] - levels[b]);
  const ints = levels.map((v) => Math.round(v / step));
  for (let k = 1; k < n; k++) if (ints[order[k]] <= ints[order[k - 1]]) ints[order[k]] = ints[order[k - 1]] + 1;
  return { ints, step };
}

/**
 * A layer on non-uniform codes. Code 0 is the level 0 (so padding reads real 0), the other codes
 * the other levels in increasing order; tables hold w * level. On the wasm engine the nearest-level
 * codes go in as floats (x = code, scale 1) and the fused layer does the rest: look-ups, scale-back
 * and the store's clamp, as for uniform codes. Elsewhere, or with kernel 'direct' (the products multiplied out:
 * the reference), the steps run in JS around pciltConv2d / conv2dDirect.
 */
async function levelLayer(w: IntWeights, bits: number, levels: number[], x: { data: Float32Array; shape: Shape4 },
  conv: { padding: [number, number, number, number]; stride: [number, number]; dilation: [number, number]; groups: number; backend?: string; threads?: number },
  bias: Float32Array | undefined, correction: ArrayLike<number> | undefined, store: [number, number] | null, opts: QuantOptions, choice: LayerChoice,
): Promise<{ data: Float32Array; release?: () => void }> {
  const levelInts = integerLevels(levels, bits), { step, planeWeights } = levelInts;
  if (planeWeights) return additiveLayer(w, bits, levelInts.ints, step, planeWeights, x, conv, bias, correction, store, opts, choice);
  // Codes here are the layer's own: 0 for the level 0, then the others in increasing order.
  const ints = [...levelInts.ints].sort((a, b) => a - b);
  const zero = ints.indexOf(0);
  const order = [zero, ...ints.map((_, i) => i).filter((i) => i !== zero)];
  const codeOf = new Uint8Array(ints.length);
  order.forEach((i, c) => (codeOf[i] = c));
  // Nearest level: the midpoints between levels split the line.
  const mids = ints.slice(1).map((v, i) => ((v + ints[i]) / 2) * step);
  const codes = nearestCodes(x.data, mids, codeOf);
  const fn = (wv: number, c: number) => wv * ints[order[c]];
  const tables = () => levelTables(w, `levels:${ints.join(',')}`, bits, fn, choice);
  const requant = requantRecord(w, step, 0, bias, store ?? [-Infinity, Infinity], correction);
  const onWasm = opts.kernel !== 'direct' && wasmAsked(opts.backend)
    && w.maxAbsSum * Math.max(...ints.map(Math.abs)) <= INT32_MAX && (await engineUnavailableReason()) === null;
  if (onWasm && wasmBackend.supportsPcilt!({ tables: tables() } as Parameters<NonNullable<typeof wasmBackend.supportsPcilt>>[0]) === null) {
    choice.kernel = 'wasm-pcilt-levels';
    const L = (1 << bits) - 1;
    const g = convGeometry(x.shape, w.weight.shape, conv);
    // Kept in wasm memory where the store applies the whole activation (as for uniform codes).
    return floatLayer('pcilt', { input: new Uint8Array(0), tables: tables(), geometry: g, integer: true, threads: conv.threads },
      { x: Float32Array.from(codes), range: [0, L], quant: () => ({ scale: 1, zero: 0, levels: L, requant }), keep: store !== null });
  }
  let acc;
  if (opts.kernel === 'direct') {
    acc = await conv2dDirect({ data: codes, shape: x.shape }, w.weight, { ...conv, activationBits: bits, fn });
    choice.kernel = 'direct-levels';
  } else {
    acc = await pciltConv2d({ data: codes, shape: x.shape }, tables(), { ...conv, backend: opts.backend });
    choice.kernel = 'pcilt-levels';
  }
  return { data: scaleBack(acc, requant) };
}

/** Per layer's weights, kernel asked for and additive levels: the wasm candidate that was picked. */
const additiveChoices = new WeakMap<IntWeights, Map<string, string>>();

/**
 * A layer on additive levels (integerLevels' planeWeights): code c stands for ints[c] =
 * ints[0] + sum_j bit_j(c) * planeWeights[j], in steps of `step`. On the wasm engine, up to 4 bits, the
 * layer's own bit-serial tables run it at the speed of uniform codes: plane j's sums are weighted by
 * planeWeights[j] instead of 2^j, ints[0] is the zero point, and the input is quantized to its nearest
 * level in wasm. The direct kernel runs the same levels as bytes (each code's level above code 0's);
 * unless the kernel is given, the layer's first call measures them (on one thread too where the layer is
 * small) and it keeps the fastest. Elsewhere, or with kernel 'direct' (the reference: each weight multiplied by its
 * code's level above code 0's), nearest-level codes are found in JS.
 */
async function additiveLayer(w: IntWeights, bits: number, ints: number[], step: number, planeWeights: number[], x: { data: Float32Array; shape: Shape4 },
  conv: { padding: [number, number, number, number]; stride: [number, number]; dilation: [number, number]; groups: number; backend?: string; threads?: number },
  bias: Float32Array | undefined, correction: ArrayLike<number> | undefined, store: [number, number] | null, opts: QuantOptions, choice: LayerChoice,
): Promise<{ data: Float32Array; release?: () => void }> {
  const zeroCode = ints.indexOf(0), base = ints[0];
  const order = ints.map((_, c) => c).sort((a, b) => ints[a] - ints[b]);
  // A value's code: that of the level after the midpoints below it (x > mid in float32, ties to the lower level).
  const mids = Float32Array.from(order.slice(1), (c, k) => ((ints[order[k]] + ints[c]) / 2) * step);
  const requant = requantRecord(w, step, -base, bias, store ?? [-Infinity, Infinity], correction);
  const tables = tablesOf(w, bits);
  const span = spanOf(planeWeights);
  const onWasm = opts.kernel !== 'direct' && bits <= 4 && wasmAsked(opts.backend)
    && w.maxAbsSum * span <= INT32_MAX && (await engineUnavailableReason()) === null;
  if (onWasm && wasmBackend.supportsPcilt!({ tables } as Parameters<NonNullable<typeof wasmBackend.supportsPcilt>>[0]) === null) {
    const g = convGeometry(x.shape, w.weight.shape, conv), none = new Uint8Array(0);
    /** The float layer whose input bytes are byte(c) for code c, the border byte(zeroCode). */
    const layer = (byte: (c: number) => number, levels: number): FloatLayer => {
      const codes = new Uint8Array(16);
      order.forEach((c, r) => (codes[r] = byte(c)));
      return { x: x.data, range: [0, 1], quant: () => ({ scale: 1, zero: byte(zeroCode), levels, requant, nonUniform: { mids, codes } }), keep: store !== null };
    };
    const L = (1 << bits) - 1;
    // The direct kernel multiplies each code's level above code 0's as a byte, with the same zero point and
    // record as the look-ups (so the same sums and outputs): where every plane weight is positive, code 0's
    // level is the lowest.
    const direct: DirectJob = { input: none, weight: w.weight.data, geometry: g, activationBits: Math.ceil(Math.log2(span + 1)), integer: true };
    const directOk = opts.kernel !== 'pcilt' && planeWeights.every((v) => v > 0) && span <= 255 && w.maxAbsSum * span <= INT32_MAX && wasmBackend.supportsDirect!(direct) === null;
    // Each kernel on the caller's threads and, for a small layer, on one ('-1t').
    const candidates: { label: string; run: () => Promise<LayerRun> }[] = [];
    const add = candidateAdder<LayerRun>(candidates, g, conv.threads);
    add('wasm-pcilt-additive', (threads) => floatLayer('pcilt', { input: none, tables, geometry: g, integer: true, threads, planeWeights }, layer((c) => c, L)));
    if (directOk) add('wasm-direct-additive', (threads) => floatLayer('direct', { ...direct, threads }, layer((c) => ints[c] - base, span)));
    choice.tableBytes = tables.bytes;
    // Keyed by the levels and the kernel asked for (calibration asks for look-ups only).
    const key = `${opts.kernel ?? 'auto'}|${ints.join(',')}`, chosen = additiveChoices.get(w) ?? new Map<string, string>();
    additiveChoices.set(w, chosen);
    const pick = candidates.find((c) => c.label === chosen.get(key)) ?? (candidates.length === 1 ? candidates[0] : undefined);
    if (pick) {
      choice.kernel = pick.label;
      return pick.run();
    }
    // The first call runs each twice (weights laid out, tables built beforehand) and keeps the fastest. (The
    // cost model, asked for each as the uniform kernel it is, picked worse: 19.4 against 17.1 ms a MobileNetV2
    // call at 3 bits, docs/perf-notes.md section 38.)
    if (directOk) await prepareDirect(direct);
    const ms: Record<string, number> = {};
    let y: LayerRun | undefined;
    for (let round = 0; round < 2; round++) {
      for (const c of candidates) {
        y?.release?.();
        const t0 = performance.now();
        y = await c.run();
        ms[c.label] = Math.min(ms[c.label] ?? Infinity, performance.now() - t0);
      }
    }
    const best = candidates.reduce((a, c) => (ms[c.label] < ms[a.label] ? c : a));
    choice.candidates = ms;
    chosen.set(key, best.label);
    choice.kernel = best.label;
    return y!;
  }
  const codes = nearestCodes(x.data, mids, order);
  const [N, C, H, W] = x.shape, [pt, pl, pb, pr] = conv.padding;
  const input = { data: padCodes(codes, x.shape, conv.padding, zeroCode), shape: [N, C, H + pt + pb, W + pl + pr] as Shape4 };
  const unpadded = { ...conv, padding: [0, 0, 0, 0] as [number, number, number, number] };
  const fn = (wv: number, c: number) => wv * (ints[c] - base);
  let acc;
  if (opts.kernel === 'direct') {
    acc = await conv2dDirect(input, w.weight, { ...unpadded, activationBits: bits, fn });
    choice.kernel = 'direct-additive';
  } else {
    acc = await pciltConv2d(input, levelTables(w, `additive:${ints.join(',')}`, bits, fn, choice), { ...unpadded, backend: opts.backend });
    choice.kernel = 'pcilt-additive';
  }
  return { data: scaleBack(acc, requant) };
}

/** int32 sums [N, O, ...] scaled back by a requant record [k[O], c[O], lo, hi], in float32 step by step as the wasm stores compute it. */
function scaleBack(acc: { data: ArrayLike<number>; shape: number[] }, r: Float32Array): Float32Array {
  const O = (r.length - 2) / 2, N = acc.shape[0], P = acc.data.length / (N * O), ad = acc.data;
  const y = new Float32Array(ad.length), lo = r[2 * O], hi = r[2 * O + 1];
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const k = r[o], c = r[O + o], base = (n * O + o) * P;
      for (let i = base; i < base + P; i++) {
        const v = Math.fround(Math.fround(Math.fround(ad[i]) * k) + c);
        y[i] = v < lo ? lo : v > hi ? hi : v;
      }
    }
  }
  return y;
}

/** Codes padded with the zero code (which stands for real 0; one, or one per channel) on the spatial edges. */
function padCodes(c: Uint8Array, s: number[], p: number[], zero: number | ArrayLike<number>): Uint8Array {
  const [N, C, H, W] = s, PH = H + p[0] + p[2], PW = W + p[1] + p[3];
  const out = new Uint8Array(N * C * PH * PW);
  for (let i = 0; i < N * C; i++) {
    out.fill(typeof zero === 'number' ? zero : zero[i % C], i * PH * PW, (i + 1) * PH * PW);
    for (let h = 0; h < H; h++) out.set(c.subarray((i * H + h) * W, (i * H + h + 1) * W), (i * PH + h + p[0]) * PW + p[1]);
  }
  return out;
}

for (const op of ['Conv', 'Gemm']) {
  registerKernel({ op, backend: 'wasm', variant: 'int-pcilt-or-direct', supports: quantizable, run: runInteger });
}

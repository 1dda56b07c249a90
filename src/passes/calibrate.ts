import { ArgumentError } from '../errors.js';
import { topoSort, type Graph, type Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { activationQuant, takesCodes, type QuantOptions, type Range } from '../kernels/wasm/int-conv.js';
import type { Session } from '../runtime/session.js';
import { alone, isPointwise, refit } from './refit.js';

/**
 * Post-training calibration of activation ranges for layers on codes (Conv, Gemm).
 *
 * 'minmax' records the range each layer input took. 'mse' then tries clipped ranges (both ends
 * scaled by each of CLIPS) and keeps, per tensor, the one whose quantized layers' outputs are
 * closest (summed squared error, after the layer's fused activation, over every calibration input
 * and every layer reading the tensor) to their float outputs: clipping rare large values buys finer
 * steps for the common ones, which wins at 2-4 bits. Bias correction then measures each layer's
 * mean output error per channel (before its activation) with the chosen range and subtracts it.
 * Each layer is calibrated on its float inputs, alone, with the integer kernel itself (weights
 * quantized as at run time), so what is measured is what will run.
 */
export const CALIBRATION_METHODS = ['minmax', 'mse'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

/** The shares of the observed range tried by 'mse' (1 = min/max). */
export const CLIPS = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2, 0.16, 0.13, 0.1, 0.08, 0.06];

export interface CalibrationOptions {
  method?: CalibrationMethod;
  /**
   * 'fit': give each layer input (but the 8-bit edges) 2^bits non-uniform levels fitted to its values
   * (Lloyd-Max, 0 kept as a level), kept where its layers' outputs come closer to float than with
   * the uniform codes; PCILT runs them on tables of w * level. 'additive': the same with levels of
   * the form sum_j bit_j(code) * v_j (less the zero code's), fitted by least squares, which PCILT runs on
   * the layer's bit-serial tables at the speed of uniform codes. Default 'uniform'.
   */
  levels?: 'uniform' | 'fit' | 'additive';
  /**
   * A range per channel for each layer input (but the 8-bit edges): every channel's codes get their own scale
   * and zero point, which the weights reading them absorb (LayerQuant.channelRanges), so the kernels cost
   * what they cost with one range. 'mse' then scales all of a tensor's channel ranges by one clip share.
   * Uniform codes only. Default false: on the nsfwjs models below 8 bits it helped MobileNetV2-mid at 4, 3 and
   * 2 bits and MobileNetV2 at 3, and did worse on InceptionV3 (docs/models.md, docs/perf-notes.md section 64).
   */
  channels?: boolean;
  /** Subtract each layer's mean output error per channel (default: with 'mse'). */
  biasCorrection?: boolean;
  /**
   * Activation bits of the first layers (reading a graph input: pixels) and the last one (whose
   * output becomes the logits) where the rest run narrower: 8 by default; 0 keeps them at `bits`.
   */
  edgeBits?: number;
  /**
   * Inputs on which to refit the layers on uniform codes with one range (but the edges) to their quantized
   * inputs, in run order (src/passes/refit.ts): more than the ranges need (over a hundred on MobileNetV2;
   * few inputs fit them and nothing else). The refitted weights become graph constants the layers'
   * LayerQuant names. Default: no refit.
   */
  refit?: Record<string, Tensor>[];
  /**
   * The layers `refit` refits: 'pointwise' (the default; 1 x 1 convolutions without groups, stride or
   * padding, and dense layers) or 'all' (convolutions of any kernel, stride, padding and groups too, up to
   * 2048 inputs per output). On MobileNetV2, refitting its depthwise layers as well did worse on held-out
   * photos at 4 bits and better at 3 (docs/perf-notes.md section 70).
   */
  refitLayers?: 'pointwise' | 'all';
  threads?: number;
  onProgress?: (message: string) => void;
}

export interface Calibration {
  ranges: Record<string, Range>;
  /** Per node: the per-channel amount subtracted from its output (bias correction). */
  biasCorrection?: Record<string, number[]>;
  /** Per tensor: the share of its min/max range kept ('mse'). */
  clips?: Record<string, number>;
  /**
   * Per node: layers that run at other widths than `bits` (the edges), on non-uniform levels, with a range per
   * input channel, or on refitted weights (`weight` and `bias` name the constants `refit` added to the graph).
   */
  layers?: Record<string, CalibratedLayer>;
  /** The layers `refit` refitted. */
  refitted?: string[];
}

export interface CalibratedLayer { bits: number; levels?: number[]; channelRanges?: Range[]; weight?: string; bias?: string }

/** Conv and Gemm nodes with constant weights the integer kernel may run on codes, in run order. */
export function layersOnCodes(g: Graph): Node[] {
  return topoSort(g).filter((n) => takesCodes(n, g.consts.get(n.inputs[1])));
}

const data = (t: Tensor) => t.data as Float32Array;

export async function calibrate(session: Session, feeds: Record<string, Tensor>[], bits: number, opts: CalibrationOptions = {}): Promise<Calibration> {
  const method = opts.method ?? 'minmax';
  if (!CALIBRATION_METHODS.includes(method)) throw new ArgumentError('calibration method', method, CALIBRATION_METHODS.join(', '));
  if (opts.channels && opts.levels && opts.levels !== 'uniform') throw new ArgumentError('calibration channels', opts.channels, `false with levels '${opts.levels}' (a range per channel is for uniform codes)`);
  if (!feeds.length) throw new ArgumentError('calibration', feeds, 'at least one input');
  const g = session.graph, progress = opts.onProgress ?? (() => undefined);
  const observe = new Map<string, Range>();
  const nodes = layersOnCodes(g);
  if (opts.refit !== undefined && (!Array.isArray(opts.refit) || !opts.refit.length)) throw new ArgumentError('calibration refit', opts.refit, 'an array of at least one input');
  if (opts.refitLayers !== undefined && opts.refitLayers !== 'pointwise' && opts.refitLayers !== 'all') throw new ArgumentError('calibration refitLayers', opts.refitLayers, "'pointwise' or 'all'");
  if (method === 'minmax' && !opts.biasCorrection && !opts.channels && !opts.refit) {
    for (const [i, f] of feeds.entries()) {
      progress(`calibrating: ranges, input ${i + 1}/${feeds.length}`);
      await session.run(f, { observe, threads: opts.threads });
    }
    return { ranges: Object.fromEntries(observe), layers: edgeLayers(g, nodes, bits, opts.edgeBits ?? 8) };
  }
  // Every layer's float input on every calibration input.
  const inputs = new Map<string, Tensor[]>();
  for (const [i, f] of feeds.entries()) {
    progress(`calibrating: float run ${i + 1}/${feeds.length}`);
    const kept = await session.run(f, { observe, threads: opts.threads, keep: nodes.map((n) => n.inputs[0]) });
    for (const n of nodes) {
      const t = kept[n.inputs[0]] ?? f[n.inputs[0]];
      if (t) inputs.set(n.inputs[0], [...(inputs.get(n.inputs[0]) ?? []), t]);
    }
  }
  const ranges: Record<string, Range> = Object.fromEntries(observe);
  const clips: Record<string, number> = {};
  const layers: Record<string, CalibratedLayer> = edgeLayers(g, nodes, bits, opts.edgeBits ?? 8);
  // Per tensor (but the edges' inputs): each channel's range over every calibration input.
  const channelRanges: Record<string, Range[]> = {};
  if (opts.channels) {
    for (const n of nodes) {
      const t = n.inputs[0], xs = inputs.get(t);
      if (layers[n.name] || channelRanges[t] || !xs || xs[0].shape.length < 2) continue;
      channelRanges[t] = rangesPerChannel(xs);
    }
    // A tensor that an edge layer reads too keeps one range.
    for (const n of nodes) if (layers[n.name]) delete channelRanges[n.inputs[0]];
  }
  const scaled = (t: string, clip: number) => channelRanges[t].map(([lo, hi]) => [lo * clip, hi * clip] as Range);
  // A layer's own channel ranges once chosen: one array, so that its folded weights are made once (channelWeights).
  const quant = (n: Node, range: Range, levels = layers[n.name]?.levels, perChannel = layers[n.name]?.channelRanges): QuantOptions => {
    const b = layers[n.name]?.bits ?? bits;
    // Non-uniform layers run on look-ups (their multiplying twin is the slow reference).
    const layer = levels ? { bits: b, levels } : perChannel ? { bits: b, channelRanges: perChannel } : undefined;
    return { bits: b, ranges: { x: range }, kernel: levels ? 'pcilt' : 'direct', ...(layer ? { layers: { [n.name]: layer } } : {}) };
  };
  /** Summed squared error of a layer's outputs (after its fused activation) under each quantization, against float, over its inputs. */
  const outputError = async (n: Node, xs: Tensor[], candidates: QuantOptions[]): Promise<Float64Array> => {
    const s = alone(g, n, true), e = new Float64Array(candidates.length);
    for (const x of xs) {
      const want = data((await s.run({ x }, { threads: opts.threads })).y);
      for (const [c, quant] of candidates.entries()) {
        const got = data((await s.run({ x }, { threads: opts.threads, quant })).y);
        for (let i = 0; i < got.length; i++) e[c] += (got[i] - want[i]) ** 2;
      }
    }
    return e;
  };
  if (method === 'mse') {
    // error[tensor][clip]: summed over the layers reading it.
    const error = new Map<string, Float64Array>();
    for (const [k, n] of nodes.entries()) {
      const xs = inputs.get(n.inputs[0]), r = ranges[n.inputs[0]];
      if (!xs || !r) continue;
      progress(`calibrating: clipping ranges, layer ${k + 1}/${nodes.length}`);
      const e = await outputError(n, xs, CLIPS.map((clip) => quant(n, [r[0] * clip, r[1] * clip], undefined, channelRanges[n.inputs[0]] ? scaled(n.inputs[0], clip) : undefined)));
      const sum = error.get(n.inputs[0]);
      error.set(n.inputs[0], sum ? sum.map((v, c) => v + e[c]) : e);
    }
    for (const [t, e] of error) {
      let best = 0;
      for (let c = 1; c < CLIPS.length; c++) if (e[c] < e[best]) best = c;
      clips[t] = CLIPS[best];
      ranges[t] = [ranges[t][0] * CLIPS[best], ranges[t][1] * CLIPS[best]];
      if (channelRanges[t]) channelRanges[t] = scaled(t, CLIPS[best]);
    }
  }
  for (const n of nodes) if (channelRanges[n.inputs[0]]) layers[n.name] = { bits, channelRanges: channelRanges[n.inputs[0]] };
  if (opts.levels === 'fit' || opts.levels === 'additive') {
    const fitLevels = opts.levels === 'fit' ? lloydMax : additiveLevels;
    const tensors = [...new Set(nodes.filter((n) => !layers[n.name]).map((n) => n.inputs[0]))].filter((t) => inputs.has(t) && ranges[t]);
    for (const [k, t] of tensors.entries()) {
      progress(`calibrating: fitting levels, tensor ${k + 1}/${tensors.length}`);
      const readers = nodes.filter((n) => n.inputs[0] === t && !layers[n.name]);
      const fitted = fitLevels(inputs.get(t)!, ranges[t], bits);
      if (!fitted) continue;
      let uniform = 0, fit = 0;
      for (const n of readers) {
        const [a, b] = await outputError(n, inputs.get(t)!, [quant(n, ranges[t]), quant(n, ranges[t], fitted)]);
        uniform += a;
        fit += b;
      }
      if (fit < uniform) for (const n of readers) layers[n.name] = { bits, levels: fitted };
    }
  }
  const biasCorrection: Record<string, number[]> = {};
  if (!(opts.biasCorrection ?? method === 'mse')) return { ranges, clips, layers, ...(await refitted(biasCorrection)) };
  for (const [k, n] of nodes.entries()) {
    const xs = inputs.get(n.inputs[0]), r = ranges[n.inputs[0]];
    if (!xs || !r) continue;
    progress(`calibrating: bias correction, layer ${k + 1}/${nodes.length}`);
    const s = alone(g, n, false);
    let sums: Float64Array | undefined, count = 0;
    for (const x of xs) {
      const want = (await s.run({ x }, { threads: opts.threads })).y;
      const got = data((await s.run({ x }, { threads: opts.threads, quant: quant(n, r) })).y), w = data(want);
      const O = want.shape[1], inner = got.length / (want.shape[0] * O);
      sums ??= new Float64Array(O);
      for (let i = 0; i < got.length; i++) sums[Math.floor(i / inner) % O] += got[i] - w[i];
      count += want.shape[0] * inner;
    }
    if (sums) biasCorrection[n.name] = Array.from(sums, (v) => v / count);
  }
  return { ranges, clips, biasCorrection, layers, ...(await refitted(biasCorrection)) };

  /** With `refit`: the layers on one uniform range but the edges (pointwise ones unless refitLayers is 'all'), refitted in run order (their bias corrections dropped). */
  async function refitted(corrections: Record<string, number[]>): Promise<{ refitted?: string[] }> {
    if (!opts.refit) return {};
    const uniform = nodes.filter((n) => !layers[n.name] && !channelRanges[n.inputs[0]] && ranges[n.inputs[0]] && (opts.refitLayers === 'all' || isPointwise(g, n)));
    const done = await refit(g, opts.refit, uniform, { bits, ranges, layers, biasCorrection: corrections, kernel: 'direct' }, { threads: opts.threads, onProgress: progress });
    return { refitted: done };
  }
}

/**
 * The first layers (no layer on codes before them: they read the pixels, perhaps through a
 * transpose or a normalization) and the last layer on codes, at `edge` bits where that is wider
 * than `bits`.
 */
function edgeLayers(g: Graph, nodes: Node[], bits: number, edge: number): Record<string, { bits: number }> {
  if (!(edge > bits)) return {};
  const layers = new Set(nodes), after = new Set<string>();
  const edges: Node[] = [];
  for (const n of topoSort(g)) {
    const late = n.inputs.some((t) => after.has(t));
    if (layers.has(n) && !late) edges.push(n);
    if (late || layers.has(n)) for (const o of n.outputs) after.add(o);
  }
  if (nodes.length && !edges.includes(nodes[nodes.length - 1])) edges.push(nodes[nodes.length - 1]);
  return Object.fromEntries(edges.map((n) => [n.name, { bits: edge }]));
}

/** [min, max] of each channel (axis 1) over the tensors. */
function rangesPerChannel(tensors: Tensor[]): Range[] {
  const C = tensors[0].shape[1] as number;
  const r: Range[] = Array.from({ length: C }, () => [Infinity, -Infinity]);
  for (const t of tensors) {
    const d = t.data as Float32Array, inner = d.length / ((t.shape[0] as number) * C);
    for (let i = 0; i < d.length; i++) {
      const c = r[Math.floor(i / inner) % C], v = d[i];
      if (v < c[0]) c[0] = v;
      if (v > c[1]) c[1] = v;
    }
  }
  return r;
}

/** Every `stride`-th value of the tensors, sorted, so that at most about 200k are kept. */
function sortedSample(tensors: Tensor[]): Float64Array {
  const total = tensors.reduce((n, t) => n + t.data.length, 0);
  const stride = Math.max(1, Math.floor(total / 200_000));
  const sample: number[] = [];
  let i = 0;
  for (const t of tensors) for (const v of t.data as Float32Array) if (i++ % stride === 0) sample.push(v);
  return Float64Array.from(sample).sort();
}

/**
 * Additive levels for the values of a tensor: level(c) = sum_j (bit_j(c) - bit_j(z)) * v_j, z the
 * zero point of `range`'s uniform codes (whose level is exactly 0), starting from those codes
 * (v_j = 2^j * scale) and alternating nearest-level assignment with the least-squares v (as LQ-Nets
 * fits its basis); null where the values do not span two levels or the levels collapse.
 */
export function additiveLevels(tensors: Tensor[], range: Range, bits: number): number[] | null {
  const xs = sortedSample(tensors);
  const { scale, zero } = activationQuant(range, bits);
  const L = 1 << bits;
  if (!(scale > 0) || xs.length < L) return null;
  const f = (c: number, j: number) => ((c >> j) & 1) - ((zero >> j) & 1);
  const levelsOf = (v: number[]) => Array.from({ length: L }, (_, c) => v.reduce((a, vj, j) => a + f(c, j) * vj, 0));
  let v = Array.from({ length: bits }, (_, j) => 2 ** j * scale);
  for (let iter = 0; iter < 30; iter++) {
    const levels = levelsOf(v);
    const order = levels.map((_, c) => c).sort((a, b) => levels[a] - levels[b]);
    // Sorted values against sorted levels: each value's nearest level, by count and sum per code.
    const count = new Float64Array(L), sum = new Float64Array(L);
    let r = 0;
    for (const x of xs) {
      while (r + 1 < L && x > (levels[order[r]] + levels[order[r + 1]]) / 2) r++;
      count[order[r]]++;
      sum[order[r]] += x;
    }
    // Normal equations A v = b of sum_c count_c (f_c . v - mean_c)^2.
    const A = Array.from({ length: bits }, () => new Float64Array(bits + 1));
    for (let c = 0; c < L; c++) {
      for (let j = 0; j < bits; j++) {
        for (let k = 0; k < bits; k++) A[j][k] += count[c] * f(c, j) * f(c, k);
        A[j][bits] += sum[c] * f(c, j);
      }
    }
    const next = solve(A);
    if (!next || next.some((x) => !(Math.abs(x) > scale * 1e-3))) break;
    const moved = Math.max(...next.map((x, j) => Math.abs(x - v[j])));
    v = next;
    if (moved < scale * 1e-4) break;
  }
  const levels = levelsOf(v);
  levels[zero] = 0;
  return new Set(levels).size === L ? levels : null;
}

/** Solves the augmented system [A | b] by Gaussian elimination with partial pivoting; null where singular. */
function solve(m: Float64Array[]): number[] | null {
  const n = m.length;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (!(Math.abs(m[p][c]) > 1e-12)) return null;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const k = m[r][c] / m[c][c];
      for (let k2 = c; k2 <= n; k2++) m[r][k2] -= k * m[c][k2];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

/**
 * Lloyd-Max levels for the values of a tensor (a sample of them), 2^bits of them, one pinned at 0,
 * starting from the uniform codes of `range`; null where the values do not span two levels.
 */
export function lloydMax(tensors: Tensor[], range: Range, bits: number): number[] | null {
  const xs = sortedSample(tensors);
  const prefix = new Float64Array(xs.length + 1);
  for (let j = 0; j < xs.length; j++) prefix[j + 1] = prefix[j] + xs[j];
  const { scale, zero } = activationQuant(range, bits);
  const L = 1 << bits;
  let levels = Array.from({ length: L }, (_, c) => (c - zero) * scale);
  if (!(scale > 0) || xs.length < L) return null;
  /** First index with xs[index] > v. */
  const upper = (v: number) => {
    let lo = 0, hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= v) lo = mid + 1; else hi = mid;
    }
    return lo;
  };
  for (let iter = 0; iter < 30; iter++) {
    const next = levels.slice();
    let from = 0;
    for (let c = 0; c < L; c++) {
      const to = c === L - 1 ? xs.length : upper((levels[c] + levels[c + 1]) / 2);
      if (c !== zero && to > from) next[c] = (prefix[to] - prefix[from]) / (to - from);
      from = to;
    }
    // Keep them increasing (an empty or degenerate cell keeps its place).
    for (let c = 1; c < L; c++) if (!(next[c] > next[c - 1])) next[c] = next[c - 1] + scale * 1e-3;
    if (next.every((v, c) => Math.abs(v - levels[c]) < scale * 1e-4)) {
      levels = next;
      break;
    }
    levels = next;
  }
  levels[zero] = 0;
  return levels;
}

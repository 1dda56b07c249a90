import { autoRun, knownWinner, lastAutoChoice, type Candidate } from '../backends/auto.js';
import { candidateAdder } from '../backends/registry.js';
import { floatLayer, freezeWeights, wasmBackend, type FloatLayer } from '../backends/wasm/backend.js';
import { engineUnavailableReason } from '../backends/wasm/engine.js';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { INT32_MAX, convGeometry, type Conv2dOptions, type ConvGeometry } from '../conv/geometry.js';
import type { Shape4 } from '../tensor.js';
import { ArgumentError } from '../errors.js';
import { buildPcilt, type PciltTables } from '../tables/pcilt.js';
import { inferShapes, sizeOf, type Activation, type Graph, type GraphNode } from './graph.js';
import * as ops from './ops.js';
import type { Tensor } from './ops.js';

/** [min, max] of the values a tensor took. */
export type Range = [number, number];

export interface GraphRunOptions {
  /**
   * Quantize the input of every convolution and dense layer to codes of this many bits (1..8)
   * and run it on integers (PCILT or direct, as 'auto' measures); weights are 8-bit per channel.
   * Without it the graph runs in float32.
   */
  activationBits?: number;
  /** Static ranges per tensor name (from calibration); tensors without one are measured per input. */
  ranges?: Record<string, Range>;
  /** Integer kernel: 'auto' (default: PCILT or direct, whichever measured faster), 'pcilt' or 'direct'. */
  kernel?: 'auto' | 'pcilt' | 'direct';
  backend?: string;
  threads?: number;
  /** Filled with one entry per node, in run order. */
  profile?: NodeProfile[];
  /** Calibration: widened to the range every conv/dense input took. */
  observe?: Map<string, Range>;
}

export interface NodeProfile {
  node: string;
  op: string;
  ms: number;
  macs?: number;
  /** For integer layers: the kernel that ran and, under 'auto', what each candidate measured. */
  kernel?: string;
  candidates?: Record<string, number>;
}

/** A layer's weights as 8-bit integers, once per layer (and its tables, once per bit width). */
interface IntWeights {
  weight: { data: Int8Array; shape: [number, number, number, number] };
  scales: Float32Array;
  sums: Float64Array;
  /** The largest sum of |w| over one output channel: with codes up to L, sums stay within L times it. */
  maxAbsSum: number;
  tables: Map<number, PciltTables>;
}

/** Affine activation quantization with 0 exactly representable (padding and ReLU zeros stay exact). */
export function activationQuant(r: Range, bits: number): { scale: number; zero: number } {
  const L = (1 << bits) - 1;
  const lo = Math.min(r[0], 0), hi = Math.max(r[1], 0);
  const scale = hi > lo ? (hi - lo) / L : 1;
  return { scale, zero: Math.min(L, Math.max(0, Math.round(-lo / scale))) };
}

function rangeOf(d: Float32Array): Range {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * Runs a Graph. Float32 by default; with `activationBits` every convolution and dense layer reads
 * activation codes and computes exact int32 sums (table look-ups or multiplication), which are
 * then scaled back to float for the element-wise operations between them.
 */
export class GraphRunner {
  private readonly ints = new Map<string, IntWeights>();

  constructor(readonly graph: Graph) {
    inferShapes(graph);
  }

  async run(input: Tensor, opts: GraphRunOptions = {}): Promise<Tensor> {
    const g = this.graph;
    const bits = opts.activationBits;
    if (bits !== undefined && !(Number.isInteger(bits) && bits >= 1 && bits <= 8)) {
      throw new ArgumentError('activationBits', bits, 'an integer 1..8, or undefined for float32');
    }
    const shapes = inferShapes(g, input.shape);
    const values = new Map<string, Tensor>([[g.input.name, input]]);
    for (const [k, c] of g.consts) values.set(k, c);
    // Outputs of integer layers may stay in wasm memory until their last reader has run.
    const owned = new Map<Float32Array, () => void>();
    const drop = (t: string) => {
      const d = values.get(t)?.data as Float32Array;
      values.delete(t);
      // Reshape-like nodes pass the same array on: it is freed once no value holds it.
      const release = owned.get(d);
      if (release && ![...values.values()].some((v) => v.data === d)) {
        owned.delete(d);
        release();
      }
    };
    // Each value is dropped after its last reader, so memory stays near the widest layer.
    const lastUse = new Map<string, number>();
    g.nodes.forEach((n, i) => n.inputs.forEach((t) => lastUse.set(t, i)));
    try {
      for (let i = 0; i < g.nodes.length; i++) {
        const n = g.nodes[i];
        const t0 = performance.now();
        const ins = n.inputs.map((t) => values.get(t)!);
        const out = shapes.get(n.output)!;
        const prof: NodeProfile = { node: n.name, op: n.op, ms: 0 };
        if (opts.observe && (n.op === 'conv' || n.op === 'dense')) {
          const r = rangeOf(ins[0].data), was = opts.observe.get(n.inputs[0]);
          opts.observe.set(n.inputs[0], was ? [Math.min(was[0], r[0]), Math.max(was[1], r[1])] : r);
        }
        const y = bits && (n.op === 'conv' || n.op === 'dense')
          ? await this.integerLayer(n, ins, out, bits, opts, prof, owned)
          : await floatNode(n, ins, out, opts.threads);
        if (y.release) owned.set(y.data, y.release);
        values.set(n.output, { data: y.data, shape: y.shape });
        if (n.op === 'conv' || n.op === 'dense') prof.macs = sizeOf(out) * sizeOf(ins[1].shape.slice(1));
        prof.ms = performance.now() - t0;
        opts.profile?.push(prof);
        for (const t of n.inputs) if (lastUse.get(t) === i && !g.consts.has(t) && t !== g.output) drop(t);
      }
      const y = values.get(g.output)!;
      return owned.has(y.data as Float32Array) ? { data: y.data.slice(), shape: y.shape } : y;
    } finally {
      for (const release of owned.values()) release();
    }
  }

  private intWeights(n: GraphNode): IntWeights {
    let w = this.ints.get(n.name);
    if (w) return w;
    const wt = this.graph.consts.get(n.inputs[1])!;
    const shape = (wt.shape.length === 2 ? [wt.shape[0], wt.shape[1], 1, 1] : wt.shape) as [number, number, number, number];
    const O = shape[0], K = wt.data.length / O;
    const q = new Int8Array(wt.data.length), scales = new Float32Array(O), sums = new Float64Array(O);
    let maxAbsSum = 0;
    for (let o = 0; o < O; o++) {
      let m = 0, abs = 0;
      for (let k = o * K; k < (o + 1) * K; k++) m = Math.max(m, Math.abs(wt.data[k]));
      const s = m > 0 ? m / 127 : 1;
      scales[o] = s;
      for (let k = o * K; k < (o + 1) * K; k++) {
        sums[o] += q[k] = Math.round(wt.data[k] / s);
        abs += Math.abs(q[k]);
      }
      maxAbsSum = Math.max(maxAbsSum, abs);
    }
    freezeWeights(q);
    w = { weight: { data: q, shape }, scales, sums, maxAbsSum, tables: new Map() };
    this.ints.set(n.name, w);
    return w;
  }

  /**
   * quantize -> (pad with the zero code) -> int32 sums by look-ups or multiplication -> scale,
   * bias, activation. On the wasm engine all of it runs in wasm; elsewhere (backend 'js' or
   * 'webgpu', or no wasm) step by step in JS around the chosen backend: the reference twin.
   */
  private async integerLayer(n: GraphNode, ins: Tensor[], out: number[], bits: number, opts: GraphRunOptions, prof: NodeProfile,
    owned: Map<Float32Array, () => void>): Promise<Tensor> {
    const x = ins[0];
    const w = this.intWeights(n);
    const a = n.attrs;
    const dense = n.op === 'dense';
    const L = (1 << bits) - 1;
    const act = (a.act as Activation) ?? 'none';
    const bias = ins[2]?.data;
    const quant = (r: Range) => {
      const { scale, zero } = activationQuant(r, bits);
      return { zero, inv: Math.fround(1 / scale), levels: L, requant: requantRecord(w, scale, zero, bias, act) };
    };
    const shape = (dense ? [x.shape[0], x.shape[1], 1, 1] : x.shape) as Shape4;
    const conv = {
      padding: dense ? [0, 0, 0, 0] as [number, number, number, number] : a.pad as [number, number, number, number],
      stride: dense ? 1 : a.stride as [number, number], dilation: dense ? 1 : a.dilation as [number, number],
      groups: dense ? 1 : a.group as number, backend: opts.backend, threads: opts.threads,
    };
    const range = opts.ranges?.[n.inputs[0]];
    const inWasm = (opts.backend === undefined || opts.backend === 'auto' || opts.backend === 'wasm')
      && w.maxAbsSum * L <= INT32_MAX && (await engineUnavailableReason()) === null;
    let y: Float32Array;
    if (inWasm) {
      // Outputs stay in wasm memory unless an activation is still to be applied in JS.
      const r = await this.wasmLayer(w, bits, convGeometry(shape, w.weight.shape, conv), { x: x.data, range, quant, keep: act !== 'sigmoid' }, opts, prof);
      y = r.data;
      if (r.release) owned.set(y, r.release);
    } else {
      y = await this.jsLayer(w, bits, { data: x.data, shape }, conv, quant(range ?? rangeOf(x.data)), opts, prof);
    }
    if (act === 'sigmoid') ops.activate(y, act);
    return { data: y, shape: out };
  }

  /**
   * The whole layer in wasm: PCILT or direct as asked, or as 'auto' measures on the first call
   * (whose candidates' outputs are copies; later calls may keep theirs in wasm memory).
   */
  private async wasmLayer(w: IntWeights, bits: number, g: ConvGeometry, layer: FloatLayer, opts: GraphRunOptions, prof: NodeProfile) {
    const none = new Uint8Array(0);
    const pcilt = (threads: number | undefined, l: FloatLayer) =>
      floatLayer('pcilt', { input: none, tables: this.tables(w, bits), geometry: g, integer: true, threads }, l);
    const direct = (threads: number | undefined, l: FloatLayer, kernel?: string) =>
      floatLayer('direct', { input: none, weight: w.weight.data, geometry: g, activationBits: bits, integer: true, threads, kernel }, l);
    if (opts.kernel === 'direct' || opts.kernel === 'pcilt') {
      prof.kernel = `wasm-${opts.kernel}`;
      return opts.kernel === 'direct' ? direct(opts.threads, layer) : pcilt(opts.threads, layer);
    }
    // The candidates return their output's data, as 'auto' compares them; the latest run's whole
    // result (with its release, when kept) is `last`.
    let last: Awaited<ReturnType<typeof pcilt>> | undefined;
    const candidates = (l: FloatLayer) => {
      const found: Candidate[] = [];
      const add = candidateAdder(found, g, opts.threads);
      add('wasm-pcilt', async (t) => (last = await pcilt(t, l)).data);
      add('wasm-direct', async (t) => (last = await direct(t, l)).data);
      const job = { input: none, weight: w.weight.data, geometry: g, activationBits: bits, integer: true };
      for (const k of wasmBackend.directKernels!(job).slice(1)) add(`wasm-direct-${k}`, async (t) => (last = await direct(t, l, k)).data);
      return found;
    };
    const key = `layer|${Object.values(g).join(',')}|${bits}b|t${opts.threads ?? 'default'}`;
    const known = knownWinner(key);
    const pick = known ? candidates(layer).find((c) => c.label === known) : undefined;
    if (pick) await pick.run();
    else await autoRun(key, candidates({ ...layer, keep: false }));
    const choice = lastAutoChoice();
    prof.kernel = choice?.winner;
    if (choice && Object.keys(choice.ms).length) prof.candidates = choice.ms;
    return last!;
  }

  /** The reference twin: codes, padding and scale-back in JS around conv2dDirect / pciltConv2d on any backend. */
  private async jsLayer(w: IntWeights, bits: number, x: { data: Float32Array; shape: Shape4 }, conv: Conv2dOptions & { padding: [number, number, number, number] },
    q: { zero: number; inv: number; levels: number; requant: Float32Array }, opts: GraphRunOptions, prof: NodeProfile): Promise<Float32Array> {
    const { zero, inv, levels: L } = q;
    const codes = new Uint8Array(x.data.length);
    const xd = x.data;
    for (let i = 0; i < codes.length; i++) {
      // In float32, as the wasm quantizer computes; Uint8Array stores truncate, so + 0.5 rounds half up.
      const t = Math.fround(Math.fround(xd[i] * inv) + zero + 0.5);
      codes[i] = t < 0 ? 0 : t > L ? L : t;
    }
    let shape = x.shape;
    let data: Uint8Array = codes;
    let padding = conv.padding;
    if (zero !== 0 && padding.some((p) => p > 0)) {
      // Padding must read as real 0, which is code `zero`: pad explicitly.
      data = padCodes(codes, shape, padding, zero);
      shape = [shape[0], shape[1], shape[2] + padding[0] + padding[2], shape[3] + padding[1] + padding[3]];
      padding = [0, 0, 0, 0];
    }
    const input = { data, shape };
    let acc;
    if (opts.kernel === 'direct') {
      acc = await conv2dDirect(input, w.weight, { ...conv, padding, activationBits: bits });
      prof.kernel = 'direct';
    } else {
      acc = await pciltConv2d(input, this.tables(w, bits), { ...conv, padding, backend: opts.kernel === 'pcilt' && !opts.backend ? 'wasm' : opts.backend });
      const choice = opts.kernel === 'pcilt' ? undefined : lastAutoChoice();
      prof.kernel = choice?.winner ?? 'pcilt';
      if (choice && Object.keys(choice.ms).length) prof.candidates = choice.ms;
    }
    const O = w.weight.shape[0], N = acc.shape[0], P = acc.data.length / (N * O);
    const y = new Float32Array(acc.data.length);
    const r = q.requant, lo = r[2 * O], hi = r[2 * O + 1];
    const ad = acc.data;
    for (let b = 0; b < N; b++) {
      for (let o = 0; o < O; o++) {
        const k = r[o], c = r[O + o], base = (b * O + o) * P;
        for (let i = base; i < base + P; i++) {
          // In float32 step by step, as the wasm stores compute it.
          const v = Math.fround(Math.fround(Math.fround(ad[i]) * k) + c);
          y[i] = v < lo ? lo : v > hi ? hi : v;
        }
      }
    }
    return y;
  }

  /** Bit-serial tables of 4 activations per index (16 entries per table at every bit width), built once per layer and width. */
  private tables(w: IntWeights, bits: number): PciltTables {
    let t = w.tables.get(bits);
    if (!t) {
      t = buildPcilt(w.weight, { activationBits: bits, bitSerial: bits > 1, groupSize: 4 });
      w.tables.set(bits, t);
    }
    return t;
  }
}

/**
 * Scale-back of a layer's int32 sums: [k[O], c[O], lo, hi] (float32) with y = clamp(sum * k + c, lo, hi),
 * i.e. (sum - zero * sum(w)) * scale_x * scale_w + bias, as one multiply-add per output.
 */
function requantRecord(w: IntWeights, scale: number, zero: number, bias: Float32Array | undefined, act: Activation): Float32Array {
  const O = w.scales.length;
  const r = new Float32Array(2 * O + 2);
  for (let o = 0; o < O; o++) {
    const k = scale * w.scales[o];
    r[o] = k;
    r[O + o] = (bias ? bias[o] : 0) - zero * w.sums[o] * k;
  }
  r[2 * O] = act === 'relu' || act === 'relu6' ? 0 : -Infinity;
  r[2 * O + 1] = act === 'relu6' ? 6 : Infinity;
  return r;
}

async function floatNode(n: GraphNode, ins: Tensor[], out: number[], threads?: number): Promise<Tensor> {
  const a = n.attrs;
  const [x, y] = ins;
  const at = `node ${n.name}`;
  switch (n.op) {
    case 'conv': return ops.conv(x, y, ins[2], a, out, threads);
    case 'dense': return ops.dense(x, y, ins[2], a, threads);
    case 'maxpool': return ops.poolFast(x, a, out, true, threads);
    case 'avgpool': return ops.poolFast(x, a, out, false, threads);
    case 'gap': return ops.globalAvg(x, out);
    case 'affine': return ops.affine(x, y, ins[2]);
    case 'add': return ops.binary(x, y, (p, q) => p + q, at);
    case 'sub': return ops.binary(x, y, (p, q) => p - q, at);
    case 'mul': return ops.binary(x, y, (p, q) => p * q, at);
    case 'div': return ops.binary(x, y, (p, q) => p / q, at);
    case 'relu': return clamp(x, 0, Infinity);
    case 'clip': return clamp(x, a.min as number, a.max as number);
    case 'sigmoid': return { data: x.data.map((v) => 1 / (1 + Math.exp(-v))), shape: out };
    case 'softmax': return ops.softmax(x, a.axis as number, a.log === 1);
    case 'flatten': return ops.flatten(x, a.nhwc === 1, out);
    case 'reshape':
    case 'squeeze':
    case 'identity': return { data: x.data, shape: out };
    case 'transpose': return ops.transpose(x, a.perm as number[]);
    case 'concat': return ops.concat(ins, a.axis as number, out);
    case 'pad': return ops.pad(x, a.pads as number[], a.value as number, out);
    case 'mean': return ops.mean(x, a.axes as number[], out);
    case 'fakequant': return ops.fakeQuant(x, a);
  }
}

function clamp(x: Tensor, lo: number, hi: number): Tensor {
  const y = new Float32Array(x.data.length);
  for (let i = 0; i < y.length; i++) {
    const v = x.data[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return { data: y, shape: x.shape };
}

/** Codes padded with the zero code (which stands for real 0) on the spatial edges. */
function padCodes(c: Uint8Array, s: number[], p: number[], zero: number): Uint8Array {
  const [N, C, H, W] = s, PH = H + p[0] + p[2], PW = W + p[1] + p[3];
  const out = new Uint8Array(N * C * PH * PW).fill(zero);
  for (let i = 0; i < N * C; i++) {
    for (let h = 0; h < H; h++) out.set(c.subarray((i * H + h) * W, (i * H + h + 1) * W), (i * PH + h + p[0]) * PW + p[1]);
  }
  return out;
}

import type { ConvGeometry } from '../../conv/geometry.js';
import type { PciltTables } from '../../tables/pcilt.js';
import { checkCodeRange, copyOf, type OutputData } from '../../tensor.js';
import type { Backend, DirectJob, PciltJob } from '../types.js';
import { engineIfReady, engineUnavailableReason, getEngine, stageF32, threadCount, type Engine } from './engine.js';
import { MODE, P, PARAM_COUNT } from './params.js';
import type { Task } from './pool.js';

/** The largest packed index the kernels read: one byte, so a segment's rows are at most 256. */
const MAX_INDEX_BITS = 8;

/** PCILT rows laid out for the kernel: rows[group][segment][code][channel] int16, segments segBytes apart. */
export interface Rows {
  ptr: number;
  bytes: number;
  OgPad: number;
  /** Segments summed in int16 before a flush to int32 can be needed. */
  chunk: number;
  segBytes: number;
  /**
   * Channel-grouped: segment s = cg * KH * KW + tap packs one tap of the G channels cg * G.. (the
   * input is pre-packed once, pack_groups) instead of G consecutive (c, kh, kw) of the user's tables.
   */
  grouped: boolean;
  /**
   * Each segment's entries are stored less their midpoint m (so that more segments fit int16 between
   * flushes); offset[o] is the sum over segments of m, added back through the bias times the sum of
   * the plane weights (every plane reads every segment, plane j scaled by its weight: 2^j for codes).
   */
  offset: Int32Array;
}

/** Per tables object, its layouts by groups count (almost always one). */
const rowsCache = new WeakMap<PciltTables, Map<number, Rows>>();
const freeRows = new FinalizationRegistry<{ engine: Engine; ptr: number }>(({ engine, ptr }) => engine.heap.release(ptr));

function pciltSupport(t: PciltTables): string | null {
  if (!t.integer) return 'the tables hold float entries; the wasm kernels are integer-exact only';
  const bits = t.groupSize * t.indexBits;
  if (bits > MAX_INDEX_BITS) return `the tables take a ${bits}-bit index; the wasm kernels take at most ${MAX_INDEX_BITS} (groupSize * ${t.indexBits} <= 8)`;
  if (t.entryType === 'int32' && t.maxAbsEntry > 32767) return 'table entries exceed int16';
  return null;
}

function padTo8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/**
 * The weights of tables that can be channel-grouped: plain products, G >= 2 channels per group
 * dividing C, and every grouped entry within int16 (an entry is sum_i v_i * w_i over the G slots,
 * v_i in 0..2^indexBits - 1, so the extremes are the codes at the top on the positive or on the
 * negative weights). Null otherwise.
 */
function regroupable(t: PciltTables): ArrayLike<number> | null {
  const [O, Cg, KH, KW] = t.weightShape, G = t.groupSize, KK = KH * KW, top = (1 << t.indexBits) - 1;
  if (G < 2 || Cg % G !== 0) return null;
  const w = t.derivedWeights();
  if (!w) return null;
  for (let o = 0; o < O; o++) {
    for (let cg = 0; cg < Cg / G; cg++) {
      for (let tap = 0; tap < KK; tap++) {
        let pos = 0, neg = 0;
        for (let i = 0; i < G; i++) {
          const wi = w[o * Cg * KK + (cg * G + i) * KK + tap];
          if (wi > 0) pos += wi;
          else neg += wi;
        }
        if (pos * top > 32767 || neg * top < -32768) return null;
      }
    }
  }
  return w;
}

/**
 * The entries of channel-grouped segment s of channel o, seg[code] (into `out`, R long): entry =
 * sum_i v_i(code) * w[o][(cg * G + i) * KK + tap], s = cg * KK + tap.
 */
function groupedSegment(t: PciltTables, w: ArrayLike<number>, o: number, s: number, out: Int32Array): Int32Array {
  const [, Cg, KH, KW] = t.weightShape, G = t.groupSize, ib = t.indexBits, KK = KH * KW, mask = (1 << ib) - 1;
  const cg = Math.floor(s / KK), tap = s % KK;
  out[0] = 0;
  // Code by code from the codes of fewer slots: slot i's value v added to every code of slots < i.
  for (let i = 0; i < G; i++) {
    const wi = w[o * Cg * KK + (cg * G + i) * KK + tap], low = 1 << (i * ib);
    for (let v = 1; v <= mask; v++) for (let c = 0; c < low; c++) out[c + v * low] = out[c] + v * wi;
  }
  return out;
}

/**
 * Transposes tables into row-per-code form once per tables object (and groups count); freed when the
 * tables are. Where the tables can be regrouped (plain products, G channels per group dividing C),
 * the segments pack one tap of G channels: the input is then packed once per call (pack_groups)
 * instead of once per tap, and the indices of a tile are 16-byte copies (docs/perf-notes.md section 22).
 */
function prepareRows(e: Engine, t: PciltTables, groups: number): Rows {
  const layouts = rowsCache.get(t) ?? new Map<number, Rows>();
  rowsCache.set(t, layouts);
  const cached = layouts.get(groups);
  if (cached) return cached;
  const prepared = layRows(e, t, groups, 'wasm');
  layouts.set(groups, prepared);
  freeRows.register(t, { engine: e, ptr: prepared.ptr });
  return prepared;
}

/**
 * The rows of prepareRows, laid out anew (the caller owns the block at `ptr`). Regrouped rows of int8
 * weights are computed in wasm (`how` 'wasm', pcilt_grouped_rows: 400k weights in 4-5 ms, 12 ms on its
 * first run, against 34-67 ms in JS); everything else, and `how` 'js' (the twin), in JS.
 */
export function layRows(e: Engine, t: PciltTables, groups: number, how: 'wasm' | 'js'): Rows {
  const [O, Cg, KH, KW] = t.weightShape;
  const Og = O / groups, OgPad = padTo8(Og), S = t.segments, R = t.tableSize, G = t.groupSize;
  // Segments one cache line further apart than their R rows: at R * OgPad * 2 bytes (64 KB on the seed
  // layer) the same code's row in every segment fell into one L1 set, and frequent codes (0 after a
  // ReLU) were read from L2 at half the speed (docs/perf-notes.md section 18).
  const segElems = R * OgPad + 32;
  const count = groups * S * segElems;
  const ptr = e.heap.alloc(count * 2);
  new Int16Array(e.memory.buffer, ptr, count).fill(0);
  // Int8 weights regroup within int16 at any index the kernels take (pcilt_grouped_rows).
  const w = how === 'wasm' && G >= 2 && Cg % G === 0 && G * t.indexBits <= MAX_INDEX_BITS ? t.derivedWeights() : null;
  const laid = w instanceof Int8Array ? groupedRowsWasm(e, w, [O, Og, Cg, KH * KW, G, t.indexBits], OgPad, segElems, ptr) : null;
  const { grouped, offset, perPlane, maxAbs } = laid ?? rowsJs(t, new Int16Array(e.memory.buffer, ptr, count), Og, OgPad, segElems);
  const chunk = perPlane <= 32767 || maxAbs === 0 ? S : Math.max(1, Math.floor(32767 / maxAbs));
  return { ptr, bytes: count * 2, OgPad, chunk, segBytes: segElems * 2, grouped, offset };
}

interface Laid { grouped: boolean; offset: Int32Array; perPlane: number; maxAbs: number }

/** pcilt_grouped_rows on int8 weights into the zeroed rows at `ptr`. */
function groupedRowsWasm(e: Engine, w: Int8Array, [O, Og, Cg, KK, G, ib]: number[], OgPad: number, segElems: number, ptr: number): Laid {
  const wp = e.heap.alloc(w.length), off = e.heap.alloc(O * 4), stats = e.heap.alloc(8 + O * 4);
  try {
    new Int8Array(e.memory.buffer, wp, w.length).set(w);
    e.kernels.pcilt_grouped_rows(wp, O, Og, Cg, KK, G, ib, OgPad, segElems, ptr, off, stats);
    const [perPlane, maxAbs] = new Int32Array(e.memory.buffer, stats, 2);
    return { grouped: true, offset: copyOf(new Int32Array(e.memory.buffer, off, O)), perPlane, maxAbs };
  } finally {
    for (const p of [wp, off, stats]) e.heap.release(p);
  }
}

/** The rows in JS, regrouped where regroupable() allows, else from the tables' own entries. */
function rowsJs(t: PciltTables, rows: Int16Array, Og: number, OgPad: number, segElems: number): Laid {
  const [O] = t.weightShape;
  const S = t.segments, R = t.tableSize;
  const regrouped = regroupable(t);
  const grouped = regrouped !== null;
  const segment = new Int32Array(R);
  // Every pixel reads one row of every segment, so entries less a constant per (channel, segment)
  // give the same sum less a constant per channel. Centred on their midpoint, a segment's entries
  // span half their range either side of 0 (a 1-bit segment: half the sum of its |weights|
  // instead of the larger of its positive and negative sums), and more segments fit int16.
  // A channel's partial sum over any run of segments is bounded by its sum of largest |entries|
  // per segment; when that fits int16, one flush per bit plane is enough.
  const offset = new Int32Array(O);
  let perPlane = 0, maxAbs = 0;
  for (let o = 0; o < O; o++) {
    const gi = Math.floor(o / Og), oo = o % Og;
    let bound = 0;
    for (let s = 0; s < S; s++) {
      // One segment's R entries, regrouped or as the tables hold them.
      let src: ArrayLike<number>, from: number;
      if (grouped) {
        src = groupedSegment(t, regrouped, o, s, segment);
        from = 0;
      } else {
        src = t.entries;
        from = t.tableOf[o * S + s] * R;
      }
      const dst = (gi * S + s) * segElems + oo;
      let lo = src[from], hi = lo;
      for (let c = 1; c < R; c++) {
        const v = src[from + c];
        if (v < lo) lo = v;
        else if (v > hi) hi = v;
      }
      const mid = Math.floor((lo + hi) / 2);
      for (let c = 0; c < R; c++) rows[dst + c * OgPad] = src[from + c] - mid;
      offset[o] += mid;
      const m = Math.max(hi - mid, mid - lo);
      bound += m;
      maxAbs = Math.max(maxAbs, m);
    }
    perPlane = Math.max(perPlane, bound);
  }
  return { grouped, offset, perPlane, maxAbs };
}

/**
 * The zero-bordered codes a call reads, in wasm; `requant` set when the call writes float32,
 * `keep` when its output stays in wasm memory.
 */
interface Padded { ptr: number; Hp: number; Wp: number; requant?: Float32Array; keep?: boolean }

/** Writes a call's input into wasm memory (and may run kernels to do it). */
type InputWriter = (e: Engine, g: ConvGeometry, threads: number | undefined) => Promise<Padded> | Padded;

/**
 * Copies NCHW codes into a zero-bordered buffer (in wasm) so that the kernels never test bounds,
 * checking on the way that every code is below 2^bits (pad_input ORs what it copies: the JS loop
 * over the codes cost more).
 */
function codesInput(x: Uint8Array, bits: number): InputWriter {
  return (e, g) => {
    const Hp = g.H + g.padT + g.padB, Wp = g.W + g.padL + g.padR;
    const bytes = g.N * g.C * Hp * Wp + 64; // vector loads may read 15 bytes past the last row
    const ptr = e.heap.alloc(bytes);
    const staging = e.heap.alloc(x.length);
    try {
      new Uint8Array(e.memory.buffer, staging, x.length).set(x);
      checkCodeRange(x, bits, 'input', e.kernels.pad_input(staging, ptr, g.N * g.C, g.H, g.W, Hp, Wp, g.padT, g.padL, bytes));
    } catch (err) {
      e.heap.release(ptr);
      throw err;
    } finally {
      e.heap.release(staging);
    }
    return { ptr, Hp, Wp };
  };
}

/**
 * A float32 layer around an integer convolution: its input is quantized to codes in wasm (the
 * padding holds the zero code, i.e. real 0) and its int32 sums are scaled back to float32 with
 * the activation's clamp in the kernels' stores, so no codes or sums pass through JS.
 */
export interface FloatLayer {
  /** NCHW float32 input of the geometry's N, C, H, W. */
  x: Float32Array;
  /** A fixed (calibrated) range; measured on x when absent. */
  range?: [number, number];
  /**
   * For the range: codes = clamp(round_half_even(x / scale) + zero, 0, levels) in float32 arithmetic
   * (scale a float32 value, as ONNX QuantizeLinear), and the output record [k[O], c[O], lo, hi]: y = clamp(sum * k + c, lo, hi),
   * also in float32.
   */
  quant(range: [number, number]): { scale: number; zero: number; levels: number; requant: Float32Array; nonUniform?: NonUniformCodes; channels?: ChannelCodes };
  /**
   * Return the output as a view of wasm memory (no copy), to be released by the caller; only
   * where the memory is shared (growing it then leaves views intact).
   */
  keep?: boolean;
}

/**
 * Codes of non-uniform levels (at most 16): a value's code is codes[r], r the number of the sorted
 * float32 midpoints between levels below it (x > mid); `zero` (FloatLayer.quant's) is the code of the level 0.
 */
export interface NonUniformCodes { mids: Float32Array; codes: Uint8Array }

/** Uniform codes with a scale and zero point per input channel (`scale` and `zero` then unused but for the bytes after the planes). */
export interface ChannelCodes { scales: Float32Array; zeros: Uint8Array }

/** Below this many input values the calling thread quantizes alone (waking workers costs more). */
const QUANT_THREADED = 1 << 18;

function floatInput(layer: FloatLayer): InputWriter {
  return async (e, g, threads) => {
    const { x } = layer;
    const staged = stageF32(e, x), staging = staged.ptr;
    try {
      let range = layer.range;
      if (!range) {
        const at = e.heap.alloc(8);
        e.kernels.range_f32(staging, x.length, at);
        const r = new Float32Array(e.memory.buffer, at, 2);
        range = [r[0], r[1]];
        e.heap.release(at);
      }
      const q = layer.quant(range);
      const Hp = g.H + g.padT + g.padB, Wp = g.W + g.padL + g.padR, planes = g.N * g.C;
      const ptr = e.heap.alloc(planes * Hp * Wp + 64);
      new Uint8Array(e.memory.buffer, ptr + planes * Hp * Wp, 64).fill(q.zero);
      const T = x.length < QUANT_THREADED ? 1 : threadCount(e, threads, planes);
      const tasks: Task[] = [];
      const nu = q.nonUniform, ch = q.channels;
      const table = nu ? e.heap.alloc(16 + 4 * nu.mids.length) : ch ? e.heap.alloc(5 * g.C) : 0;
      if (nu) {
        new Uint8Array(e.memory.buffer, table, 16).set(nu.codes);
        new Float32Array(e.memory.buffer, table + 16, nu.mids.length).set(nu.mids);
      }
      if (ch) {
        new Float32Array(e.memory.buffer, table, g.C).set(ch.scales);
        new Uint8Array(e.memory.buffer, table + 4 * g.C, g.C).set(ch.zeros);
      }
      for (let i = 0; i < T; i++) {
        const planeRange = [staging, ptr, Math.floor((planes * i) / T), Math.floor((planes * (i + 1)) / T), g.H, g.W, Hp, Wp, g.padT, g.padL];
        tasks.push(nu ? { fn: 'quantize_levels_pad', args: [...planeRange, table + 16, nu.mids.length, table, q.zero] }
          : ch ? { fn: 'quantize_pad_channels', args: [...planeRange, table, table + 4 * g.C, g.C, q.levels] }
          : { fn: 'quantize_pad', args: [...planeRange, q.scale, q.zero, q.levels] });
      }
      try {
        await e.pool.run(tasks, (t) => (e.kernels[t.fn as 'quantize_pad'] as (...a: number[]) => void)(...t.args));
      } catch (err) {
        e.heap.release(ptr);
        throw err;
      } finally {
        if (table) e.heap.release(table);
      }
      return { ptr, Hp, Wp, requant: q.requant, keep: layer.keep && e.features.threads === null };
    } finally {
      staged.release();
    }
  };
}

/**
 * One call's wasm allocations. `params` is a fresh view each time: growing an unshared memory
 * (the single-threaded build) detaches views made before.
 */
interface Call {
  paramsPtr: number;
  outPtr: number;
  allocs: number[];
  /** The output is float32 (requantized in the kernels), not int32 sums. */
  requant: boolean;
  /** The output is uint8 codes (job.requant, in the kernels' stores). */
  codes: boolean;
  /** The output stays in wasm memory: a view is returned and outPtr is not released. */
  keep: boolean;
  readonly params: Int32Array;
}

/** Allocates the parts every job shares and fills the geometry part of the parameter record. */
function setup(e: Engine, padded: Padded, g: ConvGeometry, job: PciltJob | DirectJob, OgPad: number, offset?: Int32Array): Call {
  const { bias, requant: q } = job;
  const allocs: number[] = [padded.ptr];
  const alloc = (bytes: number) => {
    const p = e.heap.alloc(bytes);
    allocs.push(p);
    return p;
  };
  const K = g.Cg * g.KH * g.KW;
  const koff = alloc(K * 4);
  const paramsPtr = alloc(PARAM_COUNT * 4);
  const outPtr = alloc(g.N * g.O * g.OH * g.OW * (q ? 1 : 4));
  const biasPtr = bias instanceof Int32Array || offset ? alloc(g.O * 4) : 0;
  const req = padded.requant ? alloc(padded.requant.byteLength) : 0;
  const q8 = q ? alloc((g.O + 2) * 4) : 0;
  const buf = e.memory.buffer;
  const koffs = new Int32Array(buf, koff, K);
  for (let c = 0, k = 0; c < g.Cg; c++)
    for (let kh = 0; kh < g.KH; kh++)
      for (let kw = 0; kw < g.KW; kw++) koffs[k++] = (c * padded.Hp + kh * g.dilH) * padded.Wp + kw * g.dilW;
  if (biasPtr) {
    // The kernels add an int32 bias: the integer one given, plus the rows' offsets (a float bias is added after).
    const b = new Int32Array(buf, biasPtr, g.O);
    if (bias instanceof Int32Array) b.set(bias);
    else b.fill(0);
    if (offset) for (let o = 0; o < g.O; o++) b[o] += offset[o];
  }
  if (req) new Float32Array(buf, req, padded.requant!.length).set(padded.requant!);
  if (q) {
    const r = new Float32Array(buf, q8, g.O + 2);
    r.set(q.scale);
    r[g.O] = -q.zero;
    r[g.O + 1] = q.max - q.zero;
  }
  const params = new Int32Array(buf, paramsPtr, PARAM_COUNT);
  params.fill(0);
  params[P.N] = g.N; params[P.C] = g.C; params[P.HP] = padded.Hp; params[P.WP] = padded.Wp;
  params[P.O] = g.O; params[P.GROUPS] = g.groups; params[P.CG] = g.Cg; params[P.OG] = g.Og; params[P.OGPAD] = OgPad;
  params[P.KH] = g.KH; params[P.KW] = g.KW; params[P.OH] = g.OH; params[P.OW] = g.OW;
  params[P.SH] = g.strideH; params[P.SW] = g.strideW; params[P.DH] = g.dilH; params[P.DW] = g.dilW;
  params[P.K] = K; params[P.IN] = padded.ptr; params[P.OUT] = outPtr; params[P.KOFF] = koff; params[P.BIAS] = biasPtr; params[P.REQ] = req;
  params[P.Q8] = q8; params[P.QZERO] = q?.zero ?? 0;
  return { paramsPtr, outPtr, allocs, requant: req !== 0, codes: q8 !== 0, keep: !!padded.keep, get params() { return new Int32Array(e.memory.buffer, paramsPtr, PARAM_COUNT); } };
}

/** Milliseconds spent in each part of one call, filled when a caller asks. */
export interface CallTimes {
  setup: number;
  kernel: number;
  copyOut: number;
}

/** Splits the N*OH output rows over the threads, runs them, and copies the result out. */
async function runRows(e: Engine, fn: 'pcilt_rows' | 'direct_rows' | 'direct8_rows' | 'depthwise_rows', call: Call, job: PciltJob | DirectJob,
  scratchBytes: number, times?: CallTimes): Promise<OutputData> {
  const { geometry: g, threads, bias, integer, out: dest } = job;
  // Set once a kept output is handed to the caller (who releases it); a failed call releases all.
  let kept = false;
  try {
    const t0 = performance.now();
    const rows = g.N * g.OH;
    const T = threadCount(e, threads, rows);
    const { paramsPtr, outPtr } = call;
    const tasks: Task[] = [];
    for (let i = 0; i < T; i++) {
      const scratch = e.heap.alloc(scratchBytes);
      call.allocs.push(scratch);
      tasks.push({ fn, args: [paramsPtr, Math.floor((rows * i) / T), Math.floor((rows * (i + 1)) / T), scratch] });
    }
    const t1 = performance.now();
    await e.pool.run(tasks, (t) => e.kernels[t.fn as typeof fn](t.args[0], t.args[1], t.args[2], t.args[3]));
    const t2 = performance.now();
    const size = g.N * g.O * g.OH * g.OW;
    if (times) {
      times.setup += t1 - t0;
      times.kernel += t2 - t1;
      times.copyOut -= performance.now();
    }
    if (call.codes) {
      const codes = new Uint8Array(e.memory.buffer, outPtr, size);
      const y = dest ? ((dest as Uint8Array).set(codes), dest) : copyOf(codes);
      if (times) times.copyOut += performance.now();
      return y;
    }
    const out = new Int32Array(e.memory.buffer, outPtr, size);
    if (call.requant) {
      const view = new Float32Array(e.memory.buffer, outPtr, size);
      const y = call.keep ? view : copyOf(view);
      kept = call.keep;
      if (times) times.copyOut += performance.now();
      return y;
    }
    if (integer) {
      // Into the caller's array when given: a fresh 25 MB array costs more in page faults than the copy.
      const copy = dest ? ((dest as Int32Array).set(out), dest) : copyOf(out);
      if (times) times.copyOut += performance.now();
      return copy;
    }
    // A float bias: the kernels sum exact integers, the bias is added here.
    const f = (dest as Float32Array | undefined) ?? new Float32Array(size);
    const plane = g.OH * g.OW;
    for (let i = 0; i < size; i++) f[i] = out[i] + (bias ? bias[Math.floor(i / plane) % g.O] : 0);
    if (times) times.copyOut += performance.now();
    return f;
  } finally {
    for (const p of call.allocs) if (!(kept && p === call.outPtr)) e.heap.release(p);
  }
}

async function pcilt(job: PciltJob, mode: number = MODE.FULL, times?: CallTimes, input = codesInput(job.input, job.tables.activationBits)): Promise<OutputData> {
  const e = await getEngine();
  const t0 = performance.now();
  const t = job.tables, g = job.geometry;
  const rows = prepareRows(e, t, g.groups);
  const weights = planeWeights(job);
  // Int32 arithmetic wraps, as the kernels' int32 sums do: the output is exact wherever it fits.
  const total = weights.reduce((a, v) => (a + v) | 0, 0);
  const call = setup(e, await input(e, g, job.threads), g, job, rows.OgPad, rows.offset.map((m) => Math.imul(m, total)));
  const p = call.params;
  weights.forEach((v, j) => (p[P.PW0 + j] = v));
  p[P.S] = t.segments; p[P.G] = t.groupSize; p[P.IB] = t.indexBits; p[P.PLANES] = t.planes;
  p[P.CHUNK] = rows.chunk; p[P.ROWS] = rows.ptr; p[P.SEGBYTES] = rows.segBytes; p[P.BITSERIAL] = t.bitSerial ? 1 : 0;
  p[P.MODE] = mode;
  const scratch = e.kernels.scratch_bytes(p[P.PLANES], t.segments, 0, rows.OgPad);
  if (times) times.setup += performance.now() - t0;
  if (rows.grouped) {
    try {
      await packGroups(e, call, job, times);
    } catch (err) {
      for (const a of call.allocs) e.heap.release(a);
      throw err;
    }
  }
  return runRows(e, 'pcilt_rows', call, job, scratch, times);
}

/** A PCILT job's plane weights: 2^j for codes (one plane: 1), or the job's additive levels. */
function planeWeights(job: PciltJob): number[] {
  const planes = job.tables.planes;
  return job.planeWeights ?? Array.from({ length: planes }, (_, j) => 2 ** j);
}

/**
 * For channel-grouped rows: packs the call's input into index bytes [N][planes][C/G][Hp][Wp] (on the
 * threads for large inputs) and points the kernel at them. Each segment's offset in them replaces
 * the per-tap offsets in P_KOFF (S = K / G of its K slots), which the grouped kernel does not read.
 */
async function packGroups(e: Engine, call: Call, job: PciltJob, times?: CallTimes): Promise<void> {
  const t = job.tables, g = job.geometry, p = call.params;
  // Read before allocating: growing an unshared memory detaches `p`.
  const G = t.groupSize, KK = g.KH * g.KW, planes = p[P.PLANES], Hp = p[P.HP], Wp = p[P.WP], HW = Hp * Wp;
  const input = p[P.IN], koff = p[P.KOFF];
  const units = g.N * (g.C / G);
  const packed = e.heap.alloc(units * planes * HW + 64);
  call.allocs.push(packed);
  const o = new Int32Array(e.memory.buffer, koff, t.segments);
  for (let s = 0; s < t.segments; s++) {
    const cg = Math.floor(s / KK), kh = Math.floor((s % KK) / g.KW), kw = s % g.KW;
    o[s] = (cg * Hp + kh * g.dilH) * Wp + kw * g.dilW;
  }
  const t0 = performance.now();
  const T = units * HW < QUANT_THREADED ? 1 : threadCount(e, job.threads, units);
  const tasks: Task[] = [];
  for (let i = 0; i < T; i++) {
    tasks.push({ fn: 'pack_groups', args: [input, packed, Math.floor((units * i) / T), Math.floor((units * (i + 1)) / T), g.C, HW, G, t.indexBits, planes, t.bitSerial ? 1 : 0] });
  }
  await e.pool.run(tasks, (k) => (e.kernels.pack_groups as (...a: number[]) => void)(...k.args));
  if (times) times.kernel += performance.now() - t0;
  const q = call.params;
  q[P.IN] = packed; q[P.GROUPED] = 1;
}

/** A weight array's layout in wasm memory, and its largest |weight| (bounds the relaxed kernel's int16 sums). */
interface Layout { held: { engine: Engine; ptr: number }; hash: number; maxAbs: number }
/**
 * Each weight array's layouts, by kernel layout (one per kernel that ran it: 'auto' trying the relaxed and the
 * int16 kernel on a layer must not lay its weights out again at every switch).
 */
const layoutCache = new WeakMap<object, Map<string, Layout>>();
const freeLayout = new FinalizationRegistry<{ engine: Engine; ptr: number }>(({ engine, ptr }) => engine.heap.release(ptr));

/** A cheap fingerprint of the weights, so that an array changed in place is laid out again. */
function fingerprint(w: DirectJob['weight']): number {
  const n = (w.byteOffset & 3) === 0 ? w.byteLength >> 2 : 0;
  const words = new Int32Array(w.buffer, w.byteOffset, n);
  const bytes = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  let h = w.length;
  for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + words[i]) | 0;
  for (let i = n << 2; i < bytes.length; i++) h = (Math.imul(h, 31) + bytes[i]) | 0;
  return h;
}

/** Weight arrays the library made and never changes (the graph runner's): no fingerprint needed. */
const frozen = new WeakSet<object>();

/** Marks a weight array as never changed in place, so the wasm layout of it is not re-checked each call. */
export function freezeWeights(w: DirectJob['weight']): void {
  frozen.add(w);
}

/**
 * Weights as w[group][tap group][channel][taps] (one dot product covers `taps` taps of a channel;
 * the depthwise kernel takes taps = Kp, i.e. w[O][Kp]), as int8 or int16, in wasm memory; kept
 * per weight array and layout (freed with the array) and laid out again only when the array's
 * contents change.
 */
function weightLayout(e: Engine, weight: DirectJob['weight'], g: ConvGeometry, Kp: number, OgPad: number, taps: number, bytes: 1 | 2): Layout {
  const key = `${g.groups},${g.O},${Kp},${OgPad},${taps},${bytes}`;
  let layouts = layoutCache.get(weight);
  if (!layouts) layoutCache.set(weight, (layouts = new Map()));
  const hit = layouts.get(key);
  if (hit && frozen.has(weight)) return hit;
  const hash = fingerprint(weight);
  if (hit && hit.hash === hash) return hit;
  const { ptr, maxAbs } = layWeights(e, weight, g, Kp, OgPad, taps, bytes, 'wasm');
  if (hit) {
    // The registry holds the same object: it frees whichever layout is current.
    e.heap.release(hit.held.ptr);
    hit.held.ptr = ptr;
    hit.hash = hash;
    hit.maxAbs = maxAbs;
    return hit;
  }
  const held = { engine: e, ptr };
  freeLayout.register(weight, held);
  const made = { held, hash, maxAbs };
  layouts.set(key, made);
  return made;
}

/**
 * weightLayout's block, laid out anew (the caller owns the block at `ptr`): in wasm (`how` 'wasm',
 * layout_direct_weights: MNIST's 400k weights in well under a millisecond, against 6 ms on a first run
 * in JS), or in JS (`how` 'js', the twin). Returns the largest |w| too.
 */
export function layWeights(e: Engine, weight: DirectJob['weight'], g: ConvGeometry, Kp: number, OgPad: number, taps: number, bytes: 1 | 2, how: 'wasm' | 'js'): { ptr: number; maxAbs: number } {
  const K = g.Cg * g.KH * g.KW;
  const count = g.groups * Kp * OgPad;
  const ptr = e.heap.alloc(count * bytes);
  const groupsOfTaps = Kp / taps;
  if (how === 'wasm' && !(weight instanceof Float32Array)) {
    const srcBytes = weight.BYTES_PER_ELEMENT, src = e.heap.alloc(weight.length * srcBytes);
    try {
      const View = weight.constructor as Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor;
      new View(e.memory.buffer, src, weight.length).set(weight);
      const maxAbs = e.kernels.layout_direct_weights(src, srcBytes, ptr, bytes, count, g.O, g.Og, K, groupsOfTaps, OgPad, taps);
      return { ptr, maxAbs };
    } finally {
      e.heap.release(src);
    }
  }
  const wl = bytes === 1 ? new Int8Array(e.memory.buffer, ptr, count) : new Int16Array(e.memory.buffer, ptr, count);
  wl.fill(0);
  let maxAbs = 0;
  for (let o = 0; o < g.O; o++) {
    const gi = Math.floor(o / g.Og), oo = o % g.Og;
    const src = o * K;
    // Tap k of channel o goes to tap group k / taps, slot k % taps of that channel's dot product.
    for (let k0 = 0; k0 < K; k0 += taps) {
      const dst = ((gi * groupsOfTaps + k0 / taps) * OgPad + oo) * taps;
      const n = Math.min(taps, K - k0);
      for (let t = 0; t < n; t++) {
        const v = weight[src + k0 + t];
        wl[dst + t] = v;
        if (v > maxAbs) maxAbs = v;
        else if (-v > maxAbs) maxAbs = -v;
      }
    }
  }
  return { ptr, maxAbs };
}

function directSupport(job: DirectJob): string | null {
  if (job.fn) return 'a custom fn needs the reference kernel';
  const w = job.weight;
  if (w instanceof Float32Array) return 'float weights; the wasm kernels are integer-exact only';
  if (w instanceof Int32Array && w.some((v) => v < -32768 || v > 32767)) return 'weights beyond int16';
  return null;
}

/**
 * The direct kernels for a job, the default first: i16x8.relaxed_dot_i8x16_i7x16_s where relaxed
 * SIMD runs, the weights are int8 and the codes below 128 (16 multiply-accumulates per instruction,
 * int16 sums: 1.6x dot_i16x8 on the seed layer, docs/perf-notes.md section 17); i32x4.dot_i16x8_s always.
 */
function directKernels(e: Engine | undefined, job: DirectJob): string[] {
  const w = job.weight;
  const int8 = w instanceof Int8Array || (!(w instanceof Float32Array) && w.every((v) => v >= -128 && v <= 127));
  return e?.features.relaxedSimd && job.activationBits <= 7 && int8 ? ['relaxed-dot-i8', 'dot-i16'] : ['dot-i16'];
}

/**
 * How many 4-tap steps of the relaxed kernel may add up in int16: each step adds at most
 * 2 * maxCode * max|w| to a lane (two products), and pmaddubsw itself stays exact for codes below 128.
 */
function int16Steps(maxW: number, bits: number): number {
  const step = 2 * (2 ** bits - 1) * maxW;
  return step === 0 ? 1 << 20 : Math.max(1, Math.floor(32767 / step));
}

/**
 * How a direct job's kernel reads its weights: the depthwise kernel w[O][K] (K rounded up to even)
 * as int16, else dot products of `taps` taps (4 int8 for the relaxed kernel, 2 int16), K padded
 * with zero weights to a multiple of them; laid out once per weight array and geometry.
 */
function directLayout(e: Engine, job: DirectJob): { ptr: number; maxAbs: number; depthwise: boolean; relaxed: boolean; Kp: number; OgPad: number } {
  const g = job.geometry;
  const OgPad = padTo8(g.Og), K = g.Cg * g.KH * g.KW;
  if (job.kernel !== undefined && !directKernels(e, job).includes(job.kernel)) {
    throw new Error(`direct kernel '${job.kernel}' cannot run this job; it takes ${directKernels(e, job).join(', ')}`);
  }
  if (g.Cg === 1 && g.Og === 1 && job.kernel === undefined) {
    // Depthwise: one input channel per output channel; the GEMM-shaped kernels would fill 8 lanes for 1.
    const Kp = K + (K & 1);
    const { held, maxAbs } = weightLayout(e, job.weight, g, Kp, 1, Kp, 2);
    return { ptr: held.ptr, maxAbs, depthwise: true, relaxed: false, Kp, OgPad };
  }
  const relaxed = (job.kernel ?? directKernels(e, job)[0]) === 'relaxed-dot-i8';
  const taps = relaxed ? 4 : 2;
  const Kp = Math.ceil(K / taps) * taps;
  const { held, maxAbs } = weightLayout(e, job.weight, g, Kp, OgPad, taps, relaxed ? 1 : 2);
  return { ptr: held.ptr, maxAbs, depthwise: false, relaxed, Kp, OgPad };
}

/**
 * Lays out a direct job's weights for its kernel ahead of its first run (a model's layers as it
 * loads: 5-10 ns a weight in JS); its input and output are not read.
 */
export async function prepareDirect(job: DirectJob): Promise<void> {
  directLayout(await getEngine(), job);
}

/** Lays out the rows the look-up kernel reads for these tables and groups count (once; what its first run would do). */
export async function preparePcilt(tables: PciltTables, groups: number): Promise<void> {
  prepareRows(await getEngine(), tables, groups);
}

async function direct(job: DirectJob, mode: number = MODE.FULL, times?: CallTimes, input = codesInput(job.input, job.activationBits)): Promise<OutputData> {
  const e = await getEngine();
  const t0 = performance.now();
  const g = job.geometry;
  const layout = directLayout(e, job);
  const call = setup(e, await input(e, g, job.threads), g, job, layout.OgPad);
  const p = call.params;
  p[P.W] = layout.ptr;
  if (layout.depthwise) {
    if (times) times.setup += performance.now() - t0;
    return runRows(e, 'depthwise_rows', call, job, 0, times);
  }
  p[P.KP] = layout.Kp;
  p[P.MODE] = mode;
  if (layout.relaxed) p[P.CHUNK] = int16Steps(layout.maxAbs, job.activationBits);
  const scratch = e.kernels.scratch_bytes(0, 0, layout.Kp, 0);
  if (times) times.setup += performance.now() - t0;
  return runRows(e, layout.relaxed ? 'direct8_rows' : 'direct_rows', call, job, scratch, times);
}

/**
 * Runs a PCILT or direct job (its `input` unused) on a float32 layer: quantized in, float32 out.
 * `job.bias` must be absent (the record's c[o] carries it).
 */
export async function floatLayer(op: 'pcilt' | 'direct', job: PciltJob | DirectJob, layer: FloatLayer): Promise<{ data: Float32Array; release?: () => void }> {
  const input = floatInput(layer);
  const data = await (op === 'pcilt' ? pcilt(job as PciltJob, MODE.FULL, undefined, input) : direct(job as DirectJob, MODE.FULL, undefined, input)) as Float32Array;
  const e = await getEngine();
  return data.buffer === e.memory.buffer ? { data, release: () => e.heap.release(data.byteOffset) } : { data };
}

export const wasmBackend: Backend = {
  name: 'wasm',
  inAuto: true,
  requantizes: true,
  checksCodes: true,
  unavailableReason: engineUnavailableReason,
  supportsPcilt: (job) => pciltSupport(job.tables),
  supportsDirect: directSupport,
  directKernels: (job) => (directSupport(job) === null ? directKernels(engineIfReady(), job) : []),
  pcilt: (job) => pcilt(job),
  direct: (job) => direct(job),
};

/** Median milliseconds of each phase of a kernel, over `runs` calls of each partial run. */
export interface PhaseProfile {
  /** Padding the input, laying out weights, parameters (JS). */
  setup: number;
  /** Packing activation codes into table indices (pcilt) or into int16 pairs (direct). */
  pack: number;
  /** Look-ups and int16 accumulation with int32 flushes (pcilt) or multiply-accumulate (direct). */
  compute: number;
  /** Writing the sums in NCHW order, with the bias: int32, or requantized (u8 codes, float32). */
  store: number;
  /** Copying the result out of wasm memory (JS). */
  copyOut: number;
  total: number;
}

/**
 * Times the phases of the wasm kernel for one job by running it in three modes: pack only,
 * everything but the stores, and everything, in turns; compute and store are medians of per-turn differences.
 */
export async function profileKernel(op: 'pcilt' | 'direct', job: PciltJob | DirectJob, runs = 5): Promise<PhaseProfile> {
  const run = (mode: number, times?: CallTimes) =>
    op === 'pcilt' ? pcilt(job as PciltJob, mode, times) : direct(job as DirectJob, mode, times);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const modes = [MODE.PACK_ONLY, MODE.NO_STORE, MODE.FULL];
  for (const mode of modes) await run(mode);
  // The three modes in turn, each phase the median of its per-turn differences: this VM's slow
  // windows last seconds, so a turn's three runs mostly share one speed.
  const turns: CallTimes[][] = [];
  for (let i = 0; i < runs; i++) {
    const turn: CallTimes[] = [];
    for (const mode of modes) {
      const t: CallTimes = { setup: 0, kernel: 0, copyOut: 0 };
      await run(mode, t);
      turn.push(t);
    }
    turns.push(turn);
  }
  const r = {
    setup: median(turns.map(([, , full]) => full.setup)),
    pack: median(turns.map(([pack]) => pack.kernel)),
    compute: Math.max(0, median(turns.map(([pack, noStore]) => noStore.kernel - pack.kernel))),
    store: Math.max(0, median(turns.map(([, noStore, full]) => full.kernel - noStore.kernel))),
    copyOut: median(turns.map(([, , full]) => full.copyOut)),
  };
  return { ...r, total: r.setup + median(turns.map(([, , full]) => full.kernel)) + r.copyOut };
}

import { ArgumentError } from '../errors.js';
import { checkInt } from '../tensor.js';
import { gemm } from './gemm.js';
import { col2im, im2col, type ConvShape } from './im2col.js';
import { quantizeSymmetric, type Conv2d, type Layer, type Linear, type QuantReLU } from './layers.js';
import { param, type Param, type Tensor } from './tensor.js';

/**
 * What fine-tuning may change in a layer's PCILT tables (the paper's "using PCILTs as weights"):
 * 'filter': one factor per output channel scales all its tables; 'table': one value per table,
 * T[o][k][a] = t[o][k] * a * s (the weights again); 'entry': every entry on its own.
 */
export type TableRange = 'filter' | 'table' | 'entry';
export const TABLE_RANGES: TableRange[] = ['filter', 'table', 'entry'];

/**
 * The entry width fine-tuning trains for: the forward pass uses the tables quantized per output
 * channel to integers of this many bits (straight-through gradients), so that integer inference
 * runs the very same tables on the wasm PCILT kernels.
 */
export const ENTRY_BITS = 12;

/** Floats in one block of one-hot codes (pixels x K x 2^bits) at a time. */
const ONE_HOT_FLOATS = 1 << 22;

/**
 * Tables quantized per output channel: q = round(T / scale[o]), |q| <= 2^(bits-1) - 1, and the
 * values q * scale[o] the forward pass computes with.
 */
export function quantizeEntries(T: Float32Array, O: number, bits: number): { q: Int16Array; scales: Float32Array; deq: Float32Array } {
  checkInt('entryBits', bits, 2, 16);
  return quantizeSymmetric(T, O, bits, new Int16Array(T.length));
}

interface TableInit { base: Float32Array; bias: Float32Array; weights: Float32Array }

/** The codes of P output pixels' K reduction slots: slot k of pixel p at p * pStride + k * kStride. */
interface Slots { codes: ArrayLike<number>; P: number; pStride: number; kStride: number }

/**
 * A layer whose parameters are lookup tables: y[p][o] = b[o] + sum_k T[o][k][a[p][k]], a[p][k] the
 * codes of the quantizer before it (inputs are code * inScale) at reduction slot k of output pixel p.
 * Forward and backward are products of one-hot codes with the tables (the float GEMM on the threads),
 * in blocks of pixels. The input's gradient is straight-through: the slope of each table around the
 * code looked up.
 */
abstract class TableLayer implements Layer {
  abstract readonly type: string;
  readonly bias: Param;
  /** range 'entry': T itself; 'table': t[o][k]; 'filter': g[o] over the frozen base tables. */
  readonly table: Param;
  /** The tables the layer started from (for 'filter'). */
  readonly base: Float32Array;
  /** Whether backward computes the input's gradient (fine-tuning leaves the first trained layer's input frozen). */
  inputGradient = true;
  private cache?: { slots: Slots; clamped: Uint8Array; T: Float32Array; inShape: number[] };

  protected constructor(private readonly O: number, private readonly K: number, readonly bits: number, readonly inScale: number,
    readonly range: TableRange, readonly entryBits: number | undefined, init?: TableInit) {
    if (!TABLE_RANGES.includes(range)) throw new ArgumentError('range', range, `one of ${TABLE_RANGES.join(', ')}`);
    checkInt('bits', bits, 1, 8);
    if (entryBits !== undefined) checkInt('entryBits', entryBits, 2, 16);
    if (!(inScale > 0) || !Number.isFinite(inScale)) throw new ArgumentError('inScale', inScale, 'a finite number > 0');
    const L = 1 << bits;
    this.base = init?.base ?? new Float32Array(O * K * L);
    this.bias = param('bias', [O], (i) => init?.bias[i] ?? 0);
    this.table = range === 'entry' ? param('tables', [O, K, L], (i) => this.base[i])
      : range === 'table' ? param('tableScale', [O, K], (i) => init?.weights[i] ?? 0)
      : param('filterScale', [O], () => 1);
  }

  /** Tables T0[o][k][a] = w[o][k] * a * s for weights w [O][K] whose input comes from `quant`. */
  protected static initFrom(w: Float32Array, bias: Float32Array, quant: QuantReLU): TableInit & { bits: number; scale: number } {
    const bits = quant.bits;
    if (!bits) throw new ArgumentError('quant.bits', bits, 'set: tables need activation codes');
    const L = 1 << bits, s = quant.scale;
    const base = new Float32Array(w.length * L);
    for (let i = 0; i < w.length; i++) for (let a = 0; a < L; a++) base[i * L + a] = w[i] * a * s;
    return { base, bias, weights: w, bits, scale: s };
  }

  /** The tables as the parameters give them, before any entry quantization: [(o * K + k) * 2^bits + a]. */
  rawTables(): Float32Array {
    const L = 1 << this.bits, K = this.K, v = this.table.value;
    if (this.range === 'entry') return v;
    const T = new Float32Array(this.O * K * L);
    for (let o = 0; o < this.O; o++) {
      for (let k = 0; k < K; k++) {
        for (let a = 0; a < L; a++) {
          const i = (o * K + k) * L + a;
          T[i] = this.range === 'table' ? v[o * K + k] * a * this.inScale : v[o] * this.base[i];
        }
      }
    }
    return T;
  }

  /** The tables the layer computes with now (quantized per channel when entryBits is set). */
  tables(): Float32Array {
    const T = this.rawTables();
    return this.entryBits ? quantizeEntries(T, this.O, this.entryBits).deq : T;
  }

  /** The integer entries and their per-channel scales (layers with entryBits). */
  integerTables(): { q: Int16Array; scales: Float32Array } {
    if (!this.entryBits) throw new ArgumentError(`${this.type}.entryBits`, this.entryBits, 'set: float tables have no integer form');
    return quantizeEntries(this.rawTables(), this.O, this.entryBits);
  }

  /** The codes of an input (and which values lay outside the codes' range), as the layer reads them. */
  private codesOf(x: Float32Array): { codes: Uint8Array; clamped: Uint8Array } {
    const L = (1 << this.bits) - 1, inv = 1 / this.inScale;
    const codes = new Uint8Array(x.length), clamped = new Uint8Array(x.length);
    for (let i = 0; i < codes.length; i++) {
      const q = Math.round(x[i] * inv);
      codes[i] = q < 0 ? 0 : q > L ? L : q;
      clamped[i] = q < 0 || q > L ? 1 : 0;
    }
    return { codes, clamped };
  }

  /** The codes of every output pixel's reduction slots (zero codes in the padding). */
  protected abstract patches(codes: Uint8Array, shape: number[]): Slots;
  /** The adjoint of patches: slot gradients, laid out as patches laid out the codes, summed into the input's shape. */
  protected abstract unpatch(dcols: Float32Array, shape: number[]): Float32Array;
  /** Sums [P][O] into the output layout. */
  protected abstract toOutput(y: Float32Array, shape: number[]): Tensor;
  /** The output gradient in [P][O]. */
  protected abstract fromOutput(dy: Tensor, shape: number[]): Float32Array;
  /** The same layer with these tables as free entries. */
  protected abstract withEntries(init: TableInit): TableLayer;

  /** Pixels in one block of one-hot codes. */
  private blockRows(P: number): number {
    return Math.min(P, Math.max(1, Math.floor(ONE_HOT_FLOATS / (this.K << this.bits))));
  }

  /** Runs fn over blocks of pixels with their codes one-hot, [rows][K * 2^bits]. */
  private async eachBlock(c: Slots, fn: (oneHot: Float32Array, p0: number, rows: number) => Promise<void>): Promise<void> {
    const K = this.K, L = 1 << this.bits, KL = K * L, per = this.blockRows(c.P);
    const buf = new Float32Array(per * KL);
    for (let p0 = 0; p0 < c.P; p0 += per) {
      const rows = Math.min(per, c.P - p0), h = buf.subarray(0, rows * KL);
      h.fill(0);
      for (let p = 0; p < rows; p++) for (let k = 0; k < K; k++) h[p * KL + k * L + c.codes[(p0 + p) * c.pStride + k * c.kStride]] = 1;
      await fn(h, p0, rows);
    }
  }

  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const O = this.O, KL = this.K << this.bits;
    const { codes, clamped } = this.codesOf(x.data);
    const slots = this.patches(codes, x.shape), P = slots.P;
    const T = this.tables();
    const y = new Float32Array(P * O);
    await this.eachBlock(slots, (h, p0, rows) => gemm(h, T, y.subarray(p0 * O, (p0 + rows) * O), rows, O, KL, { transB: true }));
    for (let p = 0; p < P; p++) for (let o = 0; o < O; o++) y[p * O + o] += this.bias.value[o];
    if (training) this.cache = { slots, clamped, T, inShape: x.shape };
    return this.toOutput(y, x.shape);
  }

  async backward(dy: Tensor): Promise<Tensor> {
    const { slots, clamped, T, inShape } = this.cache!;
    const { P, pStride, kStride } = slots;
    this.cache = undefined;
    const O = this.O, K = this.K, L = 1 << this.bits, KL = K * L, s = this.inScale;
    const d = this.fromOutput(dy, inShape);
    for (let p = 0; p < P; p++) for (let o = 0; o < O; o++) this.bias.grad[o] += d[p * O + o];
    // dT[o][k][a] = sum of d[p][o] over the pixels whose slot k holds code a.
    const dT = new Float32Array(O * KL);
    // Straight through the codes: the slope of each table around a code, per unit of input.
    const D = this.inputGradient ? new Float32Array(O * KL) : null;
    if (D) {
      for (let t = 0; t < O * K; t++) {
        for (let a = 0; a < L; a++) {
          const lo = Math.max(0, a - 1), hi = Math.min(L - 1, a + 1);
          D[t * L + a] = (T[t * L + hi] - T[t * L + lo]) / ((hi - lo) * s);
        }
      }
    }
    const dcols = D ? new Float32Array(P * K) : null;
    const full = D ? new Float32Array(this.blockRows(P) * KL) : null;
    await this.eachBlock(slots, async (h, p0, rows) => {
      const dBlock = d.subarray(p0 * O, (p0 + rows) * O);
      await gemm(dBlock, h, dT, O, KL, rows, { transA: true, accumulate: true });
      if (!D) return;
      await gemm(dBlock, D, full!, rows, KL, O);
      for (let p = 0; p < rows; p++) {
        for (let k = 0; k < K; k++) {
          const at = (p0 + p) * pStride + k * kStride;
          dcols![at] = full![p * KL + k * L + slots.codes[at]];
        }
      }
    });
    const g = this.table.grad;
    if (this.range === 'entry') for (let i = 0; i < dT.length; i++) g[i] += dT[i];
    else if (this.range === 'table') {
      for (let i = 0; i < O * K; i++) {
        let v = 0;
        for (let a = 1; a < L; a++) v += dT[i * L + a] * a;
        g[i] += v * s;
      }
    } else {
      for (let o = 0; o < O; o++) {
        let v = 0;
        for (let i = o * KL; i < (o + 1) * KL; i++) v += dT[i] * this.base[i];
        g[o] += v;
      }
    }
    const n = inShape.reduce((a, b) => a * b, 1);
    if (!dcols) return { data: new Float32Array(n), shape: inShape };
    const dx = this.unpatch(dcols, inShape);
    for (let i = 0; i < n; i++) if (clamped[i]) dx[i] = 0;
    return { data: dx, shape: inShape };
  }

  params(): Param[] {
    return [this.table, this.bias];
  }

  /** The same layer with its current tables as free entries (what inference and model files need). */
  asEntries(): TableLayer {
    return this.withEntries({ base: this.rawTables().slice(), bias: this.bias.value, weights: new Float32Array(0) });
  }

  abstract config(): Record<string, number | undefined>;
}

/** A fully connected layer whose parameters are its lookup tables: y[o] = sum_k T[o][k][a_k] + b[o]. */
export class TableLinear extends TableLayer {
  readonly type = 'TableLinear';

  constructor(readonly inFeatures: number, readonly outFeatures: number, bits: number, inScale: number, range: TableRange,
    init?: TableInit, entryBits?: number) {
    checkInt('inFeatures', inFeatures, 1); checkInt('outFeatures', outFeatures, 1);
    super(outFeatures, inFeatures, bits, inScale, range, entryBits, init);
  }

  /** Tables for a trained Linear whose input comes from `quant`: T0[o][k][a] = w_q[o][k] * s_w[o] * a * s_a. */
  static fromLinear(l: Linear, quant: QuantReLU, range: TableRange, entryBits?: number): TableLinear {
    const i = TableLayer.initFrom(l.effectiveWeight(), l.bias.value, quant);
    return new TableLinear(l.inFeatures, l.outFeatures, i.bits, i.scale, range, i, entryBits);
  }

  protected patches(codes: Uint8Array, shape: number[]) {
    const N = shape[0];
    if (codes.length !== N * this.inFeatures) throw new ArgumentError('TableLinear input.shape', shape, `[N, ${this.inFeatures}]`);
    return { codes, P: N, pStride: this.inFeatures, kStride: 1 };
  }
  protected unpatch(dcols: Float32Array) {
    return dcols;
  }
  protected toOutput(y: Float32Array, shape: number[]): Tensor {
    return { data: y, shape: [shape[0], this.outFeatures] };
  }
  protected fromOutput(dy: Tensor) {
    return dy.data;
  }
  protected withEntries(init: TableInit) {
    return new TableLinear(this.inFeatures, this.outFeatures, this.bits, this.inScale, 'entry', init, this.entryBits);
  }

  config() {
    return { inFeatures: this.inFeatures, outFeatures: this.outFeatures, bits: this.bits, inScale: this.inScale, range: TABLE_RANGES.indexOf(this.range), entryBits: this.entryBits };
  }
}

/**
 * A convolution whose parameters are its lookup tables (square kernel, symmetric padding, as Conv2d):
 * y[n][o][oh][ow] = b[o] + sum over (c, kh, kw) of T[o][(c * k + kh) * k + kw][a[n][c][ih][iw]],
 * padding read as code 0 (as the integer kernels read it).
 */
export class TableConv2d extends TableLayer {
  readonly type = 'TableConv2d';

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernel: number, readonly stride: number, readonly pad: number,
    bits: number, inScale: number, range: TableRange, init?: TableInit, entryBits?: number) {
    checkInt('inChannels', inChannels, 1); checkInt('outChannels', outChannels, 1); checkInt('kernel', kernel, 1);
    checkInt('stride', stride, 1); checkInt('pad', pad, 0);
    super(outChannels, inChannels * kernel * kernel, bits, inScale, range, entryBits, init);
  }

  /** Sizes of a call on input `shape`. */
  private geometry(shape: number[]): ConvShape {
    if (shape.length !== 4 || shape[1] !== this.inChannels) throw new ArgumentError('TableConv2d input.shape', shape, `[N, ${this.inChannels}, H, W]`);
    const [N, C, H, W] = shape, k = this.kernel;
    const OH = Math.floor((H + 2 * this.pad - k) / this.stride) + 1, OW = Math.floor((W + 2 * this.pad - k) / this.stride) + 1;
    if (OH < 1 || OW < 1) throw new ArgumentError('TableConv2d input.shape', shape, `H and W of at least ${k - 2 * this.pad}`);
    return { N, C, H, W, O: this.outChannels, k, stride: this.stride, pad: this.pad, OH, OW };
  }

  /** Tables for a trained Conv2d whose input comes from `quant`. */
  static fromConv(l: Conv2d, quant: QuantReLU, range: TableRange, entryBits?: number): TableConv2d {
    const i = TableLayer.initFrom(l.effectiveWeight(), l.bias.value, quant);
    return new TableConv2d(l.inChannels, l.outChannels, l.kernel, l.stride, l.pad, i.bits, i.scale, range, i, entryBits);
  }

  /** The slots as im2col lays them out, [K][P] (Conv2d's own layout). */
  protected patches(codes: Uint8Array, shape: number[]): Slots {
    const g = this.geometry(shape), P = g.N * g.OH * g.OW;
    return { codes: im2col(Float32Array.from(codes), g), P, pStride: 1, kStride: P };
  }

  protected unpatch(dcols: Float32Array, shape: number[]) {
    return col2im(dcols, this.geometry(shape));
  }

  protected toOutput(y: Float32Array, shape: number[]): Tensor {
    const { N, O, OH, OW } = this.geometry(shape);
    const HW = OH * OW, out = new Float32Array(N * O * HW);
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) for (let o = 0; o < O; o++) out[(n * O + o) * HW + i] = y[(n * HW + i) * O + o];
    return { data: out, shape: [N, O, OH, OW] };
  }

  protected fromOutput(dy: Tensor, shape: number[]) {
    const { N, O, OH, OW } = this.geometry(shape);
    const HW = OH * OW, d = new Float32Array(N * HW * O);
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) for (let o = 0; o < O; o++) d[(n * HW + i) * O + o] = dy.data[(n * O + o) * HW + i];
    return d;
  }

  protected withEntries(init: TableInit) {
    return new TableConv2d(this.inChannels, this.outChannels, this.kernel, this.stride, this.pad, this.bits, this.inScale, 'entry', init, this.entryBits);
  }

  config() {
    return { inChannels: this.inChannels, outChannels: this.outChannels, kernel: this.kernel, stride: this.stride, pad: this.pad,
      bits: this.bits, inScale: this.inScale, range: TABLE_RANGES.indexOf(this.range), entryBits: this.entryBits };
  }
}

export type { TableLayer };

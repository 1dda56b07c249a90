import { ArgumentError } from '../errors.js';
import { checkInt } from '../tensor.js';
import { quantizePerChannel, QuantReLU, type Layer, Linear } from './layers.js';
import { param, type Param, type Tensor } from './tensor.js';

/**
 * What fine-tuning may change in a layer's PCILT tables (the paper's "using PCILTs as weights"):
 * 'filter': one factor per output channel scales all its tables; 'table': one value per table,
 * T[o][k][a] = t[o][k] * a * s (the weights again); 'entry': every entry on its own.
 */
export type TableRange = 'filter' | 'table' | 'entry';
export const TABLE_RANGES: TableRange[] = ['filter', 'table', 'entry'];

/**
 * A fully connected layer whose parameters are its lookup tables: y[o] = sum_k T[o][k][a_k] + b[o],
 * where a_k are the codes of the quantizer before it. Layers before it stay frozen: it passes no
 * gradient back to its input.
 */
export class TableLinear implements Layer {
  readonly type = 'TableLinear';
  readonly bias: Param;
  /** range 'entry': T itself; 'table': t[o][k]; 'filter': g[o] over the frozen base tables. */
  readonly table: Param;
  /** The tables the layer started from (for 'filter'). */
  readonly base: Float32Array;
  private cache?: { codes: Uint8Array; N: number };

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly bits: number, readonly inScale: number,
    readonly range: TableRange, init?: { base: Float32Array; bias: Float32Array; weights: Float32Array }) {
    if (!TABLE_RANGES.includes(range)) throw new ArgumentError('range', range, `one of ${TABLE_RANGES.join(', ')}`);
    checkInt('bits', bits, 1, 8); checkInt('inFeatures', inFeatures, 1); checkInt('outFeatures', outFeatures, 1);
    if (!(inScale > 0) || !Number.isFinite(inScale)) throw new ArgumentError('inScale', inScale, 'a finite number > 0');
    const L = 1 << bits, OK = outFeatures * inFeatures;
    this.base = init?.base ?? new Float32Array(OK * L);
    this.bias = param('bias', [outFeatures], (i) => init?.bias[i] ?? 0);
    this.table = range === 'entry' ? param('tables', [outFeatures, inFeatures, L], (i) => this.base[i])
      : range === 'table' ? param('tableScale', [outFeatures, inFeatures], (i) => init?.weights[i] ?? 0)
      : param('filterScale', [outFeatures], () => 1);
  }

  /** Tables for a trained Linear whose input comes from `quant`: T0[o][k][a] = w_q[o][k] * s_w[o] * a * s_a. */
  static fromLinear(l: Linear, quant: QuantReLU, range: TableRange): TableLinear {
    const bits = quant.bits;
    if (!bits) throw new ArgumentError('quant.bits', bits, 'set: tables need activation codes');
    const w = l.weightBits ? quantizePerChannel(l.weight.value, l.outFeatures, l.weightBits).deq : l.weight.value;
    const L = 1 << bits, s = quant.scale;
    const base = new Float32Array(w.length * L);
    for (let i = 0; i < w.length; i++) for (let a = 0; a < L; a++) base[i * L + a] = w[i] * a * s;
    return new TableLinear(l.inFeatures, l.outFeatures, bits, s, range, { base, bias: l.bias.value, weights: w });
  }

  /** The tables the layer computes with now: entries[(o * K + k) * 2^bits + a]. */
  tables(): Float32Array {
    const L = 1 << this.bits, K = this.inFeatures, v = this.table.value;
    if (this.range === 'entry') return v;
    const T = new Float32Array(this.outFeatures * K * L);
    for (let o = 0; o < this.outFeatures; o++) {
      for (let k = 0; k < K; k++) {
        for (let a = 0; a < L; a++) {
          const i = (o * K + k) * L + a;
          T[i] = this.range === 'table' ? v[o * K + k] * a * this.inScale : v[o] * this.base[i];
        }
      }
    }
    return T;
  }

  private codesOf(x: Tensor): Uint8Array {
    const L = (1 << this.bits) - 1, inv = 1 / this.inScale;
    const c = new Uint8Array(x.data.length);
    for (let i = 0; i < c.length; i++) c[i] = Math.min(L, Math.max(0, Math.round(x.data[i] * inv)));
    return c;
  }

  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const N = x.shape[0], K = this.inFeatures, O = this.outFeatures, L = 1 << this.bits;
    if (x.data.length !== N * K) throw new ArgumentError('TableLinear input.shape', x.shape, `[N, ${K}]`);
    const codes = this.codesOf(x);
    const T = this.tables();
    const y = new Float32Array(N * O);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        let s = this.bias.value[o];
        const row = o * K * L;
        for (let k = 0; k < K; k++) s += T[row + k * L + codes[n * K + k]];
        y[n * O + o] = s;
      }
    }
    if (training) this.cache = { codes, N };
    return { data: y, shape: [N, O] };
  }

  async backward(dy: Tensor): Promise<Tensor> {
    const { codes, N } = this.cache!;
    const K = this.inFeatures, O = this.outFeatures, L = 1 << this.bits, g = this.table.grad;
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        const d = dy.data[n * O + o];
        if (d === 0) continue;
        this.bias.grad[o] += d;
        if (this.range === 'entry') for (let k = 0; k < K; k++) g[(o * K + k) * L + codes[n * K + k]] += d;
        else if (this.range === 'table') for (let k = 0; k < K; k++) g[o * K + k] += d * codes[n * K + k] * this.inScale;
        else {
          let s = 0;
          for (let k = 0; k < K; k++) s += this.base[(o * K + k) * L + codes[n * K + k]];
          g[o] += d * s;
        }
      }
    }
    this.cache = undefined;
    return { data: new Float32Array(N * K), shape: [N, K] };
  }

  params(): Param[] {
    return [this.table, this.bias];
  }

  config() {
    return { inFeatures: this.inFeatures, outFeatures: this.outFeatures, bits: this.bits, inScale: this.inScale, range: TABLE_RANGES.indexOf(this.range) };
  }
}

/** The same layer with its current tables as free entries (what inference and model files need). */
export function asEntries(l: TableLinear): TableLinear {
  const t = new TableLinear(l.inFeatures, l.outFeatures, l.bits, l.inScale, 'entry', { base: l.tables(), bias: l.bias.value, weights: new Float32Array(0) });
  return t;
}

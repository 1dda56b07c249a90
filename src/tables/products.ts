import { ArgumentError } from '../errors.js';

/** The convolution function f(w, a): w is a weight value, a an activation code. */
export type ProductFn = (w: number, a: number) => number;

export const multiply: ProductFn = (w, a) => w * a;

/**
 * f(w, a) for every code a of one weight value, evaluated once per distinct weight value
 * (weights repeat a lot at low bit widths) and checked to be finite.
 */
export class ProductRows {
  private readonly cache = new Map<number, Float64Array>();
  private readonly maxAbsCache = new Map<number, number>();
  /** True while every value seen so far is an integer. */
  integer = true;

  constructor(
    readonly fn: ProductFn,
    readonly codes: number,
    private readonly argument = 'options.fn',
  ) {}

  row(w: number): Float64Array {
    let r = this.cache.get(w);
    if (r) return r;
    r = new Float64Array(this.codes);
    for (let a = 0; a < this.codes; a++) {
      const v = this.fn(w, a);
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ArgumentError(`${this.argument}(${w}, ${a})`, v, 'a finite number');
      }
      if (!Number.isInteger(v)) this.integer = false;
      r[a] = v;
    }
    // Float weights rarely repeat: keep the cache bounded.
    if (this.cache.size > 65536) this.cache.clear();
    this.cache.set(w, r);
    return r;
  }

  /** Largest |f(w, a)| over the codes. */
  maxAbs(w: number): number {
    let m = this.maxAbsCache.get(w);
    if (m !== undefined) return m;
    m = 0;
    for (const v of this.row(w)) m = Math.max(m, Math.abs(v));
    if (this.maxAbsCache.size > 65536) this.maxAbsCache.clear();
    this.maxAbsCache.set(w, m);
    return m;
  }
}

/** The products a bias-free integer output could reach in the worst case, per output channel. */
export function channelBounds(data: ArrayLike<number>, O: number, rows: ProductRows): Float64Array {
  const K = data.length / O;
  const bounds = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    let b = 0;
    for (let k = 0; k < K; k++) b += rows.maxAbs(data[o * K + k]);
    bounds[o] = b;
  }
  return bounds;
}

import { ArgumentError } from '../errors.js';
import { checkInt } from '../tensor.js';
import type { ProductFn } from '../tables/products.js';

/** Maps float activations to codes 0..2^bits-1 and back. */
export interface ActivationQuantizer {
  readonly bits: number;
  /** The real value of each code. */
  readonly levels: Float64Array;
  quantize(x: ArrayLike<number>): Uint8Array;
  dequantize(codes: Uint8Array): Float32Array;
}

/** Uniform (affine) quantization: value = scale * (code - zeroPoint). */
export class AffineQuantizer implements ActivationQuantizer {
  readonly levels: Float64Array;

  constructor(readonly bits: number, readonly scale: number, readonly zeroPoint = 0) {
    checkInt('bits', bits, 1, 8);
    if (!(scale > 0) || !Number.isFinite(scale)) throw new ArgumentError('scale', scale, 'a finite number > 0');
    checkInt('zeroPoint', zeroPoint, 0, (1 << bits) - 1);
    this.levels = Float64Array.from({ length: 1 << bits }, (_, c) => scale * (c - zeroPoint));
  }

  /** The quantizer whose codes span [min, max] (the range is widened to include 0). */
  static fromRange(bits: number, min: number, max: number): AffineQuantizer {
    checkInt('bits', bits, 1, 8);
    if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) throw new ArgumentError('[min, max]', [min, max], 'a finite range with min <= max');
    const lo = Math.min(0, min), hi = Math.max(0, max);
    const top = (1 << bits) - 1;
    const scale = hi > lo ? (hi - lo) / top : 1;
    return new AffineQuantizer(bits, scale, Math.min(top, Math.max(0, Math.round(-lo / scale))));
  }

  quantize(x: ArrayLike<number>): Uint8Array {
    const top = (1 << this.bits) - 1;
    const out = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const q = Math.round(x[i] / this.scale) + this.zeroPoint;
      out[i] = q < 0 ? 0 : q > top ? top : q || 0;
    }
    return out;
  }

  dequantize(codes: Uint8Array): Float32Array {
    return Float32Array.from(codes, (c) => this.levels[c]);
  }
}

/** Non-uniform quantization to an explicit, increasing list of 2^bits levels (nearest level wins). */
export class CodebookQuantizer implements ActivationQuantizer {
  readonly bits: number;
  readonly levels: Float64Array;

  constructor(levels: ArrayLike<number>) {
    const n = levels?.length;
    const bits = Math.log2(n);
    if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new ArgumentError('levels.length', n, 'a power of two 2..256 (2^bits levels)');
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(levels[i]) || (i > 0 && !(levels[i] > levels[i - 1]))) {
        throw new ArgumentError(`levels[${i}]`, levels[i], 'a finite number above the previous level (levels must increase)');
      }
    }
    this.bits = bits;
    this.levels = Float64Array.from(levels);
  }

  quantize(x: ArrayLike<number>): Uint8Array {
    const L = this.levels;
    const out = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      let lo = 0, hi = L.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (L[mid] <= v) lo = mid; else hi = mid;
      }
      out[i] = Math.abs(v - L[lo]) <= Math.abs(L[hi] - v) ? lo : hi;
    }
    return out;
  }

  dequantize(codes: Uint8Array): Float32Array {
    return Float32Array.from(codes, (c) => this.levels[c]);
  }
}

/** The PCILT function for codes that stand for arbitrary levels: f(w, a) = w * levels[a]. */
export function levelProduct(q: ActivationQuantizer): ProductFn {
  const L = q.levels;
  return (w, a) => w * L[a];
}

/** Round half to even (ONNX QuantizeLinear and QLinearConv round this way; Math.round goes up). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

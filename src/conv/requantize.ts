import { ArgumentError } from '../errors.js';
import { roundHalfEven } from '../quant/activations.js';
import { checkInt } from '../tensor.js';
import type { ConvGeometry } from './geometry.js';

/**
 * options.requantize: the output becomes the next layer's activation codes, as ONNX QLinearConv
 * makes them: code = clamp(round(sum * scale[o]) + zeroPoint, 0, 2^bits - 1), sum the exact
 * int32 result (bias included).
 */
export interface RequantizeOptions {
  /** One multiplier for every output channel, or one per channel; finite and > 0. */
  scale: number | ArrayLike<number>;
  /** Default 0. */
  zeroPoint?: number;
  /** Code width of the output, 1..8 (default 8). */
  bits?: number;
}

/**
 * A validated requantization. Every step is float32 as the wasm kernels compute it:
 * code = clamp(nearest(f32(f32(sum) * scale[o])), lo, hi) + zero, nearest rounding half to even,
 * lo = -zero, hi = max - zero.
 */
export interface Requant {
  scale: Float32Array;
  zero: number;
  max: number;
}

export function checkRequantize(r: unknown, O: number, integer: boolean): Requant | undefined {
  if (r === undefined) return undefined;
  if (r === null || typeof r !== 'object') throw new ArgumentError('options.requantize', r, 'an object { scale, zeroPoint?, bits? }');
  if (!integer) {
    throw new ArgumentError('options.requantize', r, 'given only for exact integer sums (integer tables or weights, an Int32Array bias or none)');
  }
  const { scale, zeroPoint, bits } = r as RequantizeOptions;
  const max = 2 ** checkInt('options.requantize.bits', bits ?? 8, 1, 8) - 1;
  const zero = checkInt('options.requantize.zeroPoint', zeroPoint ?? 0, 0, max);
  const scales = typeof scale === 'number' ? new Array<number>(O).fill(scale) : scale;
  const allowed = `a finite number > 0 or ${O} of them (one per output channel)`;
  if (scales === null || typeof scales !== 'object' || typeof scales.length !== 'number') throw new ArgumentError('options.requantize.scale', scale, allowed);
  if (scales.length !== O) throw new ArgumentError('options.requantize.scale', scale, allowed);
  const f = Float32Array.from(scales, Math.fround);
  for (let o = 0; o < O; o++) {
    if (typeof scales[o] !== 'number' || !Number.isFinite(f[o]) || !(f[o] > 0)) throw new ArgumentError(`options.requantize.scale[${o}]`, scales[o], 'a finite number > 0 (as float32)');
  }
  return { scale: f, zero, max };
}

/** One exact sum of channel o as its code: the reference for every kernel's fused requantization. */
export function requantizeSum(sum: number, q: Requant, o: number): number {
  const v = roundHalfEven(Math.fround(Math.fround(sum) * q.scale[o]));
  return Math.min(Math.max(v, -q.zero), q.max - q.zero) + q.zero;
}

/** NCHW int32 sums as codes (into `out` when given): for backends without a fused requantization. */
export function requantizeSums(sums: ArrayLike<number>, g: ConvGeometry, q: Requant, out?: Uint8Array): Uint8Array {
  const y = out ?? new Uint8Array(sums.length);
  const plane = g.OH * g.OW;
  for (let i = 0; i < sums.length; i++) y[i] = requantizeSum(sums[i], q, Math.floor(i / plane) % g.O);
  return y;
}

import { ArgumentError } from './errors.js';

export type WeightData = Int8Array | Int16Array | Int32Array | Float32Array;
/** Int32Array: exact sums; Float32Array: float results; Uint8Array: requantized codes. */
export type OutputData = Int32Array | Float32Array | Uint8Array;
export type Shape4 = [number, number, number, number];

/** Activation codes (0..2^bits-1), NCHW. */
export interface CodeTensor {
  data: Uint8Array;
  shape: readonly number[];
}

/** Convolution weights [O, C / groups, KH, KW]. */
export interface WeightTensor {
  data: WeightData;
  shape: readonly number[];
}

export interface OutputTensor<D extends OutputData = OutputData> {
  data: D;
  shape: Shape4;
}

/** A float tensor of any rank. */
export interface FloatTensor {
  data: Float32Array;
  shape: readonly number[];
}

export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
    throw new ArgumentError(name, value, `an integer ${range}`);
  }
  return value;
}

/** Checks that `shape` is a list of `rank` positive integers whose product is `data`'s length. */
export function checkShape(name: string, shape: unknown, rank: number, length: number): number[] {
  if (!Array.isArray(shape) || shape.length !== rank) {
    throw new ArgumentError(`${name}.shape`, shape, `an array of ${rank} positive integers`);
  }
  shape.forEach((d, i) => checkInt(`${name}.shape[${i}]`, d, 1));
  const size = shape.reduce((a: number, b: number) => a * b, 1);
  if (size !== length) {
    throw new ArgumentError(`${name}.data.length`, length, `${size}, the product of ${name}.shape [${shape.join(', ')}]`);
  }
  return shape as number[];
}

export function isIntegerData(data: WeightData): data is Int8Array | Int16Array | Int32Array {
  return !(data instanceof Float32Array);
}

/** Validates a weight tensor: rank 4, a supported array type, finite values. */
export function checkWeight(weight: unknown, name = 'weight'): Shape4 {
  const w = weight as WeightTensor | undefined;
  if (!w || typeof w !== 'object' || !(w.data instanceof Int8Array || w.data instanceof Int16Array || w.data instanceof Int32Array || w.data instanceof Float32Array)) {
    throw new ArgumentError(`${name}.data`, w?.data, 'an Int8Array, Int16Array, Int32Array or Float32Array');
  }
  const shape = checkShape(name, w.shape, 4, w.data.length) as Shape4;
  if (w.data instanceof Float32Array) {
    for (let i = 0; i < w.data.length; i++) {
      if (!Number.isFinite(w.data[i])) throw new ArgumentError(`${name}.data[${i}]`, w.data[i], 'a finite number');
    }
  }
  return shape;
}

/**
 * Validates activation codes: rank 4 Uint8Array with every code below 2^bits (`range` false: the
 * codes are checked later, by the backend that runs them or by checkCodeRange before it).
 */
export function checkCodes(input: unknown, bits: number, name = 'input', range = true): Shape4 {
  const x = input as CodeTensor | undefined;
  if (!x || typeof x !== 'object' || !(x.data instanceof Uint8Array)) {
    throw new ArgumentError(`${name}.data`, x?.data, 'a Uint8Array of activation codes');
  }
  const shape = checkShape(name, x.shape, 4, x.data.length) as Shape4;
  if (range) checkCodeRange(x.data, bits, name);
  return shape;
}

/** Throws the typed error for the first code of `data` at or above 2^bits; `or` is the OR of every code, if known. */
export function checkCodeRange(data: Uint8Array, bits: number, name = 'input', or?: number): void {
  const limit = 1 << bits;
  if (bits < 8 && ((or ?? orAll(data)) >> bits) !== 0) {
    const i = data.findIndex((c) => c >= limit);
    throw new ArgumentError(`${name}.data[${i}]`, data[i], `an activation code 0..${limit - 1} (activationBits ${bits})`);
  }
}

/** Bitwise OR of every byte, four at a time where aligned: a cheap range check for codes. */
function orAll(d: Uint8Array): number {
  let acc = 0, i = 0;
  while (i < d.length && (d.byteOffset + i) % 4 !== 0) acc |= d[i++];
  const words = Math.floor((d.length - i) / 4);
  const w = new Uint32Array(d.buffer, d.byteOffset + i, words);
  let wacc = 0;
  for (let j = 0; j < words; j++) wacc |= w[j];
  acc |= (wacc | (wacc >>> 8) | (wacc >>> 16) | (wacc >>> 24)) & 0xff;
  for (i += words * 4; i < d.length; i++) acc |= d[i];
  return acc;
}

type Typed = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array | BigInt64Array | BigUint64Array | Uint8ClampedArray;

/**
 * A copy of a typed array in fresh memory. Use it, not slice(), for views into wasm memory: V8
 * copies a view of shared memory (the threaded engine's) element by element with atomic loads
 * in slice(), 5-7x slower than allocating and set() (docs/perf-notes.md section 32).
 */
export function copyOf<T extends Typed>(a: T): T {
  const c = new (a.constructor as new (n: number) => T)(a.length);
  (c as Uint8Array).set(a as Uint8Array);
  return c;
}

import { ArgumentError, FasterCnnError } from '../errors.js';

/** Element types the runtime computes with. int64 stays exact (BigInt64Array); bool is 0/1 bytes. */
export const DTYPES = ['float32', 'int32', 'int64', 'uint8', 'int8', 'bool'] as const;
export type DType = (typeof DTYPES)[number];

export type TypedData = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

/** A value between nodes: row-major data of `sizeOf(shape)` elements. */
export interface Tensor { dtype: DType; shape: number[]; data: TypedData }

/** A tensor that cannot be made or read: bad dtype, shape or data. */
export class TensorError extends FasterCnnError {}

/** Largest tensor the runtime allocates, in elements (1 GB of float32). */
export const MAX_ELEMENTS = 1 << 28;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const ARRAYS = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array, bool: Uint8Array };

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

/** A zero-filled tensor, its size checked before it is allocated. */
export function zeros(dtype: DType, shape: number[]): Tensor {
  const n = sizeOf(shape);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || n > MAX_ELEMENTS) {
    throw new TensorError(`a ${dtype} tensor of shape [${shape}] (at most ${MAX_ELEMENTS} elements, non-negative integer sizes)`);
  }
  return { dtype, shape, data: new ARRAYS[dtype](n) };
}

/** Element i as a number (int64 values beyond 2^53 lose their low bits here, and only here). */
export function numberAt(t: Tensor, i: number): number {
  return t.dtype === 'int64' ? Number((t.data as BigInt64Array)[i]) : (t.data as Float32Array)[i];
}

/** Every element as a number: the array itself unless it holds BigInts. */
export function numbers(t: Tensor): ArrayLike<number> {
  if (t.dtype !== 'int64') return t.data as ArrayLike<number>;
  const d = t.data as BigInt64Array, out = new Float64Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

/** A list of integers (shapes, axes, indices) read from a tensor. */
export function ints(t: Tensor): number[] {
  return Array.from(numbers(t), (v) => Math.trunc(v));
}

/** A tensor of `dtype` from numbers; integer types truncate toward zero and wrap as their typed arrays do. */
export function fromNumbers(dtype: DType, shape: number[], values: ArrayLike<number>): Tensor {
  const t = zeros(dtype, shape);
  if (t.data.length !== values.length) throw new TensorError(`${values.length} values for shape [${shape}]`);
  if (dtype === 'int64') {
    const d = t.data as BigInt64Array;
    for (let i = 0; i < d.length; i++) {
      const v = values[i];
      d[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : v > 0 ? 0x7fffffffffffffffn : v < 0 ? -0x8000000000000000n : 0n;
    }
  } else if (dtype === 'bool') {
    const d = t.data as Uint8Array;
    for (let i = 0; i < d.length; i++) d[i] = values[i] ? 1 : 0;
  } else if (dtype === 'float32') (t.data as Float32Array).set(values);
  else {
    const d = t.data as Int32Array;
    for (let i = 0; i < d.length; i++) {
      const v = values[i];
      d[i] = Number.isFinite(v) ? Math.trunc(v) : 0;
    }
  }
  return t;
}

/** Checks a tensor given by a user: known dtype, a typed array of that dtype, data matching the shape. */
export function checkTensor(t: unknown, argument: string): Tensor {
  const x = t as Tensor;
  const ok = x && Array.isArray(x.shape) && x.shape.every((d) => Number.isInteger(d) && d >= 0) && isDType(x.dtype)
    && x.data instanceof ARRAYS[x.dtype] && x.data.length === sizeOf(x.shape);
  if (!ok) throw new ArgumentError(argument, x?.shape ?? x, `a { data, shape, dtype } tensor whose data is the typed array of its dtype (${DTYPES.join(', ')}) with one element per shape cell`);
  return x;
}

/** The dtype of a typed array a user passed (Uint8Array reads as uint8). */
export function dtypeOf(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  return undefined;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let k = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = k;
    k *= shape[i];
  }
  return s;
}

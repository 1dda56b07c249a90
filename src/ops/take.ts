import { zeros, type Tensor } from '../ir/tensor.js';

/** A tensor of `shape` whose element i is `src`'s element idx[i] (any dtype, int64 copied exactly). */
export function take(src: Tensor, shape: number[], idx: ArrayLike<number>): Tensor {
  const out = zeros(src.dtype, shape);
  const s = src.data as Float32Array, d = out.data as Float32Array;
  for (let i = 0; i < idx.length; i++) d[i] = s[idx[i]];
  return out;
}

/** The same data under another shape (no copy). */
export function reshaped(t: Tensor, shape: number[]): Tensor {
  return { dtype: t.dtype, shape, data: t.data };
}

/**
 * Flat source indices of a strided view: output element i reads
 * offset + sum_k coord_k(i) * strides[k] over the output's shape.
 */
export function viewIndex(shape: number[], offset: number, strides: number[]): Int32Array {
  let n = 1;
  for (const d of shape) n *= d;
  const idx = new Int32Array(n);
  const r = shape.length, ctr = new Array<number>(r).fill(0);
  let p = offset;
  for (let i = 0; i < n; i++) {
    idx[i] = p;
    for (let a = r - 1; a >= 0; a--) {
      p += strides[a];
      if (++ctr[a] < shape[a]) break;
      p -= strides[a] * shape[a];
      ctr[a] = 0;
    }
  }
  return idx;
}

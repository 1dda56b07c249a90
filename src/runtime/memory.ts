import type { Tensor, TypedData } from '../ir/tensor.js';
import { copyOf } from '../tensor.js';

/**
 * Frees what a fast kernel left in wasm memory once nothing reads it; kernels register their
 * outputs' release here (a reshape passes the same data on, so identity, not name, decides).
 */
export const releases = new WeakMap<TypedData, () => void>();

/** Frees the wasm memory behind `data` where a kernel registered it (once; other data is left alone). */
export function freeData(data: TypedData): void {
  const release = releases.get(data);
  if (release) {
    releases.delete(data);
    release();
  }
}

/** A run's result as the caller may keep it: copied where it points into wasm memory or is a graph constant. */
export function ownCopy(t: Tensor, constant: boolean): Tensor {
  return releases.has(t.data) || constant ? { ...t, data: copyOf(t.data) } : t;
}

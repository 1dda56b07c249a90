import type { TypedData } from '../ir/tensor.js';

/**
 * Frees what a fast kernel left in wasm memory once nothing reads it; kernels register their
 * outputs' release here (a reshape passes the same data on, so identity, not name, decides).
 */
export const releases = new WeakMap<TypedData, () => void>();

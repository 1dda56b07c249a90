import { engineIfReady } from '../../backends/wasm/engine.js';

/** The FNV prime of the four lanes. */
const P = 0x01000193;

/** Four lanes' starting values. */
export function fnv4Start(): Int32Array {
  return Int32Array.of(0x811c9dc5, 0x2545f491, 0x9e3779b9, 0x7f4a7c15);
}

/** Folds a value into lane 0 (lengths, layer names). */
export function fnv4Value(h: Int32Array, v: number): void {
  h[0] = Math.imul(h[0] ^ v, P);
}

/** The four lanes as one number. */
export function fnv4End(h: Int32Array): number {
  return Math.imul(Math.imul(Math.imul(h[0] ^ h[1], P) ^ h[2], P) ^ h[3], P);
}

/** From this many words on, fnv4Words hashes in wasm (staging them costs less than cold JS). */
const WASM_MIN = 1024;

/**
 * Folds 32-bit words into the lanes: lane k takes words k, k + 4, ..., the n % 4 left over go into
 * lane 0. In wasm (hash_fnv4_x32, one v128 a step) where the engine runs and the array is large:
 * a first call in JS ran cold for 20-25 ms on MNIST's 420k parameters.
 */
export function fnv4Words(h: Int32Array, words: Int32Array): void {
  const e = engineIfReady();
  if (!e || words.length < WASM_MIN) return fnv4WordsJs(h, words);
  const n = words.length, src = e.heap.alloc(n * 4), state = e.heap.alloc(16);
  try {
    new Int32Array(e.memory.buffer, src, n).set(words);
    const lanes = new Int32Array(e.memory.buffer, state, 4);
    lanes.set(h);
    e.kernels.hash_fnv4_x32(src, n, state);
    h.set(lanes);
  } finally {
    e.heap.release(src);
    e.heap.release(state);
  }
}

/** fnv4Words in JS: the twin of hash_fnv4_x32. */
export function fnv4WordsJs(h: Int32Array, words: Int32Array): void {
  let h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3];
  const n = words.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    h0 = Math.imul(h0 ^ words[i], P);
    h1 = Math.imul(h1 ^ words[i + 1], P);
    h2 = Math.imul(h2 ^ words[i + 2], P);
    h3 = Math.imul(h3 ^ words[i + 3], P);
  }
  for (; i < n; i++) h0 = Math.imul(h0 ^ words[i], P);
  h[0] = h0;
  h[1] = h1;
  h[2] = h2;
  h[3] = h3;
}

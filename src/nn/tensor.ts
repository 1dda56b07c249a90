/** A float tensor of any rank, row-major. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** A trainable parameter and its gradient (accumulated by backward passes). */
export interface Param {
  name: string;
  value: Float32Array;
  grad: Float32Array;
  shape: number[];
}

export function param(name: string, shape: number[], init: (i: number) => number): Param {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, value: Float32Array.from({ length: n }, (_, i) => init(i)), grad: new Float32Array(n) };
}

export function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Deterministic random numbers for initialisation and shuffling (mulberry32 + Box-Muller). */
export function seededRandom(seed: number) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

/** The layers the benchmark reproduces: the seed's, and a small MNIST-style one. */
export interface LayerSpec {
  name: string;
  N: number; C: number; H: number; W: number; O: number; K: number; pad: number;
}

export const LAYERS: Record<string, LayerSpec> = {
  seed: { name: 'seed', N: 1, C: 64, H: 224, W: 224, O: 128, K: 3, pad: 1 },
  'mnist-b1': { name: 'mnist-b1', N: 1, C: 32, H: 14, W: 14, O: 64, K: 3, pad: 1 },
  'mnist-b64': { name: 'mnist-b64', N: 64, C: 32, H: 14, W: 14, O: 64, K: 3, pad: 1 },
};

export function macs(l: LayerSpec): number {
  return l.N * l.O * l.H * l.W * l.C * l.K * l.K; // stride 1, 'same' padding: OH = H, OW = W
}

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

/** Deterministic data, identical in every process: weights per layer, codes per layer and bit width. */
export function layerData(l: LayerSpec, bits: number): { input: Uint8Array; weight: Int8Array } {
  const rw = lcg(l.C * 7919 + l.O);
  const weight = Int8Array.from({ length: l.O * l.C * l.K * l.K }, () => ((rw() >>> 8) % 255) - 127);
  const rx = lcg(l.N * 104729 + l.H * 31 + bits);
  const mask = (1 << bits) - 1;
  const input = Uint8Array.from({ length: l.N * l.C * l.H * l.W }, () => (rx() >>> 16) & mask);
  return { input, weight };
}

import type { RuntimeGraph, RuntimeTensor } from 'faster-cnn';

/** Deterministic random numbers (mulberry32) so that a failing case can be replayed. */
export function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  return { next, int, pick };
}
export type Rng = ReturnType<typeof rng>;

export interface Case {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number;
  groups: number; stride: [number, number]; dilation: [number, number];
  padding: [number, number, number, number];
}

/** A random valid convolution shape, kept small enough that a JS loop finishes quickly. */
export function randomCase(r: Rng, maxMacs = 400_000): Case {
  for (;;) {
    const groupsKind = r.pick(['one', 'one', 'some', 'depthwise'] as const);
    const Cg = r.int(1, 12);
    const groups = groupsKind === 'one' ? 1 : groupsKind === 'depthwise' ? r.int(1, 40) : r.int(2, 8);
    const C = groupsKind === 'depthwise' ? groups : Cg * groups;
    const O = groups * r.int(1, Math.max(1, Math.floor(40 / groups)));
    const c: Case = {
      N: r.int(1, 3), C, H: r.int(1, 33), W: r.int(1, 33), O,
      KH: r.pick([1, 2, 3, 5, 7]), KW: r.pick([1, 2, 3, 5, 7]), groups,
      stride: [r.int(1, 3), r.int(1, 3)], dilation: [r.int(1, 3), r.int(1, 3)],
      padding: [r.int(0, 3), r.int(0, 3), r.int(0, 3), r.int(0, 3)],
    };
    if (C > 40) continue;
    const OH = Math.floor((c.H + c.padding[0] + c.padding[2] - c.dilation[0] * (c.KH - 1) - 1) / c.stride[0]) + 1;
    const OW = Math.floor((c.W + c.padding[1] + c.padding[3] - c.dilation[1] * (c.KW - 1) - 1) / c.stride[1]) + 1;
    if (OH <= 0 || OW <= 0) continue;
    if (c.N * O * OH * OW * (C / groups) * c.KH * c.KW > maxMacs) continue;
    return c;
  }
}

export function randomCodes(r: Rng, c: Case, bits: number): Uint8Array {
  return Uint8Array.from({ length: c.N * c.C * c.H * c.W }, () => r.int(0, (1 << bits) - 1));
}

export function randomIntWeights(r: Rng, c: Case, weightBits: number): Int8Array {
  const top = 2 ** (weightBits - 1) - 1;
  return Int8Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.int(-top, top));
}

/**
 * An independent naive convolution in float64: loops straight over the output and the kernel,
 * computing each input coordinate, without any helper from the library.
 */
export function naiveConv(x: Uint8Array, w: ArrayLike<number>, c: Case, fn: (w: number, a: number) => number = (p, q) => p * q, bias?: ArrayLike<number>) {
  const Cg = c.C / c.groups, Og = c.O / c.groups;
  const OH = Math.floor((c.H + c.padding[0] + c.padding[2] - c.dilation[0] * (c.KH - 1) - 1) / c.stride[0]) + 1;
  const OW = Math.floor((c.W + c.padding[1] + c.padding[3] - c.dilation[1] * (c.KW - 1) - 1) / c.stride[1]) + 1;
  const out = new Float64Array(c.N * c.O * OH * OW);
  const absSum = new Float64Array(out.length);
  for (let n = 0; n < c.N; n++)
    for (let o = 0; o < c.O; o++)
      for (let y = 0; y < OH; y++)
        for (let xo = 0; xo < OW; xo++) {
          let s = bias ? bias[o] : 0, a = 0;
          const grp = Math.floor(o / Og);
          for (let ci = 0; ci < Cg; ci++)
            for (let i = 0; i < c.KH; i++)
              for (let j = 0; j < c.KW; j++) {
                const iy = y * c.stride[0] + i * c.dilation[0] - c.padding[0];
                const ix = xo * c.stride[1] + j * c.dilation[1] - c.padding[1];
                const inside = iy >= 0 && iy < c.H && ix >= 0 && ix < c.W;
                const code = inside ? x[((n * c.C + grp * Cg + ci) * c.H + iy) * c.W + ix] : 0;
                const v = fn(w[((o * Cg + ci) * c.KH + i) * c.KW + j], code);
                s += v;
                a += Math.abs(v);
              }
          out[((n * c.O + o) * OH + y) * OW + xo] = s;
          absSum[((n * c.O + o) * OH + y) * OW + xo] = a;
        }
  return { out, absSum, shape: [c.N, c.O, OH, OW] };
}

export function options(c: Case) {
  return { stride: c.stride, dilation: c.dilation, padding: c.padding, groups: c.groups };
}

export function describeCase(c: Case): string {
  return JSON.stringify(c);
}

/** First index where two arrays differ, or -1. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * A test's skip reason when no WebGPU adapter exists, else false. CI installs a CPU Vulkan driver and
 * sets FASTER_CNN_REQUIRE_WEBGPU=1, so that a missing adapter fails there instead of skipping.
 */
export async function webgpuSkip(): Promise<string | false> {
  const { gpuUnavailableReason } = await import(new URL('../../dist/backends/webgpu/device.js', import.meta.url).href);
  const reason: string | null = await gpuUnavailableReason();
  return reason && process.env.FASTER_CNN_REQUIRE_WEBGPU !== '1' ? `no WebGPU adapter: ${reason}` : false;
}

/**
 * A small CNN: a 3 x 3 stem, a 1 x 1 expansion with a fused ReLU, a depthwise 3 x 3 at stride 2 with a fused clip, a
 * grouped 3 x 3 (2 groups), a 1 x 1 projection from 32 channels without activation (wide enough for the refit's
 * matrix products, as the grouped layer's windows are), global pooling and a dense head, random weights.
 * With refitLayers 'all' every layer but the edges (stem, head) is refitted, by default the 1 x 1 ones.
 */
export function refitNet(seed: number): RuntimeGraph {
  const r = rng(seed);
  const t = (shape: number[], scale: number): RuntimeTensor => ({ dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r.next() * 2 - 1) * scale) });
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 12, 12] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
    nodes: [
      { op: 'Conv', name: 'stem', inputs: ['x', 'w0', 'b0'], outputs: ['a0'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'r0', inputs: ['a0'], outputs: ['h0'], attrs: {} },
      { op: 'Conv', name: 'expand', inputs: ['h0', 'w1', 'b1'], outputs: ['h1'], attrs: { _act: 'relu' } },
      { op: 'Conv', name: 'depthwise', inputs: ['h1', 'w4', 'b4'], outputs: ['h4'], attrs: { group: 24, strides: [2, 2], pads: [1, 1, 1, 1], _act: 'clip', _min: 0, _max: 1.5 } },
      { op: 'Conv', name: 'grouped', inputs: ['h4', 'w5'], outputs: ['h5'], attrs: { group: 2, pads: [0, 1, 1, 0] } },
      { op: 'Conv', name: 'project', inputs: ['h5', 'w2'], outputs: ['h2'], attrs: {} },
      { op: 'GlobalAveragePool', name: 'pool', inputs: ['h2'], outputs: ['p'], attrs: {} },
      { op: 'Flatten', name: 'flat', inputs: ['p'], outputs: ['f'], attrs: {} },
      { op: 'Gemm', name: 'head', inputs: ['f', 'w3', 'b3'], outputs: ['y'], attrs: { transB: 1 } },
    ],
    consts: new Map([
      ['w0', t([16, 3, 3, 3], 0.5)], ['b0', t([16], 0.1)], ['w1', t([24, 16, 1, 1], 0.4)], ['b1', t([24], 0.1)],
      ['w4', t([24, 1, 3, 3], 0.5)], ['b4', t([24], 0.1)], ['w5', t([32, 12, 3, 3], 0.2)],
      ['w2', t([12, 32, 1, 1], 0.3)], ['w3', t([5, 12], 0.5)], ['b3', t([5], 0.1)],
    ]),
  };
}

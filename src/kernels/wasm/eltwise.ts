import { engineIfReady, stageF32, threadCount, type Engine } from '../../backends/wasm/engine.js';
import { keep } from '../../backends/wasm/float.js';
import type { Node } from '../../ir/graph.js';
import { numberAt, sizeOf, type Tensor } from '../../ir/tensor.js';
import { broadcastRuns, broadcastShapes } from '../../ops/broadcast.js';
import { attrFloat, registerKernel, type Inputs } from '../../ops/registry.js';
import { inferenceBatchNorm } from '../../ops/normalization.js';
import { applyFusedActivation, type FusedActivation } from '../../ops/conv.js';
import { releases } from '../../runtime/memory.js';

/**
 * Float32 elementwise ops in wasm SIMD (unary_f32, binary_f32): inputs read in place when a
 * kernel left them in wasm memory, outputs kept there for the next op. Used once the engine has
 * started (the session starts it before planning); the TypeScript loops take over where it cannot run.
 */

const UNARY: Record<string, number> = {
  Relu: 0, Clip: 1, Sigmoid: 2, Tanh: 3, Exp: 4, HardSigmoid: 5, HardSwish: 6, LeakyRelu: 7, Gelu: 8, _SiLU: 9, Sqrt: 10, Neg: 11, Abs: 12, Reciprocal: 13,
};
const BINARY: Record<string, number> = { Add: 0, Sub: 1, Mul: 2, Div: 3, Max: 4, Min: 5, PRelu: 6 };

/**
 * The output block a kernel wrote as a tensor (keep: a view of wasm memory where memory is
 * shared, which the session releases after its last reader; else a copy).
 */
export function finish(e: Engine, ptr: number, shape: number[]): Tensor {
  const k = keep(e, ptr, sizeOf(shape));
  if (k.data.buffer === e.memory.buffer) releases.set(k.data, k.release);
  return { dtype: 'float32', shape, data: k.data };
}

function params(op: string, ins: Inputs, node: Node): [number, number] {
  if (op === 'HardSigmoid') return [attrFloat(node, 'alpha', 0.2), attrFloat(node, 'beta', 0.5)];
  if (op === 'LeakyRelu') return [attrFloat(node, 'alpha', 0.01), 0];
  if (op === 'Clip') return [ins[1] ? numberAt(ins[1], 0) : attrFloat(node, 'min', -Infinity), ins[2] ? numberAt(ins[2], 0) : attrFloat(node, 'max', Infinity)];
  return [0, 0];
}

/**
 * From this many floats on, a unary op with an exp or erf in it splits over the threads (below, the
 * hand-off costs more than it saves). The cheap ones and the binary ops are bound by memory, and
 * split they measured slower (docs/perf-notes.md 49).
 */
const SPLIT_FLOATS = 1 << 15;
const TRANSCENDENTAL = new Set(['Sigmoid', 'Tanh', 'Exp', 'Gelu', '_SiLU']);

/**
 * Runs task(at, len) over [0, n): in one piece on this thread (called directly, no hand-off), or in
 * pieces of whole vectors, one per thread, where n is large and more than one thread is allowed.
 */
async function split(e: Engine, n: number, threads: number | undefined, task: (at: number, len: number) => { fn: string; args: number[] }): Promise<void> {
  const T = threadCount(e, threads, Math.floor(n / SPLIT_FLOATS)), v = n >> 2;
  const call = (t: { fn: string; args: number[] }) => (e.kernels[t.fn as 'unary_f32'] as (...a: number[]) => void)(...t.args);
  if (T === 1) return call(task(0, n));
  const cut = (t: number) => (t === T ? n : Math.floor((v * t) / T) * 4);
  await e.pool.run(Array.from({ length: T }, (_, t) => task(cut(t), cut(t + 1) - cut(t))), call);
}

for (const [op, code] of Object.entries(UNARY)) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-simd',
    supports: (ins, node) => !!engineIfReady() && ins[0]?.dtype === 'float32' && sizeOf(ins[0].shape) > 0
      && (op !== 'Clip' || ins.slice(1).every((t) => !t || (t.dtype === 'float32' && t.data.length === 1)))
      && (op !== 'Gelu' || (node.attrs.approximate ?? 'none') === 'none'),
    async run(ins, node, ctx) {
      const e = engineIfReady()!, x = ins[0]!, n = sizeOf(x.shape);
      const [p, q] = params(op, ins, node);
      const src = stageF32(e, x.data as Float32Array);
      try {
        const out = e.heap.alloc(n * 4);
        await split(e, n, TRANSCENDENTAL.has(op) ? ctx.threads : 1, (at, len) => ({ fn: 'unary_f32', args: [code, src.ptr + at * 4, out + at * 4, len, p, q] }));
        return [finish(e, out, x.shape)];
      } finally {
        src.release();
      }
    },
  });
}

/**
 * Inference batch normalization in one wasm call: y = x * k + (b - mean * k), k = scale / sqrt(var + eps),
 * k and the offset rounded to float32 (the JS twin keeps them in float64: within float tolerance).
 */
registerKernel({
  op: 'BatchNormalization', backend: 'wasm', variant: 'f32-simd-planes',
  supports: (ins, node) => !!engineIfReady() && inferenceBatchNorm(ins, node) && sizeOf(ins[0]!.shape) > 0,
  async run(ins, node) {
    const e = engineIfReady()!;
    const [x, s, b, m, v] = ins.map((t) => t!.data as Float32Array);
    const eps = attrFloat(node, 'epsilon', 1e-5), [N, C] = ins[0]!.shape, P = sizeOf(ins[0]!.shape.slice(2));
    const src = stageF32(e, x), ko = e.heap.alloc(C * 8);
    try {
      const k = new Float32Array(e.memory.buffer, ko, 2 * C);
      for (let c = 0; c < C; c++) {
        const kc = s[c] / Math.sqrt(v[c] + eps);
        k[c] = kc;
        k[C + c] = b[c] - m[c] * kc;
      }
      const out = e.heap.alloc(N * C * P * 4);
      e.kernels.affine_planes_f32(src.ptr, out, N, C, P, ko, ko + C * 4);
      return [finish(e, out, ins[0]!.shape)];
    } finally {
      src.release();
      e.heap.release(ko);
    }
  },
});

for (const [op, code] of Object.entries(BINARY)) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-simd',
    supports: (ins, _node, ctx) => !!engineIfReady() && ins.length === 2 && ins[0]?.dtype === 'float32' && ins[1]?.dtype === 'float32'
      && !(op === 'PRelu' && ctx.opset < 7) && sizeOf(ins[0].shape) > 0 && sizeOf(ins[1].shape) > 0,
    async run(ins, node) {
      const e = engineIfReady()!, a = ins[0]!, b = ins[1]!;
      const shape = broadcastShapes(node, [a.shape, b.shape]);
      const sa = stageF32(e, a.data as Float32Array), sb = stageF32(e, b.data as Float32Array);
      try {
        const out = e.heap.alloc(sizeOf(shape) * 4);
        broadcastRuns(shape, a.shape, b.shape, (yo, ao, da, bo, db, n) =>
          e.kernels.binary_f32(code, sa.ptr + ao * 4, da, sb.ptr + bo * 4, db, out + yo * 4, n));
        return [finish(e, out, shape)];
      } finally {
        sa.release();
        sb.release();
      }
    },
  });
}

/**
 * Sum and Mean of any number of float32 inputs with broadcasting (TF's AddN): binary_f32 adds, one
 * input at a time, into blocks of the broadcast shape so far; Mean scaled at the end (affine op of
 * unary_f32). In float32, where the reference sums in float64: within float tolerance.
 */
for (const op of ['Sum', 'Mean']) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-simd-pairwise',
    supports: (ins) => !!engineIfReady() && ins.length >= 1 && ins.every((t) => t?.dtype === 'float32' && sizeOf(t.shape) > 0),
    async run(ins, node) {
      const e = engineIfReady()!;
      const staged = ins.map((t) => stageF32(e, t!.data as Float32Array));
      let shape = ins[0]!.shape, acc = staged[0].ptr, mine = false;
      try {
        if (ins.length === 1) {
          const out = e.heap.alloc(sizeOf(shape) * 4);
          e.kernels.unary_f32(14, acc, out, sizeOf(shape), 1, 0);
          acc = out;
          mine = true;
        }
        for (let i = 1; i < ins.length; i++) {
          const next = broadcastShapes(node, [shape, ins[i]!.shape]), out = e.heap.alloc(sizeOf(next) * 4);
          broadcastRuns(next, shape, ins[i]!.shape, (yo, ao, da, bo, db, n) =>
            e.kernels.binary_f32(BINARY.Add, acc + ao * 4, da, staged[i].ptr + bo * 4, db, out + yo * 4, n));
          if (mine) e.heap.release(acc);
          acc = out;
          mine = true;
          shape = next;
        }
        if (op === 'Mean') e.kernels.unary_f32(14, acc, acc, sizeOf(shape), 1 / ins.length, 0);
        mine = false;
        return [finish(e, acc, shape)];
      } finally {
        if (mine) e.heap.release(acc);
        for (const s of staged) s.release();
      }
    },
  });
}

const ACT_CODES: Partial<Record<FusedActivation['kind'], number>> = { relu: 0, clip: 1, sigmoid: 2, tanh: 3, hardswish: 6, leaky: 7, silu: 9 };

/**
 * A fused activation applied in place in wasm SIMD, split over the threads where it has an exp in it
 * (its TypeScript twin, applyFusedActivation, where the engine cannot run).
 */
export async function activateInPlace(a: FusedActivation, y: Float32Array, threads?: number): Promise<void> {
  const e = engineIfReady(), code = ACT_CODES[a.kind];
  if (a.kind === 'none') return;
  if (!e || code === undefined) {
    applyFusedActivation(a, y);
    return;
  }
  const src = stageF32(e, y), p = a.kind === 'leaky' ? a.alpha : a.min;
  try {
    const transcendental = a.kind === 'sigmoid' || a.kind === 'tanh' || a.kind === 'silu';
    await split(e, y.length, transcendental ? threads : 1, (at, len) => ({ fn: 'unary_f32', args: [code, src.ptr + at * 4, src.ptr + at * 4, len, p, a.max] }));
    if (y.buffer !== e.memory.buffer) y.set(new Float32Array(e.memory.buffer, src.ptr, y.length));
  } finally {
    src.release();
  }
}

import { conv as convWasm, poolFast } from './conv-f32.js';
import { engineIfReady, stageF32, threadCount } from '../../backends/wasm/engine.js';
import { matmulF32 } from '../../backends/wasm/float.js';
import { broadcastIndex, broadcastShapes } from '../../ops/broadcast.js';
import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import { gemm } from '../../nn/gemm.js';
import { attrFloat, attrInt, registerKernel, type Inputs } from '../../ops/registry.js';
import { fusedActivation, transposeGeometry, type FusedActivation } from '../../ops/conv.js';
import { activateInPlace, finish } from './eltwise.js';
import { windowOf } from '../../ops/window.js';
import { releases } from '../../runtime/memory.js';

/**
 * The float32 wasm kernels of the hot ops, wrapping the SIMD kernels on the worker threads
 * (src/backends/wasm/float.ts). Each applies only where `supports` says; the reference op in
 * src/ops is its twin (test/runtime.test.ts compares them over a grid of shapes).
 */

const isF32 = (t: Tensor | undefined): t is Tensor => t?.dtype === 'float32';

/** The activations the GEMM epilogue applies itself (ReLU, ReLU6); the rest run after it (activateInPlace). */
function epilogueAct(act: FusedActivation): 'relu' | 'relu6' | 'none' {
  return act.kind === 'relu' ? 'relu' : act.kind === 'clip' && act.min === 0 && act.max === 6 ? 'relu6' : 'none';
}

/** Kept outputs live in wasm memory until the session releases them. */
function kept(t: { data: Float32Array; shape: number[]; release?: () => void }): Tensor {
  if (t.release) releases.set(t.data, t.release);
  return { dtype: 'float32', shape: t.shape, data: t.data };
}

registerKernel({
  op: 'Conv', backend: 'wasm', variant: 'f32-gemm-2d',
  supports: (ins) => isF32(ins[0]) && isF32(ins[1]) && ins[0].shape.length === 4 && (ins[2] === undefined || isF32(ins[2])),
  async run(ins, node, ctx) {
    const x = ins[0]!, w = ins[1]!, b = ins[2];
    const win = windowOf(node, x.shape, w.shape.slice(2));
    const act = fusedActivation(node), fast = epilogueAct(act);
    const attrs = {
      stride: win.strides, dilation: win.dilations, pad: [win.begin[0], win.begin[1], win.end[0], win.end[1]], group: attrInt(node, 'group', 1), act: fast,
    };
    const out = [x.shape[0], w.shape[0], ...win.out];
    const y = await convWasm(f32(x), f32(w), b && f32(b), attrs, out, ctx.threads, ctx.constant?.(w) ?? false);
    if (fast === 'none' && act.kind !== 'none') await activateInPlace(act, y.data, ctx.threads);
    return [kept(y)];
  },
});

const f32 = (t: Tensor) => ({ data: t.data as Float32Array, shape: t.shape });

/**
 * b [K][N] as [N][K]; kept per array where `cache` (constants), made fresh otherwise. In wasm
 * where the engine runs: a constant's transpose happens on a model's first call, when a JS loop
 * would still run unoptimized (8 ms for MobileNetV2's classifier weights).
 */
const transposed = new WeakMap<Float32Array, Float32Array>();
function transposeOnce(b: Float32Array, K: number, N: number, cache: boolean): Float32Array {
  let t = cache ? transposed.get(b) : undefined;
  if (!t || t.length !== K * N) {
    const e = engineIfReady();
    if (e) {
      const src = stageF32(e, b), dst = e.heap.alloc(K * N * 4);
      e.kernels.transpose_f32(src.ptr, dst, K, N);
      t = new Float32Array(e.memory.buffer, dst, K * N).slice();
      e.heap.release(dst);
      src.release();
    } else {
      t = new Float32Array(K * N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) t[n * K + k] = b[k * N + n];
    }
    if (cache) transposed.set(b, t);
  }
  return t;
}

/**
 * Gemm with constant-like B as a pointwise convolution of x^T: the weights are laid out once per
 * array (as a convolution's) and the output rows (features) split over the threads, where a
 * plain GEMM on a batch of one would run one thread over a single row of A.
 */
registerKernel({
  op: 'Gemm', backend: 'wasm', variant: 'f32-pointwise',
  supports: (ins, node) => isF32(ins[0]) && isF32(ins[1]) && ins[0].shape.length === 2 && ins[1].shape.length === 2 && attrInt(node, 'transA', 0) === 0
    && (ins[2] === undefined || (isF32(ins[2]) && sizeOf(ins[2].shape) === (attrInt(node, 'transB', 0) ? ins[1].shape[0] : ins[1].shape[1]) && ins[2].shape.length <= 2 && (ins[2].shape.length < 2 || ins[2].shape[0] === 1))),
  async run(ins, node, ctx) {
    const a = ins[0]!, b = ins[1]!, c = ins[2];
    const tB = attrInt(node, 'transB', 0) === 1, alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    const [M, K] = a.shape, N = tB ? b.shape[0] : b.shape[1];
    // W [N][K] (output features x inputs), scaled by alpha: once per array where B is a constant.
    const constant = ctx.constant?.(b) ?? false;
    const w = weightRows(b.data as Float32Array, tB, K, N, alpha, constant);
    const bias = c ? biasOnce(c.data as Float32Array, beta, ctx.constant?.(c) ?? false) : undefined;
    const xT = M === 1 ? a.data as Float32Array : transposeOnce(a.data as Float32Array, M, K, false);
    const act = fusedActivation(node), fast = epilogueAct(act);
    const attrs = { stride: [1, 1], dilation: [1, 1], pad: [0, 0, 0, 0], group: 1, act: fast };
    const y = await convWasm({ data: xT, shape: [1, K, M, 1] }, { data: w, shape: [N, K, 1, 1] }, bias && { data: bias, shape: [N] }, attrs, [1, N, M, 1], ctx.threads, constant);
    let out = y.data;
    if (M > 1) {
      out = transposeOnce(y.data, N, M, false);
      y.release?.();
    } else if (y.release) releases.set(out, y.release);
    if (fast === 'none' && act.kind !== 'none') await activateInPlace(act, out, ctx.threads);
    return [{ dtype: 'float32', shape: [M, N], data: out }];
  },
});

/** A weight as rows of output features [N][K], times alpha: laid out once per array where it is a constant (`cache`). */
const rows = new WeakMap<Float32Array, { key: string; w: Float32Array }>();
function weightRows(b: Float32Array, transB: boolean, K: number, N: number, alpha: number, cache: boolean): Float32Array {
  const key = `${transB}/${K}/${N}/${alpha}`;
  const had = cache ? rows.get(b) : undefined;
  if (had?.key === key) return had.w;
  const w = !transB ? transposeOnce(b, K, N, false) : alpha === 1 ? b : Float32Array.from(b);
  if (alpha !== 1) for (let i = 0; i < w.length; i++) w[i] *= alpha;
  if (cache) rows.set(b, { key, w });
  return w;
}

const scaledBias = new WeakMap<Float32Array, { beta: number; v: Float32Array }>();
function biasOnce(c: Float32Array, beta: number, cache: boolean): Float32Array {
  if (beta === 1) return c;
  const had = cache ? scaledBias.get(c) : undefined;
  if (had?.beta === beta) return had.v;
  const v = c.map((x) => x * beta);
  if (cache) scaledBias.set(c, { beta, v });
  return v;
}

/**
 * ConvTranspose (2-d) as a GEMM and a scatter: columns [O*KH*KW][H*W] = W^T x, then each column
 * adds into the output pixels its taps reach (col2im).
 */
registerKernel({
  op: 'ConvTranspose', backend: 'wasm', variant: 'f32-gemm-col2im',
  supports: (ins, node) => isF32(ins[0]) && isF32(ins[1]) && ins[0].shape.length === 4 && ins[1].shape.length === 4 && attrInt(node, 'group', 1) === 1
    && (ins[2] === undefined || isF32(ins[2])),
  async run(ins, node, ctx) {
    const x = ins[0]!, w = ins[1]!, b = ins[2];
    const [N, C, H, W] = x.shape, [, O, KH, KW] = w.shape;
    // The geometry (output size and padding) is the reference's.
    const geo = transposeGeometry(node, x.shape, w.shape);
    const { out: [OH, OW], begin: [pt, pl], strides: [sh, sw], dilations: [dh, dw] } = geo;
    const wt = transposeOnce(w.data as Float32Array, C, O * KH * KW, ctx.constant?.(w) ?? false);
    const y = new Float32Array(N * O * OH * OW);
    const cols = new Float32Array(O * KH * KW * H * W);
    for (let n = 0; n < N; n++) {
      await gemm(wt, (x.data as Float32Array).subarray(n * C * H * W, (n + 1) * C * H * W), cols, O * KH * KW, H * W, C, { threads: ctx.threads });
      for (let o = 0; o < O; o++) {
        const yo = (n * O + o) * OH * OW;
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            const row = ((o * KH + kh) * KW + kw) * H * W;
            for (let ih = 0; ih < H; ih++) {
              const oh = ih * sh - pt + kh * dh;
              if (oh < 0 || oh >= OH) continue;
              const base = yo + oh * OW, src = row + ih * W;
              for (let iw = 0; iw < W; iw++) {
                const ow = iw * sw - pl + kw * dw;
                if (ow >= 0 && ow < OW) y[base + ow] += cols[src + iw];
              }
            }
          }
        }
      }
    }
    if (b) {
      const bd = b.data as Float32Array;
      for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let i = (n * O + o) * OH * OW; i < (n * O + o + 1) * OH * OW; i++) y[i] += bd[o];
    }
    return [{ dtype: 'float32', shape: [N, O, OH, OW], data: y }];
  },
});

/**
 * MatMul of A [..., M, K] (the batch folds into the rows) by a 2-d B, with the bias the optimizer
 * fused into it (a third input of N values) added in the GEMM's accumulators.
 */
registerKernel({
  op: 'MatMul', backend: 'wasm', variant: 'f32-gemm',
  supports: (ins) => !!engineIfReady() && isF32(ins[0]) && isF32(ins[1]) && ins[0].shape.length >= 2 && ins[1].shape.length === 2
    && ins[0].shape[ins[0].shape.length - 1] === ins[1].shape[0] && (ins[2] === undefined || (isF32(ins[2]) && sizeOf(ins[2].shape) === ins[1].shape[1])),
  async run(ins, _node, ctx) {
    const a = ins[0]!, b = ins[1]!, c = ins[2];
    const K = b.shape[0], N = b.shape[1], M = sizeOf(a.shape) / K;
    const constant = (t: Tensor | undefined) => (t ? ctx.constant?.(t) ?? false : false);
    const y = await matmulF32(a.data as Float32Array, b.data as Float32Array, c?.data as Float32Array | undefined, M, K, N, ctx.threads, constant(b) && (!c || constant(c)));
    return [kept({ ...y!, shape: [...a.shape.slice(0, -1), N] })];
  },
});

/**
 * MatMul with batch axes on B ([..., M, K] x [..., K, N], broadcast as numpy does): one call per
 * thread over a range of batches, each batch laid out, multiplied and stored in wasm.
 */
registerKernel({
  op: 'MatMul', backend: 'wasm', variant: 'f32-gemm-batched',
  supports: (ins, node) => {
    const [a, b] = ins;
    if (!engineIfReady() || ins[2] || !isF32(a) || !isF32(b) || a.shape.length < 2 || b.shape.length < 3 || a.shape[a.shape.length - 1] !== b.shape[b.shape.length - 2]) return false;
    try {
      return sizeOf(broadcastShapes(node, [a.shape.slice(0, -2), b.shape.slice(0, -2)])) > 0 && sizeOf(a.shape) > 0 && sizeOf(b.shape) > 0;
    } catch {
      return false;
    }
  },
  async run(ins, node, ctx) {
    const e = engineIfReady()!, a = ins[0]!, b = ins[1]!;
    const ra = a.shape.length, rb = b.shape.length;
    const M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
    const batch = broadcastShapes(node, [a.shape.slice(0, -2), b.shape.slice(0, -2)]);
    const B = sizeOf(batch), T = threadCount(e, ctx.threads, B);
    const scratch = (Math.ceil(M / 4) * 4 + Math.ceil(N / 8) * 8) * K + Math.ceil(M / 4) * 4 * Math.ceil(N / 8) * 8;
    const sa = stageF32(e, a.data as Float32Array), sb = stageF32(e, b.data as Float32Array);
    const index = e.heap.alloc(2 * B * 4), work = e.heap.alloc(T * scratch * 4), y = e.heap.alloc(B * M * N * 4);
    let done = false;
    try {
      const idx = new Int32Array(e.memory.buffer, index, 2 * B);
      idx.set(broadcastIndex(batch, a.shape.slice(0, -2)));
      idx.set(broadcastIndex(batch, b.shape.slice(0, -2)), B);
      const tasks = Array.from({ length: T }, (_, t) => ({
        fn: 'matmul_batched_f32', args: [sa.ptr, sb.ptr, y, index, index + B * 4, M, K, N, work + t * scratch * 4, Math.floor((B * t) / T), Math.floor((B * (t + 1)) / T)],
      }));
      await e.pool.run(tasks, (t) => (e.kernels.matmul_batched_f32 as (...x: number[]) => void)(...t.args));
      done = true;
      return [finish(e, y, [...batch, M, N])];
    } finally {
      if (!done) e.heap.release(y);
      for (const p of [index, work]) e.heap.release(p);
      sa.release();
      sb.release();
    }
  },
});

/** 2-d pooling the wasm kernel computes exactly as ONNX does: no dilation, and padded cells averaged only where every window lies in the padded input. */
function poolSupported(ins: Inputs, node: Node, max: boolean): boolean {
  const x = ins[0];
  if (!isF32(x) || x.shape.length !== 4 || (node.attrs.dilations as number[] | undefined)?.some((d) => d !== 1)) return false;
  if (max) return node.outputs.length === 1;
  const w = windowOf(node, x.shape);
  const insidePad = w.out.every((o, i) => (o - 1) * w.strides[i] + w.kernel[i] <= w.spatial[i] + w.begin[i] + w.end[i]);
  return attrInt(node, 'count_include_pad', 0) === 0 ? true : insidePad;
}

for (const [op, max] of [['MaxPool', true], ['AveragePool', false]] as const) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-pool-2d',
    supports: (ins, node) => poolSupported(ins, node, max),
    async run(ins, node, ctx) {
      const x = ins[0]!;
      const w = windowOf(node, x.shape);
      const attrs = { kernel: w.kernel, stride: w.strides, pad: [w.begin[0], w.begin[1], w.end[0], w.end[1]], countPad: attrInt(node, 'count_include_pad', 0) };
      return [kept(await poolFast(f32(x), attrs, [x.shape[0], x.shape[1], ...w.out], max, ctx.threads))];
    },
  });
}


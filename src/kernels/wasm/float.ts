import { conv as convWasm, poolFast } from '../../graph/ops.js';
import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import { gemm } from '../../nn/gemm.js';
import { attrFloat, attrInt, registerKernel, type Inputs } from '../../ops/registry.js';
import { applyFusedActivation, fusedActivation } from '../../ops/conv.js';
import { windowOf } from '../../ops/window.js';
import { releases } from '../../runtime/memory.js';

/**
 * The float32 wasm kernels of the hot ops, wrapping the SIMD kernels on the worker threads
 * (src/backends/wasm/float.ts). Each applies only where `supports` says; the reference op in
 * src/ops is its twin (test/runtime.test.ts compares them over a grid of shapes).
 */

const isF32 = (t: Tensor | undefined): t is Tensor => t?.dtype === 'float32';

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
    const act = fusedActivation(node);
    const fast = act.kind === 'relu' ? 'relu' : act.kind === 'clip' && act.min === 0 && act.max === 6 ? 'relu6' : 'none';
    const attrs = {
      stride: win.strides, dilation: win.dilations, pad: [win.begin[0], win.begin[1], win.end[0], win.end[1]], group: attrInt(node, 'group', 1), act: fast,
    };
    const out = [x.shape[0], w.shape[0], ...win.out];
    const y = await convWasm(f32(x), f32(w), b && f32(b), attrs, out, ctx.threads);
    if (fast === 'none' && act.kind !== 'none') applyFusedActivation(act, y.data);
    return [kept(y)];
  },
});

const f32 = (t: Tensor) => ({ data: t.data as Float32Array, shape: t.shape });

/** B^T of a constant weight, laid out once per array. */
const transposed = new WeakMap<Float32Array, Float32Array>();
function transposeOnce(b: Float32Array, K: number, N: number): Float32Array {
  let t = transposed.get(b);
  if (!t) {
    t = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) t[n * K + k] = b[k * N + n];
    transposed.set(b, t);
  }
  return t;
}

registerKernel({
  op: 'Gemm', backend: 'wasm', variant: 'f32-gemm',
  supports: (ins, node) => isF32(ins[0]) && isF32(ins[1]) && ins[0].shape.length === 2 && attrInt(node, 'transA', 0) === 0
    && (ins[2] === undefined || (isF32(ins[2]) && sizeOf(ins[2].shape) === (attrInt(node, 'transB', 0) ? ins[1].shape[0] : ins[1].shape[1]) && ins[2].shape.length <= 2 && (ins[2].shape.length < 2 || ins[2].shape[0] === 1))),
  async run(ins, node, ctx) {
    const a = ins[0]!, b = ins[1]!, c = ins[2];
    const tB = attrInt(node, 'transB', 0) === 1, alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    const [M, K] = a.shape, N = tB ? b.shape[0] : b.shape[1];
    const y = new Float32Array(M * N);
    await gemm(a.data as Float32Array, b.data as Float32Array, y, M, N, K, { transB: tB, threads: ctx.threads });
    const cd = c?.data as Float32Array | undefined;
    if (alpha !== 1 || cd) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) y[m * N + n] = alpha * y[m * N + n] + (cd ? beta * cd[n] : 0);
    const act = fusedActivation(node);
    if (act.kind !== 'none') applyFusedActivation(act, y);
    return [{ dtype: 'float32', shape: [M, N], data: y }];
  },
});

registerKernel({
  op: 'MatMul', backend: 'wasm', variant: 'f32-gemm',
  // A [..., M, K] times a 2-d B: the batch folds into the rows.
  supports: (ins) => isF32(ins[0]) && isF32(ins[1]) && ins[0].shape.length >= 2 && ins[1].shape.length === 2 && ins[0].shape[ins[0].shape.length - 1] === ins[1].shape[0],
  async run(ins, _node, ctx) {
    const a = ins[0]!, b = ins[1]!;
    const K = b.shape[0], N = b.shape[1], M = sizeOf(a.shape) / K;
    const y = new Float32Array(M * N);
    await gemm(a.data as Float32Array, transposeOnce(b.data as Float32Array, K, N), y, M, N, K, { transB: true, threads: ctx.threads });
    return [{ dtype: 'float32', shape: [...a.shape.slice(0, -1), N], data: y }];
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


import { sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { broadcastIndex, broadcastShapes } from './broadcast.js';
import { applyFusedActivation, fusedActivation } from './conv.js';
import { attrFloat, attrInt, checkDType, defineOp, fail, need } from './registry.js';

/** y[m][n] = sum_k a[m][k] * b[k][n], row-major blocks at the given offsets (the reference loop). */
function mm(a: Float32Array, ao: number, b: Float32Array, bo: number, y: Float32Array, yo: number, M: number, K: number, N: number): void {
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const v = a[ao + m * K + k];
      if (v === 0) continue;
      const br = bo + k * N, yr = yo + m * N;
      for (let n = 0; n < N; n++) y[yr + n] += v * b[br + n];
    }
  }
}

/** The same loop on int32, wrapping as 32-bit integer arithmetic does. */
function mmInt(a: Int32Array, ao: number, b: Int32Array, bo: number, y: Int32Array, yo: number, M: number, K: number, N: number): void {
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const v = a[ao + m * K + k];
      const br = bo + k * N, yr = yo + m * N;
      for (let n = 0; n < N; n++) y[yr + n] = (y[yr + n] + Math.imul(v, b[br + n])) | 0;
    }
  }
}

/** Numpy matmul: 1-d operands promoted and their axis removed, batch axes broadcast. */
export function matmulRef(node: Node, a: Tensor, b: Tensor): Tensor {
  checkDType(node, a, ['float32', 'int32']);
  if (b.dtype !== a.dtype) fail(node, `inputs are ${a.dtype} and ${b.dtype}; they must have one dtype`);
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape, bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  if (as.length < 2 || bs.length < 2) fail(node, 'operands must not be scalars');
  const M = as[as.length - 2], K = as[as.length - 1], K2 = bs[bs.length - 2], N = bs[bs.length - 1];
  if (K !== K2) fail(node, `[${a.shape}] x [${b.shape}]: inner sizes ${K} and ${K2} differ`);
  const batch = broadcastShapes(node, [as.slice(0, -2), bs.slice(0, -2)]);
  const ia = broadcastIndex(batch, as.slice(0, -2)), ib = broadcastIndex(batch, bs.slice(0, -2));
  const shape = [...batch, M, N];
  const y = zeros(a.dtype, shape);
  for (let i = 0; i < sizeOf(batch); i++) {
    if (a.dtype === 'int32') mmInt(a.data as Int32Array, ia[i] * M * K, b.data as Int32Array, ib[i] * K * N, y.data as Int32Array, i * M * N, M, K, N);
    else mm(a.data as Float32Array, ia[i] * M * K, b.data as Float32Array, ib[i] * K * N, y.data as Float32Array, i * M * N, M, K, N);
  }
  const outShape = [...batch, ...(a.shape.length === 1 ? [] : [M]), ...(b.shape.length === 1 ? [] : [N])];
  return { ...y, shape: outShape };
}

/**
 * MatMul; a third input is not ONNX's: the optimizer fuses an Add of N values along the last axis
 * into the MatMul before it (src/passes/optimize.ts), and the ONNX writer splits it out again.
 */
defineOp({
  op: 'MatMul', inputs: [2, 3],
  run(ins, node) {
    const y = matmulRef(node, need(ins, 0, node), need(ins, 1, node)), bias = ins[2];
    if (!bias) return [y];
    const N = y.shape[y.shape.length - 1] ?? 1;
    checkDType(node, bias, [y.dtype]);
    if (sizeOf(bias.shape) !== N) fail(node, `the fused bias [${bias.shape}] must hold the ${N} values of the output's last axis`);
    const yd = y.data as Float32Array | Int32Array, bd = bias.data as Float32Array | Int32Array;
    for (let i = 0; i < yd.length; i++) yd[i] += bd[i % N];
    return [y];
  },
});

defineOp({
  op: 'Gemm', inputs: [2, 3],
  run(ins, node) {
    const a = need(ins, 0, node), b = need(ins, 1, node), c = ins[2];
    checkDType(node, a, ['float32']);
    if (a.shape.length !== 2 || b.shape.length !== 2) fail(node, `needs 2-d operands, got [${a.shape}] and [${b.shape}]`);
    const tA = attrInt(node, 'transA', 0) === 1, tB = attrInt(node, 'transB', 0) === 1;
    const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    const [M, K] = tA ? [a.shape[1], a.shape[0]] : a.shape, [K2, N] = tB ? [b.shape[1], b.shape[0]] : b.shape;
    if (K !== K2) fail(node, `inner sizes ${K} and ${K2} differ`);
    const ad = a.data as Float32Array, bd = b.data as Float32Array;
    const y = zeros('float32', [M, N]), yd = y.data as Float32Array;
    const ic = c ? broadcastIndex([M, N], c.shape) : null;
    if (c && broadcastShapes(node, [[M, N], c.shape]).some((d, i) => d !== [M, N][i])) fail(node, `C [${c.shape}] does not broadcast to [${M}, ${N}]`);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += ad[tA ? k * M + m : m * K + k] * bd[tB ? n * K + k : k * N + n];
        yd[m * N + n] = alpha * s + (c ? beta * (c.data as Float32Array)[ic![m * N + n]] : 0);
      }
    }
    applyFusedActivation(fusedActivation(node), yd);
    return [y];
  },
});

import { getEngine, threadCount } from '../backends/wasm/engine.js';

/**
 * C[M][N] = A[M][K] * B[K][N] (+ C when accumulate), row-major Float32Arrays, with optional
 * transposed inputs (transA: A is stored [K][M]; transB: B is stored [N][K]).
 * Runs the wasm SIMD kernel on the worker threads; the JS loop is the fallback and the reference.
 */
export async function gemm(A: Float32Array, B: Float32Array, C: Float32Array, M: number, N: number, K: number,
  opts: { transA?: boolean; transB?: boolean; accumulate?: boolean; threads?: number } = {}): Promise<void> {
  let e;
  try {
    e = await getEngine();
  } catch {
    return gemmJs(A, B, C, M, N, K, opts);
  }
  const M4 = Math.ceil(M / 4) * 4, N8 = Math.ceil(N / 8) * 8;
  const heap = e.heap;
  const pa = heap.alloc(M4 * K * 4), pb = heap.alloc(N8 * K * 4), pc = heap.alloc(M4 * N8 * 4);
  const staging = heap.alloc(Math.max(M * K, N * K) * 4);
  try {
    let buf = e.memory.buffer;
    // A as [M4][K] (zero rows beyond M); B in panels of 8 columns. Layout work runs in wasm.
    if (opts.transA) {
      new Float32Array(buf, staging, M * K).set(A.subarray(0, M * K));
      e.kernels.transpose_f32(staging, pa, K, M);
    } else new Float32Array(buf, pa, M * K).set(A.subarray(0, M * K));
    new Float32Array(buf, pa + M * K * 4, (M4 - M) * K).fill(0);
    new Float32Array(buf, staging, N * K).set(B.subarray(0, N * K));
    e.kernels.pack_panels(staging, pb, K, N, N8, opts.transB ? 1 : 0);
    buf = e.memory.buffer;
    const c = new Float32Array(buf, pc, M4 * N8);
    if (opts.accumulate) {
      for (let i = 0; i < M; i++) c.set(C.subarray(i * N, i * N + N), i * N8);
    }
    const blocks = M4 / 4;
    const T = threadCount(e, opts.threads, blocks);
    const tasks = Array.from({ length: T }, (_, t) => ({
      fn: 'sgemm',
      args: [pa, pb, pc, M4, N8, K, opts.accumulate ? 1 : 0, Math.floor((blocks * t) / T) * 4, Math.floor((blocks * (t + 1)) / T) * 4],
    }));
    await e.pool.run(tasks, (t) => e!.kernels.sgemm(...(t.args as [number, number, number, number, number, number, number, number, number])));
    const out = new Float32Array(e.memory.buffer, pc, M4 * N8);
    for (let i = 0; i < M; i++) C.set(out.subarray(i * N8, i * N8 + N), i * N);
  } finally {
    heap.release(pa);
    heap.release(pb);
    heap.release(pc);
    heap.release(staging);
  }
}

export function gemmJs(A: Float32Array, B: Float32Array, C: Float32Array, M: number, N: number, K: number,
  opts: { transA?: boolean; transB?: boolean; accumulate?: boolean } = {}): void {
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const a = opts.transA ? A[k * M + i] : A[i * K + k];
      if (a === 0) continue;
      if (opts.transB) for (let j = 0; j < N; j++) row[j] += a * B[j * K + k];
      else for (let j = 0, o = k * N; j < N; j++) row[j] += a * B[o + j];
    }
    for (let j = 0; j < N; j++) C[i * N + j] = (opts.accumulate ? C[i * N + j] : 0) + row[j];
  }
}

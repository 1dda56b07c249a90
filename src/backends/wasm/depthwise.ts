import { getEngine, stageF32, threadCount } from './engine.js';
import { P, PARAM_COUNT } from './params.js';

/** Geometry of a float depthwise convolution (one input channel per output channel). */
export interface DepthwiseShape {
  N: number; C: number; H: number; W: number; KH: number; KW: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; pb: number; pr: number; OH: number; OW: number;
}

/**
 * Float32 depthwise convolution in wasm SIMD on the worker threads: y[N, C, OH, OW] from
 * x[N, C, H, W], w[C, KH, KW] and an optional bias. Returns null where the engine cannot run
 * (the caller keeps its JS loop, which is also the reference the tests compare with).
 */
export async function depthwiseF32(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, s: DepthwiseShape, threads?: number): Promise<Float32Array | null> {
  let e;
  try {
    e = await getEngine();
  } catch {
    return null;
  }
  const Hp = s.H + s.pt + s.pb, Wp = s.W + s.pl + s.pr, K = s.KH * s.KW;
  const heap = e.heap;
  // The padded input gets 16 floats of slack: the vector loads of a row's last step may read past it.
  const inBytes = (s.N * s.C * Hp * Wp + 16) * 4;
  const allocs = [heap.alloc(x.length * 4), heap.alloc(inBytes), heap.alloc(w.length * 4), heap.alloc(K * 4), heap.alloc(PARAM_COUNT * 4),
    heap.alloc(s.N * s.C * s.OH * s.OW * 4), bias ? heap.alloc(s.C * 4) : 0];
  const [staging, input, wp, koff, params, out, bp] = allocs;
  try {
    const buf = e.memory.buffer;
    new Float32Array(buf, staging, x.length).set(x);
    // pad_input copies bytes: rows of W floats are 4W bytes.
    e.kernels.pad_input(staging, input, s.N * s.C, s.H, s.W * 4, Hp, Wp * 4, s.pt, s.pl * 4, inBytes);
    const b2 = e.memory.buffer;
    new Float32Array(b2, wp, w.length).set(w);
    if (bias) new Float32Array(b2, bp, s.C).set(bias);
    const ko = new Int32Array(b2, koff, K);
    for (let kh = 0; kh < s.KH; kh++) for (let kw = 0; kw < s.KW; kw++) ko[kh * s.KW + kw] = kh * s.dh * Wp + kw * s.dw;
    const p = new Int32Array(b2, params, PARAM_COUNT).fill(0);
    p[P.N] = s.N; p[P.C] = s.C; p[P.HP] = Hp; p[P.WP] = Wp; p[P.OH] = s.OH; p[P.OW] = s.OW;
    p[P.SH] = s.sh; p[P.SW] = s.sw; p[P.K] = K; p[P.IN] = input; p[P.OUT] = out; p[P.KOFF] = koff; p[P.BIAS] = bp; p[P.W] = wp;
    const rows = s.N * s.OH;
    const T = threadCount(e, threads, rows);
    const tasks = Array.from({ length: T }, (_, t) => ({ fn: 'depthwise_f32_rows', args: [params, Math.floor((rows * t) / T), Math.floor((rows * (t + 1)) / T), 0] }));
    await e.pool.run(tasks, (t) => e!.kernels.depthwise_f32_rows(t.args[0], t.args[1], t.args[2], t.args[3]));
    return new Float32Array(e.memory.buffer, out, s.N * s.C * s.OH * s.OW).slice();
  } finally {
    for (const a of allocs) if (a) heap.release(a);
  }
}

/** Pooling window geometry (planes = N * C). */
export interface PoolShape { planes: number; H: number; W: number; OH: number; OW: number; KH: number; KW: number; sh: number; sw: number; pt: number; pl: number }

/**
 * Max or average pooling of float32 planes in wasm on the worker threads (mode 0 max, 1 average
 * over the window inside the input, 2 average over KH * KW). null where the engine cannot run.
 */
export async function poolF32(x: Float32Array, s: PoolShape, mode: 0 | 1 | 2, threads?: number): Promise<Float32Array | null> {
  let e;
  try {
    e = await getEngine();
  } catch {
    return null;
  }
  const heap = e.heap;
  const staged = stageF32(e, x), src = staged.ptr;
  const out = heap.alloc(s.planes * s.OH * s.OW * 4);
  try {
    const T = x.length < 1 << 16 ? 1 : threadCount(e, threads, s.planes);
    const tasks = Array.from({ length: T }, (_, t) => ({
      fn: 'pool_f32',
      args: [src, out, Math.floor((s.planes * t) / T), Math.floor((s.planes * (t + 1)) / T), s.H, s.W, s.OH, s.OW, s.KH, s.KW, s.sh, s.sw, s.pt, s.pl, mode],
    }));
    await e.pool.run(tasks, (t) => (e!.kernels.pool_f32 as (...a: number[]) => void)(...t.args));
    return new Float32Array(e.memory.buffer, out, s.planes * s.OH * s.OW).slice();
  } finally {
    staged.release();
    heap.release(out);
  }
}

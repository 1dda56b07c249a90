import { getEngine, stageF32, threadCount, type Engine } from './engine.js';
import { P, PARAM_COUNT } from './params.js';
import { copyOf } from '../../tensor.js';

/**
 * A float layer's output: a view of wasm memory that the next layer reads in place, freed by
 * `release` once nothing reads it. Only where the memory is shared (growing it leaves views
 * intact); the single-threaded build gets a copy and a release that does nothing.
 */
export interface Kept { data: Float32Array; release(): void }

export function keep(e: Engine, ptr: number, length: number): Kept {
  const view = new Float32Array(e.memory.buffer, ptr, length);
  if (e.features.threads === null) return { data: view, release: () => e.heap.release(ptr) };
  const data = copyOf(view);
  e.heap.release(ptr);
  return { data, release: () => {} };
}

/** The engine, or null where it cannot run (the float kernels' callers then keep their JS paths). */
async function engineOrNull(): Promise<Engine | null> {
  try {
    return await getEngine();
  } catch {
    return null;
  }
}

/** Activations the float kernels apply in their epilogue. */
export const FLOAT_ACTS = { none: 0, relu: 1, relu6: 2 } as const;

/** Geometry of a float convolution by GEMM (NCHW, `groups` groups of C/groups inputs and O/groups outputs). */
export interface ConvF32Shape {
  N: number; C: number; H: number; W: number; O: number; groups: number; KH: number; KW: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; OH: number; OW: number;
}

/** A 1x1 convolution at stride 1 without padding: its input is its im2col matrix. */
export function isPointwise(s: { KH: number; KW: number; sh: number; sw: number; pt: number; pl: number; H: number; W: number; OH: number; OW: number }): boolean {
  return s.KH === 1 && s.KW === 1 && s.sh === 1 && s.sw === 1 && s.pt === 0 && s.pl === 0 && s.OH * s.OW === s.H * s.W;
}

/**
 * A layout of a weight-like array in wasm memory, written by `write` into a block of `floats` floats.
 * Where `cache` (a constant), made once per array, key and engine and freed with the array;
 * otherwise each call, into a block the caller frees (`temp`).
 */
const layouts = new WeakMap<Float32Array, Map<string, { engine: Engine; ptr: number }>>();
const freeLayouts = new FinalizationRegistry<{ engine: Engine; ptr: number }>(({ engine, ptr }) => engine.heap.release(ptr));

function laidOut(e: Engine, src: Float32Array, key: string, floats: number, cache: boolean, write: (ptr: number) => void): { ptr: number; temp: boolean } {
  const mine = cache ? layouts.get(src) ?? new Map<string, { engine: Engine; ptr: number }>() : undefined;
  const had = mine?.get(key);
  if (had?.engine === e) return { ptr: had.ptr, temp: false };
  const ptr = e.heap.alloc(floats * 4);
  write(ptr);
  if (!mine) return { ptr, temp: true };
  layouts.set(src, mine);
  mine.set(key, { engine: e, ptr });
  freeLayouts.register(src, { engine: e, ptr });
  return { ptr, temp: false };
}

/** Convolution weights laid out for sgemm, [groups][M4][K] with rows beyond O/groups zero. */
function weightsFor(e: Engine, w: Float32Array, s: { O: number; groups: number; K: number }, M4: number, cache: boolean): { ptr: number; temp: boolean } {
  return laidOut(e, w, `rows/${s.O}/${s.groups}/${s.K}`, s.groups * M4 * s.K, cache, (ptr) => {
    const Og = s.O / s.groups;
    const a = new Float32Array(e.memory.buffer, ptr, s.groups * M4 * s.K).fill(0);
    for (let g = 0; g < s.groups; g++) a.set(w.subarray(g * Og * s.K, (g + 1) * Og * s.K), g * M4 * s.K);
  });
}

/**
 * y[M][N] = a[M][K] * b[K][N] (+ bias[n]) in wasm on the worker threads (sgemm, or sgemm_bias with
 * the bias in the accumulators): `a` read in place when it is a kept output of whole 4-row blocks,
 * `b` packed into panels (and the bias padded to them) once per array where `constant`, the
 * output kept in wasm memory. null where the engine cannot run.
 */
export async function matmulF32(a: Float32Array, b: Float32Array, bias: Float32Array | undefined, M: number, K: number, N: number,
  threads?: number, constant = true): Promise<Kept | null> {
  const e = await engineOrNull();
  if (!e) return null;
  const M4 = Math.ceil(M / 4) * 4, N8 = Math.ceil(N / 8) * 8, heap = e.heap;
  const panels = laidOut(e, b, `panels/${K}/${N}`, N8 * K, constant, (ptr) => {
    const staged = stageF32(e, b);
    e.kernels.pack_panels(staged.ptr, ptr, K, N, N8, 0);
    staged.release();
  });
  const pbias = bias && laidOut(e, bias, `padded/${N8}`, N8, constant, (ptr) => {
    new Float32Array(e.memory.buffer, ptr, N8).fill(0).set(bias.subarray(0, N));
  });
  // A of whole 4-row blocks: in place where it is already in wasm memory, else copied with zero rows.
  const rows = M === M4 ? stageF32(e, a) : (() => {
    const ptr = heap.alloc(M4 * K * 4);
    new Float32Array(e.memory.buffer, ptr, M4 * K).fill(0, M * K).set(a.subarray(0, M * K));
    return { ptr, release: () => heap.release(ptr) };
  })();
  const pc = heap.alloc(M4 * N8 * 4);
  let kept = false;
  try {
    const blocks = M4 / 4, T = threadCount(e, threads, blocks);
    const range = (t: number) => [Math.floor((blocks * t) / T) * 4, Math.floor((blocks * (t + 1)) / T) * 4];
    const tasks = Array.from({ length: T }, (_, t) => pbias
      ? { fn: 'sgemm_bias', args: [rows.ptr, panels.ptr, pc, M4, N8, K, pbias.ptr, ...range(t)] }
      : { fn: 'sgemm', args: [rows.ptr, panels.ptr, pc, M4, N8, K, 0, ...range(t)] });
    await e.pool.run(tasks, (t) => (e.kernels[t.fn as 'sgemm'] as (...x: number[]) => void)(...t.args));
    kept = true;
    if (N === N8) return keep(e, pc, M * N);
    // Rows of N8 columns closed up to N, in place (each row moves down).
    const f = new Float32Array(e.memory.buffer), at = pc >> 2;
    for (let i = 1; i < M; i++) f.copyWithin(at + i * N, at + i * N8, at + i * N8 + N);
    return keep(e, pc, M * N);
  } finally {
    if (!kept) heap.release(pc);
    rows.release();
    if (panels.temp) heap.release(panels.ptr);
    if (pbias?.temp) heap.release(pbias.ptr);
  }
}

/**
 * A convolution at column stride 1 or 2 whose group's weights fit in this many bytes (in L2, where every
 * tile of pixels passes over them all) runs without im2col (conv_direct_f32); larger ones measured faster as
 * GEMMs on packed panels, the threads splitting the weights' rows (docs/perf-notes.md 50).
 */
const DIRECT_WEIGHT_BYTES = 256 * 1024;
/**
 * At column stride 2 a tap costs the direct kernel two more loads and two shuffles than a packed
 * panel does, which only saves packing's cost (one float packed per M multiply-adds) where a group
 * has few output channels: up to this many.
 */
const DIRECT_STRIDE2_ROWS = 32;

/**
 * Largest im2col panels a float convolution packs at once (bytes): larger images go in runs of pixels,
 * so that memory stays bounded and the panels are read back from the cache they were packed into,
 * not from DRAM (docs/perf-notes.md 62).
 */
const PANEL_BYTES = 32 << 20;

/** From this many groups on, a float convolution runs whole groups per thread (conv_groups_f32). */
const GROUPS_PER_TASK = 4;

/**
 * Float convolution as GEMMs in wasm on the worker threads: y[n][o][p] = act(sum_k w[o][k] b[k][p] +
 * bias[o]) for each image n and group g, b the group's im2col matrix [K][P], packed into sgemm's
 * panels straight from the input (on the threads; a pointwise convolution's input is the matrix
 * itself). The input is read in place when it is a kept output, constant weights are laid out once per
 * weight array, and the output stays in wasm memory. null where the engine cannot run (the caller
 * keeps its JS path, which is also the reference the tests compare with).
 */
export async function convF32(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, s: ConvF32Shape, act: number, threads?: number, constantWeights = true): Promise<Kept | null> {
  const e = await engineOrNull();
  if (!e) return null;
  const { N, O, groups, OH, OW } = s, Og = O / groups, Cg = s.C / groups;
  const K = Cg * s.KH * s.KW, P = OH * OW, HW = s.H * s.W;
  const pointwise = isPointwise(s);
  const M4 = Math.ceil(Og / 4) * 4, N8 = Math.ceil(P / 8) * 8;
  const heap = e.heap;
  const { ptr: pa, temp } = weightsFor(e, w, { O, groups, K }, M4, constantWeights);
  const staged = stageF32(e, x);
  const allocs: number[] = [];
  const alloc = (bytes: number) => {
    allocs.push(heap.alloc(bytes));
    return allocs[allocs.length - 1];
  };
  let kept = false;
  try {
    const geo = alloc(13 * 4), pbias = bias ? alloc(O * 4) : 0;
    // The output block is kept (the finally frees every other); the panels are allocated by the paths that pack them.
    const out = heap.alloc(N * O * P * 4);
    allocs.unshift(out);
    if (bias) new Float32Array(e.memory.buffer, pbias, O).set(bias);
    new Int32Array(e.memory.buffer, geo, 13).set([Cg, s.H, s.W, s.KH, s.KW, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, OW, P]);
    const blocks = M4 / 4, panels = N8 / 8;
    if (groups >= GROUPS_PER_TASK) {
      // Many groups: each thread takes a run of whole groups, with scratch panels of its own.
      const T = threadCount(e, threads, groups);
      // Each thread packs into panels of its own.
      const scratch = Array.from({ length: T }, () => [alloc(N8 * K * 4), alloc(M4 * N8 * 4)]);
      for (let n = 0; n < N; n++) {
        const tasks = scratch.map(([b, c], t) => ({
          fn: 'conv_groups_f32',
          args: [staged.ptr + n * s.C * HW * 4, out + n * O * P * 4, pa, b, c, geo, M4, N8, Og, P, pbias, act,
            Math.floor((groups * t) / T), Math.floor((groups * (t + 1)) / T), pointwise ? 1 : 0],
        }));
        await e.pool.run(tasks, (t) => (e.kernels.conv_groups_f32 as (...a: number[]) => void)(...t.args));
      }
      kept = true;
      return keep(e, out, N * O * P);
    }
    if ((s.sw === 1 || (s.sw === 2 && M4 <= DIRECT_STRIDE2_ROWS)) && !pointwise && M4 * K * 4 <= DIRECT_WEIGHT_BYTES) {
      await convDirect(e, staged.ptr, s, { K, M4, pa, pbias, act, out }, threads);
      kept = true;
      return keep(e, out, N * O * P);
    }
    const T = threadCount(e, threads, blocks);
    const rows = (t: number) => [Math.floor((blocks * t) / T) * 4, Math.floor((blocks * (t + 1)) / T) * 4];
    // An image's panels in runs of at most PANEL_BYTES (whole panels of 8 pixels), where they are larger:
    // a 3 x 3 convolution of 128 channels at 512 x 512 would otherwise pack 1.2 GB.
    const chunk = pointwise || N8 * K * 4 <= PANEL_BYTES ? panels : Math.max(1, Math.floor(PANEL_BYTES / (8 * K * 4)));
    const cols = chunk * 8, whole = chunk === panels;
    // sgemm_conv writes the output planes itself; sgemm_bias_act goes through a block of whole tiles.
    const direct = whole && M4 === Og && N8 === P;
    const pb = alloc(cols * K * 4), pc = direct ? 0 : alloc(M4 * cols * 4);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        const src = staged.ptr + (n * s.C + g * Cg) * HW * 4;
        const dst = out + (n * O + g * Og) * P * 4, gb = pbias ? pbias + g * Og * 4 : 0;
        for (let j0 = 0; j0 < panels; j0 += chunk) {
          const j1 = Math.min(panels, j0 + chunk), Tp = threadCount(e, threads, j1 - j0);
          if (pointwise) e.kernels.pack_panels(src, pb, K, P, N8, 0);
          else {
            // Panel j lands at base + j * 8K floats: the base is moved back by j0 panels, so that j0 lands on pb.
            const base = pb - j0 * 8 * K * 4;
            const packs = Array.from({ length: Tp }, (_, t) => ({ fn: 'pack_conv_panels', args: [src, base, geo, j0 + Math.floor(((j1 - j0) * t) / Tp), j0 + Math.floor(((j1 - j0) * (t + 1)) / Tp)] }));
            await e.pool.run(packs, (t) => e.kernels.pack_conv_panels(t.args[0], t.args[1], t.args[2], t.args[3], t.args[4]));
          }
          const c0 = j0 * 8, width = Math.min(P, j1 * 8) - c0, N8c = (j1 - j0) * 8;
          // Where the GEMM's rows and columns are the output's planes, it writes them itself.
          const tasks = Array.from({ length: T }, (_, t) => (direct
            ? { fn: 'sgemm_conv', args: [pa + g * M4 * K * 4, pb, dst, M4, N8, K, gb, act, ...rows(t)] }
            : { fn: 'sgemm_bias_act', args: [pa + g * M4 * K * 4, pb, pc, M4, N8c, K, ...rows(t), dst + c0 * 4, Og, width, P, gb, act] }));
          await e.pool.run(tasks, (t) => (e.kernels[t.fn as 'sgemm_conv'] as (...a: number[]) => void)(...t.args));
        }
      }
    }
    kept = true;
    return keep(e, out, N * O * P);
  } finally {
    for (const a of kept ? allocs.slice(1) : allocs) heap.release(a);
    if (temp) heap.release(pa);
    staged.release();
  }
}

/**
 * A convolution at column stride 1 or 2 without im2col (conv_direct_f32): the input zero-padded once,
 * then each thread computes a range of output rows of each image and group, reading the taps through
 * a table of offsets.
 */
async function convDirect(e: Engine, x: number, s: ConvF32Shape, l: { K: number; M4: number; pa: number; pbias: number; act: number; out: number },
  threads: number | undefined): Promise<void> {
  const { N, C, O, groups, OH, OW } = s, { K, M4 } = l, Cg = C / groups, Og = O / groups, P = OH * OW;
  // Every tap of every output pixel inside the padded planes, the input's rows and columns too.
  const Hp = Math.max(s.H + s.pt, (OH - 1) * s.sh + (s.KH - 1) * s.dh + 1), Wp = Math.max(s.W + s.pl, (OW - 1) * s.sw + (s.KW - 1) * s.dw + 1);
  // A row's last 8 pixels may read up to 15 floats past it, past the last plane too: 32 floats of slack.
  const bytes = (N * C * Hp * Wp + 32) * 4;
  const xp = e.heap.alloc(bytes), koff = e.heap.alloc(K * 4);
  try {
    e.kernels.pad_input(x, xp, N * C, s.H, s.W * 4, Hp, Wp * 4, s.pt, s.pl * 4, bytes);
    const ko = new Int32Array(e.memory.buffer, koff, K);
    for (let c = 0; c < Cg; c++) {
      for (let kh = 0; kh < s.KH; kh++) for (let kw = 0; kw < s.KW; kw++) ko[(c * s.KH + kh) * s.KW + kw] = ((c * Hp + kh * s.dh) * Wp + kw * s.dw) * 4;
    }
    const T = threadCount(e, threads, OH);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        const tasks = Array.from({ length: T }, (_, t) => ({
          fn: 'conv_direct_f32',
          args: [xp + (n * C + g * Cg) * Hp * Wp * 4, l.pa + g * M4 * K * 4, koff, l.out + (n * O + g * Og) * P * 4, M4, Og, K, OW, P, Wp,
            l.pbias ? l.pbias + g * Og * 4 : 0, l.act, Math.floor((OH * t) / T), Math.floor((OH * (t + 1)) / T), s.sh, s.sw],
        }));
        await e.pool.run(tasks, (t) => (e.kernels.conv_direct_f32 as (...a: number[]) => void)(...t.args));
      }
    }
  } finally {
    e.heap.release(xp);
    e.heap.release(koff);
  }
}

/** Geometry of a float depthwise convolution (one input channel per output channel). */
export interface DepthwiseShape {
  N: number; C: number; H: number; W: number; KH: number; KW: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; pb: number; pr: number; OH: number; OW: number;
}

/**
 * Float32 depthwise convolution in wasm SIMD on the worker threads, whole planes per thread, each padded
 * in the thread's scratch as it is reached: y[N, C, OH, OW] from x[N, C, H, W] (read in place when kept),
 * w[C, KH, KW], an optional bias and act (FLOAT_ACTS), kept in wasm memory.
 * Returns null where the engine cannot run (the caller keeps its JS loop, which is also the
 * reference the tests compare with).
 */
export async function depthwiseF32(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, s: DepthwiseShape, act: number, threads?: number): Promise<Kept | null> {
  const e = await engineOrNull();
  if (!e) return null;
  const Hp = s.H + s.pt + s.pb, Wp = s.W + s.pl + s.pr, K = s.KH * s.KW, planes = s.N * s.C;
  const heap = e.heap;
  const T = threadCount(e, threads, planes);
  const out = heap.alloc(planes * s.OH * s.OW * 4);
  // Each thread pads one plane at a time into its scratch, 16 floats of slack: the vector loads of a
  // row's last step may read past it.
  const allocs = [heap.alloc(w.length * 4), heap.alloc(K * 4), heap.alloc(PARAM_COUNT * 4), bias ? heap.alloc(s.C * 4) : 0,
    ...Array.from({ length: T }, () => heap.alloc((Hp * Wp + 16) * 4))];
  const [wp, koff, params, bp, ...scratch] = allocs;
  const staged = stageF32(e, x);
  let kept = false;
  try {
    const b2 = e.memory.buffer;
    new Float32Array(b2, wp, w.length).set(w);
    if (bias) new Float32Array(b2, bp, s.C).set(bias);
    const ko = new Int32Array(b2, koff, K);
    for (let kh = 0; kh < s.KH; kh++) for (let kw = 0; kw < s.KW; kw++) ko[kh * s.KW + kw] = kh * s.dh * Wp + kw * s.dw;
    const p = new Int32Array(b2, params, PARAM_COUNT).fill(0);
    p[P.N] = s.N; p[P.C] = s.C; p[P.HP] = Hp; p[P.WP] = Wp; p[P.OH] = s.OH; p[P.OW] = s.OW; p[P.IH] = s.H; p[P.IW] = s.W; p[P.PT] = s.pt; p[P.PL] = s.pl;
    p[P.SH] = s.sh; p[P.SW] = s.sw; p[P.K] = K; p[P.KH] = s.KH; p[P.KW] = s.KW; p[P.DW] = s.dw; p[P.IN] = staged.ptr; p[P.OUT] = out; p[P.KOFF] = koff; p[P.BIAS] = bp; p[P.W] = wp; p[P.ACT] = act;
    const tasks = scratch.map((sc, t) => ({ fn: 'depthwise_f32_planes', args: [params, Math.floor((planes * t) / T), Math.floor((planes * (t + 1)) / T), sc] }));
    await e.pool.run(tasks, (t) => e.kernels.depthwise_f32_planes(t.args[0], t.args[1], t.args[2], t.args[3]));
    kept = true;
    return keep(e, out, planes * s.OH * s.OW);
  } finally {
    if (!kept) heap.release(out);
    for (const a of allocs) if (a) heap.release(a);
    staged.release();
  }
}

/** Pooling window geometry (planes = N * C). */
export interface PoolShape { planes: number; H: number; W: number; OH: number; OW: number; KH: number; KW: number; sh: number; sw: number; pt: number; pl: number }

/**
 * Max or average pooling of float32 planes in wasm on the worker threads (mode 0 max, 1 average
 * over the window inside the input, 2 average over KH * KW), the input read in place when kept, the
 * output kept. null where the engine cannot run.
 */
export async function poolF32(x: Float32Array, s: PoolShape, mode: 0 | 1 | 2, threads?: number): Promise<Kept | null> {
  const e = await engineOrNull();
  if (!e) return null;
  const heap = e.heap;
  const staged = stageF32(e, x), src = staged.ptr;
  const out = heap.alloc(s.planes * s.OH * s.OW * 4);
  let kept = false;
  try {
    const T = x.length < 1 << 16 ? 1 : threadCount(e, threads, s.planes);
    const tasks = Array.from({ length: T }, (_, t) => ({
      fn: 'pool_f32',
      args: [src, out, Math.floor((s.planes * t) / T), Math.floor((s.planes * (t + 1)) / T), s.H, s.W, s.OH, s.OW, s.KH, s.KW, s.sh, s.sw, s.pt, s.pl, mode],
    }));
    await e.pool.run(tasks, (t) => (e.kernels.pool_f32 as (...a: number[]) => void)(...t.args));
    kept = true;
    return keep(e, out, s.planes * s.OH * s.OW);
  } finally {
    staged.release();
    if (!kept) heap.release(out);
  }
}

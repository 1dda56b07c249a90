import { Heap } from './heap.js';
import { Pool } from './pool.js';
import { compileKernels, cores, cpuName, enableRelaxedSimd, readKernel, sharedMemoryReason } from './platform.js';

export interface KernelExports {
  pcilt_rows(params: number, rowBegin: number, rowEnd: number, scratch: number): void;
  direct_rows(params: number, rowBegin: number, rowEnd: number, scratch: number): void;
  direct8_rows(params: number, rowBegin: number, rowEnd: number, scratch: number): void;
  depthwise_rows(params: number, rowBegin: number, rowEnd: number, scratch: number): void;
  depthwise_f32_planes(params: number, p0: number, p1: number, scratch: number): void;
  scratch_bytes(planes: number, S: number, Kp: number, OgPad: number): number;
  pcilt_grouped_rows(w: number, O: number, Og: number, Cg: number, KK: number, G: number, ib: number, OgPad: number, segElems: number, rows: number, offset: number, stats: number): void;
  quantize_pad(src: number, dst: number, p0: number, p1: number, H: number, W: number, Hp: number, Wp: number, padT: number, padL: number, scale: number, zero: number, L: number): void;
  quantize_levels_pad(src: number, dst: number, p0: number, p1: number, H: number, W: number, Hp: number, Wp: number, padT: number, padL: number, mids: number, m: number, codes: number, zero: number): void;
  quantize_pad_channels(src: number, dst: number, p0: number, p1: number, H: number, W: number, Hp: number, Wp: number, padT: number, padL: number, scales: number, zeros: number, C: number, L: number): void;
  range_f32(src: number, n: number, out: number): void;
  /** Returns the largest sum of |q| over one channel. */
  quantize_weights(src: number, dst: number, O: number, K: number, top: number, scales: number, sums: number): number;
  layout_direct_weights(src: number, srcBytes: number, dst: number, dstBytes: number, count: number, O: number, Og: number, K: number, groupsOfTaps: number, OgPad: number, taps: number): number;
  pack_groups(src: number, dst: number, u0: number, u1: number, C: number, HW: number, G: number, ib: number, planes: number, bitSerial: number): void;
  pool_f32(src: number, dst: number, p0: number, p1: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number, sh: number, sw: number, pt: number, pl: number, mode: number): void;
  sum_middle_f32(src: number, dst: number, outer: number, R: number, inner: number, divisor: number): void;
  resize_axis_f32(src: number, dst: number, outer: number, lenIn: number, inner: number, lenOut: number, taps: number): void;
  /** Returns the OR of the bytes copied. */
  pad_input(src: number, dst: number, planes: number, H: number, W: number, Hp: number, Wp: number, padT: number, padL: number, dstBytes: number): number;
  pack_panels(src: number, dst: number, K: number, N: number, N8: number, trans: number): void;
  transpose_f32(src: number, dst: number, rows: number, cols: number): void;
  sgemm(A: number, Bp: number, C: number, M: number, N: number, K: number, accumulate: number, rowBegin: number, rowEnd: number): void;
  conv_direct_f32(xp: number, A: number, koff: number, out: number, M4: number, M: number, K: number, OW: number, P: number, Wp: number,
    bias: number, act: number, r0: number, r1: number, sh: number, sw: number): void;
  matmul_batched_f32(a: number, b: number, y: number, ia: number, ib: number, M: number, K: number, N: number, scratch: number, b0: number, b1: number): void;
  sgemm_conv(A: number, Bp: number, C: number, M: number, N: number, K: number, bias: number, act: number, rowBegin: number, rowEnd: number): void;
  sgemm_bias(A: number, Bp: number, C: number, M: number, N: number, K: number, bias: number, rowBegin: number, rowEnd: number): void;
  pack_conv_panels(x: number, dst: number, geo: number, j0: number, j1: number): void;
  sgemm_bias_act(A: number, Bp: number, C: number, M4: number, N8: number, K: number, rowBegin: number, rowEnd: number,
    dst: number, M: number, P: number, ld: number, bias: number, act: number): void;
  conv_groups_f32(x: number, out: number, A: number, Bp: number, C: number, geo: number, M4: number, N8: number,
    M: number, P: number, bias: number, act: number, g0: number, g1: number, pointwise: number): void;
  unary_f32(op: number, x: number, y: number, n: number, p: number, q: number): void;
  affine_planes_f32(x: number, y: number, N: number, C: number, P: number, k: number, off: number): void;
  binary_f32(op: number, a: number, sa: number, b: number, sb: number, y: number, n: number): void;
  softmax_rows_f32(x: number, y: number, rows: number, len: number, log: number): void;
  layernorm_rows_f32(x: number, y: number, rows: number, len: number, scale: number, bias: number, eps: number): void;
  hash_fnv4_x32(src: number, n: number, state: number): void;
  copy_strided_x32(src: number, dst: number, rank: number, shape: number, strides: number, counters: number): void;
}

/** What the engine found out about this platform, once. */
export interface Features {
  simd: boolean;
  relaxedSimd: boolean;
  /** null when threads work, else why not. */
  threads: string | null;
  cores: number;
}

export interface Engine {
  features: Features;
  memory: WebAssembly.Memory;
  heap: Heap;
  kernels: KernelExports;
  pool: Pool;
}

const MAX_PAGES = 32768; // 2 GiB, the builds' declared maximum
const HEAP_BASE = 1 << 20; // above the kernels' own static data

let engine: Promise<Engine> | undefined;
let ready: Engine | undefined;

/** A build's bytes, where this engine validates them (SIMD, relaxed SIMD). */
async function validBuild(name: string): Promise<Uint8Array<ArrayBuffer> | null> {
  const bytes = await readKernel(name);
  return WebAssembly.validate(bytes) ? bytes : null;
}

async function create(): Promise<Engine> {
  const shared = sharedMemoryReason();
  if (shared !== null) {
    // No shared memory (a page without cross-origin isolation): one thread, ordinary memory.
    const bytes = await validBuild('kernels-single');
    if (!bytes) throw new Error('this WebAssembly engine has no SIMD128');
    const single = await compileKernels(bytes);
    const memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES });
    const instance = new WebAssembly.Instance(single, { env: { memory, abort: () => { throw new Error('wasm abort'); } } });
    return {
      features: { simd: true, relaxedSimd: false, threads: shared, cores: 1 },
      memory,
      heap: new Heap(memory, HEAP_BASE, MAX_PAGES * 65536),
      kernels: instance.exports as unknown as KernelExports,
      pool: new Pool(null),
    };
  }
  const simd = await validBuild('kernels-simd');
  if (!simd) throw new Error('this WebAssembly engine has no SIMD128');
  let relaxed = await validBuild('kernels-relaxed');
  if (!relaxed) {
    await enableRelaxedSimd();
    relaxed = await validBuild('kernels-relaxed');
  }
  const module = await compileKernels(relaxed ?? simd);
  const memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true });
  const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('wasm abort'); } } });
  const features: Features = { simd: true, relaxedSimd: !!relaxed, threads: null, cores: await cores() };
  return {
    features,
    memory,
    heap: new Heap(memory, HEAP_BASE, MAX_PAGES * 65536),
    kernels: instance.exports as unknown as KernelExports,
    pool: new Pool({ module, memory }),
  };
}

let key: Promise<string> | undefined;

/**
 * What kernel timings depend on here: the CPU, the wasm build in use and the default thread count.
 * Saved 'auto' choices and the cost model are used only where this is the same. Found once per process
 * (asking the OS for the CPU's name takes 80-90 us, and every quantized model run asks).
 */
export function machineKey(): Promise<string> {
  key ??= getEngine().then(async (e) => `${await cpuName()} | ${e.features.relaxedSimd ? 'relaxed-simd' : 'simd'} | ${threadCount(e, undefined, Infinity)} threads`);
  return key;
}

/** The wasm engine, created on first use; rejects with the reason it cannot run here. */
export function getEngine(): Promise<Engine> {
  engine ??= create().then((e) => (ready = e));
  return engine;
}

/**
 * Starts the engine and its worker threads, for a model about to run on every core: resolves once
 * the workers can take tasks (spawning them takes 50-90 ms, which its first call would otherwise
 * wait for). Where the engine or a worker cannot start, it resolves all the same: the call that
 * needs them reports why.
 */
export function startWorkers(): Promise<void> {
  return getEngine().then((e) => e.pool.prepare(threadCount(e, undefined, Infinity) - 1)).catch(() => {});
}

/** The engine if it has started, without waiting. */
export function engineIfReady(): Engine | undefined {
  return ready;
}

export function engineUnavailableReason(): Promise<string | null> {
  return getEngine().then(() => null, (e: Error) => e.message);
}

/** Threads for a call: what was asked for (default: every core), never more than the work or than the engine can run. */
export function threadCount(e: Engine, requested: number | undefined, work: number): number {
  if (e.features.threads !== null) return 1;
  return Math.max(1, Math.min(requested ?? e.features.cores, work));
}

/**
 * float32 values at a wasm address: read in place when they are already in wasm memory (a kept
 * layer output), else copied into a block that `release` frees.
 */
export function stageF32(e: Engine, x: Float32Array): { ptr: number; release(): void } {
  if (x.buffer === e.memory.buffer) return { ptr: x.byteOffset, release: () => {} };
  const ptr = e.heap.alloc(x.length * 4);
  new Float32Array(e.memory.buffer, ptr, x.length).set(x);
  return { ptr, release: () => e.heap.release(ptr) };
}

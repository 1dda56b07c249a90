import { KernelError } from '../../errors.js';
import type { ConvGeometry } from '../../conv/geometry.js';
import type { PciltTables } from '../../tables/pcilt.js';
import type { OutputData } from '../../tensor.js';
import type { Backend, DirectJob, PciltJob } from '../types.js';
import { buffer, getGpu, gpuUnavailableReason, USAGE as U, type GpuContext } from './device.js';
import {
  DIRECT_CONFIG, GLOBAL_CHANNELS, PCILT_CONFIG, QUADS_PER_INVOCATION, segmentsPerWord, dotShader, indexShader, pciltGlobalShader, pciltShader, quadShader,
  type DirectGpuConfig, type PciltGpuConfig,
} from './shaders.js';

/**
 * Largest table the staged kernel keeps in workgroup memory: 256 entries, an 8-bit index. Up to 32 entries
 * the rows a warp reads fall in distinct banks; wider tables stage fewer segments and channel pairs at a
 * time (see pciltSteps). Wider tables, and entries beyond int16, take the kernel that reads them from
 * a storage buffer (pciltGlobalShader).
 */
const MAX_ROWS = 256;
/** Largest |entry| two channels can share a u32 with: int16. */
const MAX_ENTRY = 32767;
/** Largest storage buffer every WebGPU device binds (the spec's default maxStorageBufferBindingSize). */
const MAX_BINDING = 128 * 1024 * 1024;

/** Whether tables `t` run on the staged kernel (else on the one that reads them from storage). */
const staged = (t: PciltTables) => t.tableSize <= MAX_ROWS && t.maxAbsEntry <= MAX_ENTRY;

/** Bytes of int32 rows the storage-reading kernel binds for tables `t` (channels padded per group). */
function globalRowBytes(t: PciltTables, groups: number): number {
  const Og = t.weightShape[0] / groups;
  return groups * t.segments * t.tableSize * Math.ceil(Og / GLOBAL_CHANNELS) * GLOBAL_CHANNELS * 4;
}

export function pciltSupport(t: PciltTables, groups = 1): string | null {
  if (!t.integer) return 'the tables hold float entries; the WebGPU kernels are integer-exact only';
  if (staged(t)) return null;
  const bytes = globalRowBytes(t, groups);
  if (bytes > MAX_BINDING) return `tables of ${t.tableSize} entries are read from one storage buffer of at most ${MAX_BINDING} bytes, and these need ${bytes}`;
  return null;
}

function directSupport(job: DirectJob): string | null {
  if (job.fn) return 'a custom fn needs the reference kernel';
  const w = job.weight;
  if (w instanceof Float32Array) return 'float weights; the WebGPU kernels are integer-exact only';
  if (!(w instanceof Int8Array) && w.some((v) => v < -128 || v > 127)) return 'weights beyond int8 (dot4I8Packed takes int8)';
  return null;
}

/** Uploaded tables, per tables object, device and channel-pair padding. */
const rowCache = new WeakMap<PciltTables, Map<number, { ctx: GpuContext; buf: GPUBuffer }>>();

/**
 * The tables as rows[((gi * S + s) * R + code) * width + slot], `width` slots a row. Packed (the staged
 * kernel): each 32-bit slot holds the int16 entries of two neighbouring output channels as even + odd *
 * 65536, so that added words carry both sums exactly while each stays within int16. Unpacked (the
 * storage-reading kernel): one int32 entry a channel.
 */
function uploadRows(ctx: GpuContext, t: PciltTables, groups: number, width: number, packed: boolean): GPUBuffer {
  const cache = rowCache.get(t) ?? new Map<number, { ctx: GpuContext; buf: GPUBuffer }>();
  rowCache.set(t, cache);
  // Unpacked layouts are keyed apart from the packed ones' widths.
  const key = packed ? width : -width;
  const hit = cache.get(key);
  if (hit && hit.ctx === ctx) return hit.buf;
  const [O] = t.weightShape;
  const Og = O / groups, S = t.segments, R = t.tableSize;
  const rows = new Int32Array(groups * S * R * width);
  for (let o = 0; o < O; o++) {
    const gi = Math.floor(o / Og), oo = o % Og, slot = packed ? oo >> 1 : oo, shift = packed ? (oo & 1) * 16 : 0;
    for (let s = 0; s < S; s++) {
      const src = t.tableOf[o * S + s] * R;
      for (let c = 0; c < R; c++) rows[((gi * S + s) * R + c) * width + slot] += t.entries[src + c] << shift;
    }
  }
  const buf = buffer(ctx, rows, U.STORAGE);
  cache.set(key, { ctx, buf });
  return buf;
}

function pipeline(ctx: GpuContext, key: string, code: string): GPUComputePipeline {
  let p = ctx.pipelines.get(key);
  if (!p) {
    p = ctx.device.createComputePipeline({ layout: 'auto', compute: { module: ctx.device.createShaderModule({ code }), entryPoint: 'main' } });
    ctx.pipelines.set(key, p);
  }
  return p;
}

/** One dispatch: its pipeline, bindings and grid. */
export interface Step {
  pipe: GPUComputePipeline;
  bind: GPUBindGroup;
  grid: [number, number, number];
}

export interface Prepared {
  ctx: GpuContext;
  steps: Step[];
  out: GPUBuffer;
  outBytes: number;
  temps: GPUBuffer[];
}

/**
 * Invocations a pixel-per-invocation workgroup gets: the shape's, within the device's limit, and for
 * a layer of fewer pixels, a multiple of 64 that covers them.
 */
function workgroupSize(ctx: GpuContext, wanted: number, pixels: number): number {
  return Math.min(wanted, ctx.maxThreads, Math.ceil(pixels / 64) * 64);
}

/** A grid of `count` workgroups along x, folded into z beyond WebGPU's 65535 a dimension. */
function grid(count: number, y: number): [number, number, number] {
  return [Math.min(count, 65535), y, Math.ceil(count / 65535)];
}

/** The padded input's plane size, for a geometry. */
export function paddedPlanes(g: ConvGeometry): { Hp: number; Wp: number } {
  return { Hp: g.H + g.padT + g.padB, Wp: g.W + g.padL + g.padR };
}

/**
 * Input, parameters and output shared by both kernels: the padded input (codes as bytes, planes of
 * Hp x Wp, given on the device or uploaded from `input`), each tap's offset in it, the bias and the
 * output, by binding number (each step binds those its shader uses).
 */
function prepare(ctx: GpuContext, g: ConvGeometry, input: Uint8Array | GPUBuffer, bias: PciltJob['bias'],
  params: Partial<Record<string, number>>): { P: Record<string, number>; buffers: Record<number, GPUBuffer>; out: GPUBuffer; outBytes: number; temps: GPUBuffer[] } {
  const { Hp, Wp } = paddedPlanes(g);
  let inputBuffer: GPUBuffer | undefined;
  if (input instanceof Uint8Array) {
    const padded = new Uint8Array(g.N * g.C * Hp * Wp + 4);
    for (let plane = 0; plane < g.N * g.C; plane++) {
      for (let h = 0; h < g.H; h++) {
        const src = (plane * g.H + h) * g.W;
        padded.set(input.subarray(src, src + g.W), (plane * Hp + h + g.padT) * Wp + g.padL);
      }
    }
    inputBuffer = buffer(ctx, padded, U.STORAGE);
  }
  const K = g.Cg * g.KH * g.KW;
  const koff = new Uint32Array(K);
  for (let c = 0, k = 0; c < g.Cg; c++)
    for (let kh = 0; kh < g.KH; kh++)
      for (let kw = 0; kw < g.KW; kw++) koff[k++] = (c * Hp + kh * g.dilH) * Wp + kw * g.dilW;
  const P: Record<string, number> = {
    N: g.N, C: g.C, Hp, Wp, O: g.O, groups: g.groups, Cg: g.Cg, Og: g.Og, OgPad: 0, OH: g.OH, OW: g.OW,
    sh: g.strideH, sw: g.strideW, K, S: 0, G: 0, ib: 0, blocks: 0, hasBias: bias ? 1 : 0, KQ: 0,
    NP: g.N * g.OH * g.OW, SW: 0, ...params,
  };
  const order = ['N', 'C', 'Hp', 'Wp', 'O', 'groups', 'Cg', 'Og', 'OgPad', 'OH', 'OW', 'sh', 'sw', 'K', 'S', 'G', 'ib', 'blocks', 'hasBias', 'KQ', 'NP', 'SW'];
  const temps = [
    buffer(ctx, Uint32Array.from(order, (k) => P[k]), U.UNIFORM),
    buffer(ctx, koff, U.STORAGE),
    buffer(ctx, bias instanceof Int32Array ? bias : new Int32Array(1), U.STORAGE),
    ...(inputBuffer ? [inputBuffer] : []),
  ];
  const outBytes = g.N * g.O * g.OH * g.OW * 4;
  const out = ctx.device.createBuffer({ size: Math.max(16, outBytes), usage: U.STORAGE | U.COPY_SRC });
  temps.push(out);
  return { P, buffers: { 0: temps[0], 1: inputBuffer ?? (input as GPUBuffer), 3: temps[1], 4: temps[2], 5: out }, out, outBytes, temps };
}

function step(ctx: GpuContext, pipe: GPUComputePipeline, buffers: Record<number, GPUBuffer>, uses: number[], at: [number, number, number]): Step {
  const entries = uses.map((b) => ({ binding: b, resource: { buffer: buffers[b] } }));
  return { pipe, bind: ctx.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }), grid: at };
}

function encodePass(p: Prepared, enc: GPUCommandEncoder, timestamps?: GPUComputePassTimestampWrites, repeat = 1): void {
  const pass = enc.beginComputePass(timestamps ? { timestampWrites: timestamps } : {});
  for (let r = 0; r < repeat; r++) {
    for (const s of p.steps) {
      pass.setPipeline(s.pipe);
      pass.setBindGroup(0, s.bind);
      pass.dispatchWorkgroups(...s.grid);
    }
  }
  pass.end();
}

async function runPrepared(p: Prepared, integer: boolean, bias: PciltJob['bias'], g: ConvGeometry): Promise<OutputData> {
  const { device } = p.ctx;
  const read = device.createBuffer({ size: Math.max(16, p.outBytes), usage: U.MAP_READ | U.COPY_DST });
  try {
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder();
    encodePass(p, enc);
    enc.copyBufferToBuffer(p.out, 0, read, 0, Math.max(16, p.outBytes));
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new KernelError(`WebGPU rejected the kernel: ${err.message}`);
    await read.mapAsync(1);
    // A destroyed device can still 'complete' a mapping, with stale memory: never return that.
    if (p.ctx.lost) throw new KernelError(p.ctx.lost);
    const data = new Int32Array(read.getMappedRange().slice(0, p.outBytes));
    read.unmap();
    if (integer) return data;
    const f = new Float32Array(data.length);
    const plane = g.OH * g.OW;
    for (let i = 0; i < data.length; i++) f[i] = data[i] + (bias ? bias[Math.floor(i / plane) % g.O] : 0);
    return f;
  } catch (e) {
    if (p.ctx.lost) throw new KernelError(p.ctx.lost);
    throw e instanceof KernelError ? e : new KernelError(`WebGPU kernel failed: ${(e as Error).message}`);
  } finally {
    read.destroy();
    for (const b of p.temps) b.destroy();
  }
}

async function preparePcilt(job: PciltJob, shape: PciltGpuConfig = PCILT_CONFIG): Promise<Prepared> {
  const ctx = await getGpu();
  if (ctx.lost) throw new KernelError(ctx.lost);
  return pciltSteps(ctx, job.tables, job.geometry, job.input, job.bias, shape);
}

/**
 * The PCILT index and look-up passes for tables `t` (which pciltSupport accepts) over codes given as
 * bytes on the host or as a padded-codes buffer already on the device (planes of Hp x Wp, see
 * paddedPlanes): int32 sums [N, O, OH, OW] in `out`. The graph runtime's layers on codes call it
 * with device codes (src/kernels/webgpu/codes-pcilt.ts).
 */
export function pciltSteps(ctx: GpuContext, t: PciltTables, g: ConvGeometry, input: Uint8Array | GPUBuffer, bias: PciltJob['bias'], shape: PciltGpuConfig = PCILT_CONFIG): Prepared {
  const NP = g.N * g.OH * g.OW;
  const planes = t.planes, S = t.segments, R = t.tableSize, SW = Math.ceil(S / segmentsPerWord(R));
  const look = lookupPass(ctx, t, g, NP, shape);
  const idx = ctx.device.createBuffer({ size: Math.max(16, g.groups * planes * SW * NP * 4), usage: U.STORAGE });
  const base = prepare(ctx, g, input, bias, { S, G: t.groupSize, ib: t.indexBits, SW, blocks: look.blocks, OgPad: look.OgPad });
  base.temps.push(idx);
  const buffers = { ...base.buffers, 2: look.rows, 6: idx };
  const index = pipeline(ctx, `index/${R}/${planes}/${t.groupSize}/${t.indexBits}/${t.bitSerial}`, indexShader(R, planes, t.groupSize, t.indexBits, t.bitSerial));
  const steps = [
    step(ctx, index, buffers, [0, 1, 3, 6], grid(Math.ceil(NP / 64), g.groups * SW)),
    step(ctx, look.pipe, buffers, [0, 2, 4, 5, 6], grid(Math.ceil(NP / look.threads), g.groups * look.blocks)),
  ];
  return { ctx, steps, out: base.out, outBytes: base.outBytes, temps: base.temps };
}

/**
 * The look-up pass for tables `t`: the staged kernel where they fit it, else the one that reads them from
 * storage; its pipeline, workgroup size, channel blocks (and their padded width) and uploaded rows.
 */
function lookupPass(ctx: GpuContext, t: PciltTables, g: ConvGeometry, NP: number, shape: PciltGpuConfig): { pipe: GPUComputePipeline; threads: number; blocks: number; OgPad: number; rows: GPUBuffer } {
  const planes = t.planes, S = t.segments, R = t.tableSize;
  if (!staged(t)) {
    const threads = workgroupSize(ctx, Math.min(shape.threads, 256), NP);
    const blocks = Math.ceil(g.Og / GLOBAL_CHANNELS), OgPad = blocks * GLOBAL_CHANNELS;
    const pipe = pipeline(ctx, `pcilt-global/${R}/${planes}/${threads}`, pciltGlobalShader(R, planes, threads));
    return { pipe, threads, blocks, OgPad, rows: uploadRows(ctx, t, g.groups, OgPad, false) };
  }
  // Wide tables: fewer channel pairs a workgroup, so that one segment's rows fit in workgroup memory.
  let pairs = shape.pairs;
  while (pairs > 4 && t.tableSize * (pairs + 1) * 4 > ctx.workgroupStorage) pairs -= 4;
  const cfg = { pairs, threads: workgroupSize(ctx, shape.threads, NP) };
  // Segments staged at once: as many as workgroup memory holds, and few enough that a chunk's
  // packed int16 sums cannot overflow.
  const fit = Math.floor(ctx.workgroupStorage / (R * (cfg.pairs + 1) * 4));
  const CH = Math.max(1, Math.min(S, fit, Math.floor(MAX_ENTRY / Math.max(1, t.maxAbsEntry))));
  const blocks = Math.ceil(g.Og / (2 * cfg.pairs));
  const pipe = pipeline(ctx, `pcilt/${R}/${planes}/${CH}/${cfg.threads}/${cfg.pairs}`, pciltShader(R, planes, CH, cfg));
  return { pipe, threads: cfg.threads, blocks, OgPad: blocks * 2 * cfg.pairs, rows: uploadRows(ctx, t, g.groups, blocks * cfg.pairs, true) };
}

async function prepareDirect(job: DirectJob, kernel: DirectGpuConfig = DIRECT_CONFIG): Promise<Prepared> {
  const ctx = await getGpu();
  if (ctx.lost) throw new KernelError(ctx.lost);
  const g = job.geometry, NP = g.N * g.OH * g.OW;
  const threads = workgroupSize(ctx, kernel.threads, NP), CB = kernel.channels;
  // Tap quads, padded to a multiple of 4 (the kernel reads four at a time; the extra weights are 0).
  const K = g.Cg * g.KH * g.KW, KQ = Math.ceil(K / 16) * 4, blocks = Math.ceil(g.Og / CB), OgPad = blocks * CB;
  const wq = new Uint32Array(g.groups * KQ * OgPad);
  const sumw = new Int32Array(g.O);
  for (let o = 0; o < g.O; o++) {
    const gi = Math.floor(o / g.Og), oo = o % g.Og;
    for (let k = 0; k < K; k++) {
      const w = job.weight[o * K + k];
      sumw[o] += w;
      wq[(gi * KQ + (k >> 2)) * OgPad + oo] |= (w & 0xff) << ((k & 3) * 8);
    }
  }
  const QC = Math.max(4, Math.min(KQ, Math.floor(ctx.workgroupStorage / (CB * 4) / 4) * 4));
  const SW = Math.ceil(KQ / QUADS_PER_INVOCATION);
  const base = prepare(ctx, g, job.input, job.bias, { KQ, SW, blocks, OgPad });
  const xq = ctx.device.createBuffer({ size: Math.max(16, g.groups * KQ * NP * 4), usage: U.STORAGE });
  const buffers = { ...base.buffers, 2: buffer(ctx, wq, U.STORAGE), 6: buffer(ctx, sumw, U.STORAGE), 7: xq };
  base.temps.push(buffers[2], buffers[6], xq);
  const pack = pipeline(ctx, 'quads', quadShader());
  const dot = pipeline(ctx, `dot/${QC}/${threads}/${CB}/${ctx.dot4}`, dotShader(QC, { threads, channels: CB }, ctx.dot4));
  const steps = [
    step(ctx, pack, buffers, [0, 1, 3, 7], grid(Math.ceil(NP / 64), g.groups * SW)),
    step(ctx, dot, buffers, [0, 2, 4, 5, 6, 7], grid(Math.ceil(NP / threads), g.groups * blocks)),
  ];
  return { ctx, steps, out: base.out, outBytes: base.outBytes, temps: base.temps };
}

export const webgpuBackend: Backend = {
  name: 'webgpu',
  unavailableReason: gpuUnavailableReason,
  supportsPcilt: (job) => pciltSupport(job.tables, job.geometry.groups),
  supportsDirect: directSupport,
  pcilt: async (job) => runPrepared(await preparePcilt(job), job.integer, job.bias, job.geometry),
  direct: async (job) => runPrepared(await prepareDirect(job), job.integer, job.bias, job.geometry),
};

/** The PCILT kernel's integer sums with another workgroup shape (the GPU bench's sweep). */
export async function pciltWith(job: PciltJob, cfg: PciltGpuConfig): Promise<Int32Array> {
  return runPrepared(await preparePcilt(job, cfg), true, undefined, job.geometry) as Promise<Int32Array>;
}

/** Another direct kernel's integer sums (the GPU bench's sweep). */
export async function directWith(job: DirectJob, kernel: DirectGpuConfig): Promise<Int32Array> {
  return runPrepared(await prepareDirect(job, kernel), true, undefined, job.geometry) as Promise<Int32Array>;
}

/**
 * Convolutions in one timed pass: Dawn quantizes timestamps (65.5 us steps seen on an H100), so a
 * sub-millisecond dispatch cannot be timed alone.
 */
const DISPATCHES_PER_PASS = 20;

/**
 * GPU time of one convolution (PCILT: its index pass and look-up pass; 'pcilt-index': the index
 * pass alone), in milliseconds: where the adapter has timestamp queries, the median over `reps`
 * passes of the time around DISPATCHES_PER_PASS back-to-back convolutions, divided by their
 * number; else submit-to-done of `reps` convolutions in one submission.
 */
export async function gpuKernelMs(op: 'pcilt' | 'pcilt-index' | 'direct', job: PciltJob | DirectJob, reps: number, cfg?: PciltGpuConfig | DirectGpuConfig): Promise<{ ms: number; method: string; adapter: string }> {
  const p = op === 'direct' ? await prepareDirect(job as DirectJob, cfg as DirectGpuConfig | undefined) : await preparePcilt(job as PciltJob, cfg as PciltGpuConfig | undefined);
  // 'pcilt-index': the PCILT index pass alone.
  if (op === 'pcilt-index') p.steps.length = 1;
  const { device } = p.ctx;
  try {
    // Warm-up: a pass as long as a timed one (a GPU's clocks ramp up under load).
    const warm = device.createCommandEncoder();
    encodePass(p, warm, undefined, DISPATCHES_PER_PASS);
    device.queue.submit([warm.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (p.ctx.timestamps) {
      const qs = device.createQuerySet({ type: 'timestamp', count: 2 * reps });
      const res = device.createBuffer({ size: 16 * reps, usage: U.QUERY_RESOLVE | U.COPY_SRC });
      const read = device.createBuffer({ size: 16 * reps, usage: U.MAP_READ | U.COPY_DST });
      const enc = device.createCommandEncoder();
      for (let i = 0; i < reps; i++) {
        encodePass(p, enc, { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 }, DISPATCHES_PER_PASS);
      }
      enc.resolveQuerySet(qs, 0, 2 * reps, res, 0);
      enc.copyBufferToBuffer(res, 0, read, 0, 16 * reps);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(1);
      const ts = new BigInt64Array(read.getMappedRange().slice(0));
      read.unmap();
      const ms = Array.from({ length: reps }, (_, i) => Number(ts[2 * i + 1] - ts[2 * i]) / 1e6 / DISPATCHES_PER_PASS).sort((a, b) => a - b);
      qs.destroy(); res.destroy(); read.destroy();
      return { ms: ms[Math.floor(reps / 2)], method: `timestamp queries around ${DISPATCHES_PER_PASS} convolutions a pass (median of ${reps} passes)`, adapter: p.ctx.adapterName };
    }
    const enc = device.createCommandEncoder();
    encodePass(p, enc, undefined, reps);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return { ms: (performance.now() - t0) / reps, method: `submit-to-done over ${reps} convolutions`, adapter: p.ctx.adapterName };
  } finally {
    for (const b of p.temps) b.destroy();
  }
}

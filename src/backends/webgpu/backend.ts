import { KernelError } from '../../errors.js';
import type { ConvGeometry } from '../../conv/geometry.js';
import type { PciltTables } from '../../tables/pcilt.js';
import type { OutputData } from '../../tensor.js';
import type { Backend, DirectJob, PciltJob } from '../types.js';
import { getGpu, gpuUnavailableReason, type GpuContext } from './device.js';
import { TP, WG, directShader, pciltShader } from './shaders.js';

/** Largest table the kernel stages: 16 entries, a 4-bit index. */
const MAX_ROWS = 16;

/** GPUBufferUsage's values from the spec: the global itself only exists once a GPU is loaded. */
const U = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 };

function pciltSupport(t: PciltTables): string | null {
  if (!t.integer) return 'the tables hold float entries; the WebGPU kernels are integer-exact only';
  if (t.tableSize > MAX_ROWS) {
    return `the kernel stages tables of at most ${MAX_ROWS} entries in workgroup memory, these have ${t.tableSize}; build them with bitSerial: true and groupSize <= 4, or a groupSize whose index is <= 4 bits`;
  }
  return null;
}

function directSupport(job: DirectJob): string | null {
  if (job.fn) return 'a custom fn needs the reference kernel';
  const w = job.weight;
  if (w instanceof Float32Array) return 'float weights; the WebGPU kernels are integer-exact only';
  if (!(w instanceof Int8Array) && w.some((v) => v < -128 || v > 127)) return 'weights beyond int8 (dot4I8Packed takes int8)';
  return null;
}

function buffer(ctx: GpuContext, data: ArrayBufferView, usage: number): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  const b = ctx.device.createBuffer({ size, usage: usage | U.COPY_DST, mappedAtCreation: true });
  new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  b.unmap();
  return b;
}

/** Uploaded tables, one set per tables object and device. */
const rowCache = new WeakMap<PciltTables, { ctx: GpuContext; buf: GPUBuffer }>();

function uploadRows(ctx: GpuContext, t: PciltTables, groups: number): GPUBuffer {
  const hit = rowCache.get(t);
  if (hit && hit.ctx === ctx) return hit.buf;
  const [O] = t.weightShape;
  const Og = O / groups, OgPad = Math.ceil(Og / WG) * WG, S = t.segments, R = t.tableSize;
  const rows = new Int32Array(groups * S * R * OgPad);
  for (let o = 0; o < O; o++) {
    const gi = Math.floor(o / Og), oo = o % Og;
    for (let s = 0; s < S; s++) {
      const src = t.tableOf[o * S + s] * R;
      for (let c = 0; c < R; c++) rows[((gi * S + s) * R + c) * OgPad + oo] = t.entries[src + c];
    }
  }
  const buf = buffer(ctx, rows, U.STORAGE);
  rowCache.set(t, { ctx, buf });
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

interface Prepared {
  ctx: GpuContext;
  pipe: GPUComputePipeline;
  bind: GPUBindGroup;
  out: GPUBuffer;
  outBytes: number;
  grid: [number, number, number];
  temps: GPUBuffer[];
}

/** Input, parameters and the bind group shared by both kernels. */
function prepare(ctx: GpuContext, g: ConvGeometry, input: Uint8Array, bias: PciltJob['bias'], pipe: GPUComputePipeline,
  extra: Record<number, GPUBuffer>, params: Partial<Record<string, number>>): Prepared {
  const Hp = g.H + g.padT + g.padB, Wp = g.W + g.padL + g.padR;
  const padded = new Uint8Array(g.N * g.C * Hp * Wp + 4);
  for (let plane = 0; plane < g.N * g.C; plane++) {
    for (let h = 0; h < g.H; h++) {
      const src = (plane * g.H + h) * g.W;
      padded.set(input.subarray(src, src + g.W), (plane * Hp + h + g.padT) * Wp + g.padL);
    }
  }
  const K = g.Cg * g.KH * g.KW;
  const koff = new Uint32Array(K);
  for (let c = 0, k = 0; c < g.Cg; c++)
    for (let kh = 0; kh < g.KH; kh++)
      for (let kw = 0; kw < g.KW; kw++) koff[k++] = (c * Hp + kh * g.dilH) * Wp + kw * g.dilW;
  const tilesW = Math.ceil(g.OW / TP), tiles = g.N * g.OH * tilesW, blocks = Math.ceil(g.Og / WG);
  const P: Record<string, number> = {
    N: g.N, C: g.C, Hp, Wp, O: g.O, groups: g.groups, Cg: g.Cg, Og: g.Og, OgPad: blocks * WG, OH: g.OH, OW: g.OW,
    sh: g.strideH, sw: g.strideW, K, S: 0, G: 0, ib: 0, blocks, tilesW, tiles, hasBias: bias ? 1 : 0, KQ: 0, pad0: 0, pad1: 0, ...params,
  };
  const order = ['N', 'C', 'Hp', 'Wp', 'O', 'groups', 'Cg', 'Og', 'OgPad', 'OH', 'OW', 'sh', 'sw', 'K', 'S', 'G', 'ib', 'blocks', 'tilesW', 'tiles', 'hasBias', 'KQ', 'pad0', 'pad1'];
  const temps = [
    buffer(ctx, Uint32Array.from(order, (k) => P[k]), U.UNIFORM),
    buffer(ctx, padded, U.STORAGE),
    buffer(ctx, koff, U.STORAGE),
    buffer(ctx, bias instanceof Int32Array ? bias : new Int32Array(1), U.STORAGE),
  ];
  const outBytes = g.N * g.O * g.OH * g.OW * 4;
  const out = ctx.device.createBuffer({ size: Math.max(16, outBytes), usage: U.STORAGE | U.COPY_SRC });
  temps.push(out);
  const entries: GPUBindGroupEntry[] = [
    { binding: 0, resource: { buffer: temps[0] } }, { binding: 1, resource: { buffer: temps[1] } },
    { binding: 3, resource: { buffer: temps[2] } }, { binding: 4, resource: { buffer: temps[3] } },
    { binding: 5, resource: { buffer: out } },
    ...Object.entries(extra).map(([b, buf]) => ({ binding: Number(b), resource: { buffer: buf } })),
  ];
  const bind = ctx.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries });
  return { ctx, pipe, bind, out, outBytes, grid: [Math.min(tiles, 65535), g.groups * blocks, Math.ceil(tiles / 65535)], temps };
}

function encodePass(p: Prepared, enc: GPUCommandEncoder, timestamps?: GPUComputePassTimestampWrites): void {
  const pass = enc.beginComputePass(timestamps ? { timestampWrites: timestamps } : {});
  pass.setPipeline(p.pipe);
  pass.setBindGroup(0, p.bind);
  pass.dispatchWorkgroups(...p.grid);
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

async function preparePcilt(job: PciltJob): Promise<Prepared> {
  const ctx = await getGpu();
  if (ctx.lost) throw new KernelError(ctx.lost);
  const t = job.tables, g = job.geometry;
  const planes = t.bitSerial ? t.activationBits : 1;
  const { code } = pciltShader(t.tableSize, planes, t.bitSerial);
  const pipe = pipeline(ctx, `pcilt/${t.tableSize}/${planes}/${t.bitSerial}`, code);
  return prepare(ctx, g, job.input, job.bias, pipe, { 2: uploadRows(ctx, t, g.groups) }, { S: t.segments, G: t.groupSize, ib: t.indexBits });
}

async function prepareDirect(job: DirectJob): Promise<Prepared> {
  const ctx = await getGpu();
  if (ctx.lost) throw new KernelError(ctx.lost);
  const g = job.geometry;
  const K = g.Cg * g.KH * g.KW, KQ = Math.ceil(K / 4), OgPad = Math.ceil(g.Og / WG) * WG;
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
  const { code } = directShader(ctx.dot4);
  const pipe = pipeline(ctx, `direct/${ctx.dot4}`, code);
  const extra = { 2: buffer(ctx, wq, U.STORAGE), 6: buffer(ctx, sumw, U.STORAGE) };
  const p = prepare(ctx, g, job.input, job.bias, pipe, extra, { KQ });
  p.temps.push(extra[2], extra[6]);
  return p;
}

export const webgpuBackend: Backend = {
  name: 'webgpu',
  unavailableReason: gpuUnavailableReason,
  supportsPcilt: (job) => pciltSupport(job.tables),
  supportsDirect: directSupport,
  pcilt: async (job) => runPrepared(await preparePcilt(job), job.integer, job.bias, job.geometry),
  direct: async (job) => runPrepared(await prepareDirect(job), job.integer, job.bias, job.geometry),
};

/**
 * GPU time of one kernel, in milliseconds: timestamp queries around each of `reps` dispatches
 * where the adapter has them (median), else submit-to-done of `reps` dispatches in one submission.
 */
export async function gpuKernelMs(op: 'pcilt' | 'direct', job: PciltJob | DirectJob, reps: number): Promise<{ ms: number; method: string; adapter: string }> {
  const p = op === 'pcilt' ? await preparePcilt(job as PciltJob) : await prepareDirect(job as DirectJob);
  const { device } = p.ctx;
  try {
    const warm = device.createCommandEncoder();
    encodePass(p, warm);
    device.queue.submit([warm.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (p.ctx.timestamps) {
      const qs = device.createQuerySet({ type: 'timestamp', count: 2 * reps });
      const res = device.createBuffer({ size: 16 * reps, usage: U.QUERY_RESOLVE | U.COPY_SRC });
      const read = device.createBuffer({ size: 16 * reps, usage: U.MAP_READ | U.COPY_DST });
      const enc = device.createCommandEncoder();
      for (let i = 0; i < reps; i++) encodePass(p, enc, { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 });
      enc.resolveQuerySet(qs, 0, 2 * reps, res, 0);
      enc.copyBufferToBuffer(res, 0, read, 0, 16 * reps);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(1);
      const ts = new BigInt64Array(read.getMappedRange().slice(0));
      read.unmap();
      const ms = Array.from({ length: reps }, (_, i) => Number(ts[2 * i + 1] - ts[2 * i]) / 1e6).sort((a, b) => a - b);
      qs.destroy(); res.destroy(); read.destroy();
      return { ms: ms[Math.floor(reps / 2)], method: 'timestamp queries (median)', adapter: p.ctx.adapterName };
    }
    const enc = device.createCommandEncoder();
    for (let i = 0; i < reps; i++) encodePass(p, enc);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return { ms: (performance.now() - t0) / reps, method: `submit-to-done over ${reps} dispatches`, adapter: p.ctx.adapterName };
  } finally {
    for (const b of p.temps) b.destroy();
  }
}

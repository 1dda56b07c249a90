import { buffer, USAGE as U, type GpuContext } from '../../backends/webgpu/device.js';
import { FasterCnnError, KernelError, formatBytes } from '../../errors.js';
import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import type { OpContext } from '../../ops/registry.js';

/** A tensor larger than one storage binding may be on this adapter (128 MiB on some): its node runs on the CPU. */
export class TooLargeForBinding extends FasterCnnError {
  constructor(bytes: number, limit: number) {
    super(`a ${formatBytes(bytes)} buffer is larger than this adapter's largest storage binding (${formatBytes(limit)})`);
  }
}

/**
 * What the WebGPU kernels of the graph runtime share: tensors kept on the device, one command
 * encoder a run (submitted when the CPU needs a value, and at the end), buffers pooled by size and
 * reused across calls, pipelines and parameter records cached per device.
 */

/** A float32 tensor in a device buffer (row-major, as a CPU tensor's data). */
export interface GpuTensor { dtype: 'float32'; shape: number[]; buffer: GPUBuffer; gpu: true }

/** A kernel's input: on the device, on the CPU (constants, shapes, values a CPU kernel made), or left out. */
export type Arg = Tensor | GpuTensor | undefined;

export const isGpu = (a: unknown): a is GpuTensor => (a as GpuTensor | undefined)?.gpu === true;

/** Whether a kernel input is a float32 tensor (the dtype the WebGPU kernels compute in). */
export const isF32 = (m: Meta | undefined): boolean => m?.dtype === 'float32';

/** An input as `supports` sees it: dtype and shape always; data only for CPU tensors. */
export interface Meta { dtype: string; shape: number[]; data?: Tensor['data']; gpu?: boolean }

/**
 * A graph op's WebGPU kernel. `run` encodes its dispatches on `run`'s encoder and returns its outputs:
 * device tensors, or CPU tensors for ops that only read shapes (Shape).
 */
export interface GpuKernel {
  op: string;
  variant: string;
  supports(ins: (Meta | undefined)[], node: Node, ctx: OpContext): boolean;
  run(ins: Arg[], node: Node, ctx: OpContext, run: GpuRun): (GpuTensor | Tensor)[];
}

const KERNELS = new Map<string, GpuKernel[]>();

export function registerGpuKernel(k: GpuKernel): void {
  KERNELS.set(k.op, [...(KERNELS.get(k.op) ?? []), k]);
}

export function gpuKernelsFor(op: string): GpuKernel[] {
  return KERNELS.get(op) ?? [];
}

/** Every op with a WebGPU kernel. */
export function gpuOps(): string[] {
  return [...KERNELS.keys()].sort();
}

/** Elements one workgroup of an elementwise kernel covers. */
export const WG = 64;

/** What a device keeps across runs: free buffers by size, constants by array, parameter records by content. */
interface DeviceCache {
  free: Map<number, GPUBuffer[]>;
  constants: WeakMap<object, GPUBuffer>;
  /** Buffers of constants: never returned to the pool. */
  constantBuffers: WeakSet<GPUBuffer>;
  params: Map<string, GPUBuffer>;
  /** Bind groups by pipeline and buffers: a plan's second call finds them all (buffers come from the pool in the same order). */
  binds: Map<string, GPUBindGroup>;
}
const caches = new WeakMap<GpuContext, DeviceCache>();

/** Parameter records kept per device before the cache starts over (each is a few dozen bytes). */
const MAX_PARAMS = 4096;
/** Bind groups kept per device before that cache starts over. */
const MAX_BINDS = 8192;

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

/** One run's device work: the encoder, its pass, and the host-device traffic it caused. */
export class GpuRun {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private staging: GPUBuffer[] = [];
  private readonly cache: DeviceCache;
  /** Bytes copied to and from the device for values a CPU kernel made or needed (not the feeds and results). */
  crossedBytes = 0;
  dispatches = 0;
  /** Validation of the pipelines this run created: checked before any result is read. */
  private compiled: Promise<void>[] = [];

  /**
   * `isConstant`: which host tensors are the graph's constants (uploaded once per device and array);
   * anything else a kernel reads from the host is uploaded for this run.
   */
  constructor(readonly ctx: GpuContext, private readonly isConstant: (t: Tensor) => boolean = () => false) {
    let c = caches.get(ctx);
    if (!c) caches.set(ctx, (c = { free: new Map(), constants: new WeakMap(), constantBuffers: new WeakSet(), params: new Map(), binds: new Map() }));
    this.cache = c;
  }

  private enc(): GPUCommandEncoder {
    this.encoder ??= this.ctx.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /**
   * A buffer of at least `bytes` from the pool (sizes rounded up to 256 bytes, so that plans reuse them).
   * Throws TooLargeForBinding past the adapter's largest storage binding: a kernel cannot bind it.
   */
  alloc(bytes: number): GPUBuffer {
    const size = Math.max(256, Math.ceil(bytes / 256) * 256), limit = this.ctx.device.limits.maxStorageBufferBindingSize;
    if (size > limit) throw new TooLargeForBinding(size, limit);
    const b = this.cache.free.get(size)?.pop();
    return b ?? this.ctx.device.createBuffer({ size, usage: U.STORAGE | U.COPY_SRC | U.COPY_DST });
  }

  /** Returns a buffer to the pool: later dispatches of this device may reuse it (the queue keeps them in order). */
  free(b: GPUBuffer): void {
    if (this.cache.constantBuffers.has(b)) return;
    const list = this.cache.free.get(b.size) ?? [];
    list.push(b);
    this.cache.free.set(b.size, list);
  }

  tensor(shape: number[]): GpuTensor {
    return { dtype: 'float32', shape, buffer: this.alloc(sizeOf(shape) * 4), gpu: true };
  }

  /** Copies host data into `dst` in order with the encoded work (a staging buffer, not queue.writeBuffer, which would run ahead of it). */
  private write(dst: GPUBuffer, data: ArrayBufferView): void {
    if (!data.byteLength) return;
    const s = buffer(this.ctx, data, U.COPY_SRC);
    this.endPass();
    this.enc().copyBufferToBuffer(s, 0, dst, 0, Math.ceil(data.byteLength / 4) * 4);
    this.staging.push(s);
  }

  /**
   * A float32 input on the device: device tensors as they are, the graph's constants uploaded once per
   * device and array, anything else uploaded now (`crossing`: counted as traffic a CPU kernel caused).
   */
  onDevice(a: Tensor | GpuTensor, crossing = true): GpuTensor {
    if (isGpu(a)) return a;
    if (a.dtype !== 'float32') throw new Error(`a ${a.dtype} tensor cannot go to the device (float32 only)`);
    if (this.isConstant(a)) return { dtype: 'float32', shape: a.shape, buffer: this.constantArray(a.data as Float32Array), gpu: true };
    const t = this.tensor(a.shape);
    this.write(t.buffer, a.data);
    if (crossing) this.crossedBytes += a.data.byteLength;
    return t;
  }

  /**
   * A host array the kernels read as it is (constants, int32 weights, per-channel scales), uploaded once
   * per device and array: the array must not change afterwards (callers keep them in caches of their own).
   */
  constantArray(data: Int32Array | Uint32Array | Float32Array): GPUBuffer {
    let b = this.cache.constants.get(data);
    if (!b) {
      b = buffer(this.ctx, data, U.STORAGE | U.COPY_SRC);
      this.cache.constantBuffers.add(b);
      this.cache.constants.set(data, b);
    }
    return b;
  }

  /** A parameter record (u32 words; floats as their bits, see `f32`), cached by content (also read as f32 by kernels). */
  record(words: ArrayLike<number>): GPUBuffer {
    const arr = Uint32Array.from(words as ArrayLike<number>);
    const key = arr.join(',');
    let b = this.cache.params.get(key);
    if (!b) {
      // Dropped, not destroyed: work encoded but not yet submitted may still bind them (they go when collected).
      if (this.cache.params.size >= MAX_PARAMS) this.cache.params.clear();
      b = buffer(this.ctx, arr, U.STORAGE);
      this.cache.params.set(key, b);
    }
    return b;
  }

  /**
   * One dispatch: the pipeline for `key` (WGSL from `code()` the first time), binding 0 the
   * parameter record, then `buffers` in order (the shader's bindings 1..n), over `groups` workgroups
   * (folded into y beyond 65535; shaders index with `flat`).
   */
  dispatch(key: string, code: () => string, words: ArrayLike<number>, buffers: GPUBuffer[], groups: number | [number, number, number]): void {
    let pipe = this.ctx.pipelines.get(key);
    const device = this.ctx.device, fresh = !pipe;
    // A kernel whose WGSL does not compile, or whose bindings do not match it, must fail the run, not
    // leave its output unwritten: checked on the pipeline's first use.
    if (fresh) device.pushErrorScope('validation');
    pipe ??= device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: code() }), entryPoint: 'main' } });
    const all = [this.record(words), ...buffers];
    const bkey = `${key}|${all.map(bufferId).join(',')}`;
    let bind = this.cache.binds.get(bkey);
    if (!bind) {
      // Measured: creating a bind group costs ~16 us in Dawn for Node, four times the rest of a dispatch.
      bind = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: all.map((buffer, binding) => ({ binding, resource: { buffer } })) });
      if (this.cache.binds.size >= MAX_BINDS) this.cache.binds.clear();
      this.cache.binds.set(bkey, bind);
    }
    if (fresh) {
      const pipelines = this.ctx.pipelines;
      pipelines.set(key, pipe);
      this.compiled.push(device.popErrorScope().then((e) => {
        if (!e) return;
        pipelines.delete(key);
        throw new KernelError(`the WebGPU kernel ${key} fails on this adapter: ${e.message.split('\n').slice(0, 6).join(' ')}`);
      }));
    }
    this.pass ??= this.enc().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bind);
    const [x, y, z] = typeof groups === 'number' ? [Math.min(groups, 65535), Math.ceil(groups / 65535), 1] : groups;
    if (x * y * z > 0) this.pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
  }

  /** One dispatch of a pipeline and bind group made elsewhere (the single-layer PCILT kernel's passes). */
  encode(step: { pipe: GPUComputePipeline; bind: GPUBindGroup; grid: [number, number, number] }): void {
    this.pass ??= this.enc().beginComputePass();
    this.pass.setPipeline(step.pipe);
    this.pass.setBindGroup(0, step.bind);
    this.pass.dispatchWorkgroups(...step.grid);
    this.dispatches++;
  }

  /** A buffer made for this run only: destroyed once the work that uses it is submitted (it stays alive until that work is done). */
  temp(b: GPUBuffer): void {
    this.staging.push(b);
  }

  /** Submits what is encoded. */
  submit(): void {
    this.endPass();
    if (this.encoder) this.ctx.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    for (const s of this.staging) s.destroy();
    this.staging = [];
  }

  /** Submits what is encoded, then fails if a pipeline this run made did not validate. */
  private async flush(): Promise<void> {
    this.submit();
    const compiled = this.compiled;
    this.compiled = [];
    await Promise.all(compiled);
  }

  /** Waits for everything submitted (for per-node timings). */
  async settle(): Promise<void> {
    await this.flush();
    await this.ctx.device.queue.onSubmittedWorkDone();
  }

  /** Device tensors read back to the CPU, all in one submission (`crossing`: counted as traffic). */
  async download(ts: GpuTensor[], crossing = true): Promise<Tensor[]> {
    this.endPass();
    const reads = ts.map((t) => {
      const bytes = Math.max(4, sizeOf(t.shape) * 4);
      const r = this.ctx.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: U.MAP_READ | U.COPY_DST });
      if (sizeOf(t.shape)) this.enc().copyBufferToBuffer(t.buffer, 0, r, 0, sizeOf(t.shape) * 4);
      return r;
    });
    await this.flush();
    const out = await Promise.all(reads.map(async (r, i) => {
      await r.mapAsync(1).catch((e: Error) => {
        throw new KernelError(this.ctx.lost ?? `reading a result back from the GPU failed: ${e.message}`);
      });
      // A destroyed device can still 'complete' a mapping, with stale memory: never return that.
      if (this.ctx.lost) throw new KernelError(this.ctx.lost);
      const n = sizeOf(ts[i].shape);
      const data = new Float32Array(n);
      data.set(new Float32Array(r.getMappedRange(), 0, n));
      r.destroy();
      if (crossing) this.crossedBytes += n * 4;
      return { dtype: 'float32' as const, shape: ts[i].shape, data };
    }));
    return out;
  }
}

/** A float's bits for a parameter record. */
const f32buf = new Float32Array(1), u32buf = new Uint32Array(f32buf.buffer);
export function f32(x: number): number {
  f32buf[0] = x;
  return u32buf[0];
}

/** WGSL: the flat index of this invocation in a 1-d grid of WG-wide workgroups folded into y. */
export const FLAT = `
fn flat(g: vec3<u32>, n: vec3<u32>, l: u32) -> u32 { return (g.y * n.x + g.x) * ${WG}u + l; }`;

/** WGSL header of an elementwise kernel: parameters, `count` inputs, one output. */
export function header(count: number): string {
  let s = '@group(0) @binding(0) var<storage, read> P: array<u32>;\n';
  for (let i = 0; i < count; i++) s += `@group(0) @binding(${i + 1}) var<storage, read> X${i}: array<f32>;\n`;
  return `${s}@group(0) @binding(${count + 1}) var<storage, read_write> Y: array<f32>;\n${FLAT}\n`;
}

export const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wgId: vec3<u32>, @builtin(num_workgroups) wgCount: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wgId, wgCount, lid);`;

/** Workgroups for `n` elements. */
export const groupsFor = (n: number): number => Math.ceil(n / WG);

/** Largest rank the strided kernels index. */
export const MAX_RANK = 6;

import { isNode } from '../wasm/platform.js';
import { MissingPackageError } from '../../errors.js';

/** One acquired GPU device and what it offers, shared by every call until it is lost. */
export interface GpuContext {
  device: GPUDevice;
  adapterName: string;
  timestamps: boolean;
  dot4: boolean;
  pipelines: Map<string, GPUComputePipeline>;
  /** Set when the device is lost; calls in flight then fail with this reason. */
  lost: string | null;
  /** Workgroup memory a kernel may use, in bytes. */
  workgroupStorage: number;
  /** Invocations a (one-dimensional) workgroup may have. */
  maxThreads: number;
  /** The adapter's limits and features that shape the kernels (reported by the GPU bench). */
  facts: Record<string, unknown>;
}

/** GPUBufferUsage's values from the spec (the global itself only exists once a GPU is loaded). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 };

/** A buffer holding `data` (its size rounded up to whole words, at least 16 bytes), with `usage` and COPY_DST. */
export function buffer(ctx: GpuContext, data: ArrayBufferView, usage: number): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  const b = ctx.device.createBuffer({ size, usage: usage | USAGE.COPY_DST, mappedAtCreation: true });
  new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  b.unmap();
  return b;
}

let context: Promise<GpuContext> | undefined;
/** Dawn's GPU object must stay referenced while any device from it is in use. */
let dawnGpu: GPU | undefined;

async function findGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!isNode) throw new Error('this browser has no navigator.gpu');
  if (dawnGpu) return dawnGpu;
  let m: { create(o: string[]): GPU; globals: object };
  try {
    m = (await import('webgpu')) as never;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && /'webgpu'/.test((e as Error).message)) throw new MissingPackageError('webgpu', 'WebGPU in Node', 'Dawn for Node, 132 MB');
    throw new Error(`the npm package 'webgpu' (Dawn for Node) could not be loaded: ${(e as Error).message}`);
  }
  Object.assign(globalThis, m.globals);
  dawnGpu = m.create([]);
  return dawnGpu;
}

async function acquire(): Promise<GpuContext> {
  const gpu = await findGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter was found (no GPU driver; on Linux without a GPU, Mesa lavapipe provides one)');
  const timestamps = adapter.features.has('timestamp-query');
  const device = await adapter.requestDevice({
    requiredFeatures: timestamps ? ['timestamp-query'] : [],
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
    },
  });
  const info = adapter.info ?? {};
  const ctx: GpuContext = {
    device,
    adapterName: [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter',
    timestamps,
    dot4: gpu.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') ?? false,
    pipelines: new Map(),
    lost: null,
    workgroupStorage: device.limits.maxComputeWorkgroupStorageSize,
    maxThreads: Math.min(device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX),
    facts: {
      maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
      subgroupMinSize: (info as { subgroupMinSize?: number }).subgroupMinSize,
      subgroupMaxSize: (info as { subgroupMaxSize?: number }).subgroupMaxSize,
      features: [...adapter.features].sort(),
      wgslFeatures: [...(gpu.wgslLanguageFeatures ?? [])].sort(),
    },
  };
  // destroy() marks the context at once: the lost promise settles later, after work that could
  // otherwise read stale buffers.
  const destroy = device.destroy.bind(device);
  device.destroy = () => {
    ctx.lost ??= 'the WebGPU device was destroyed';
    if (ready === ctx) context = undefined;
    destroy();
  };
  void device.lost.then((info) => {
    ctx.lost ??= `the WebGPU device was lost (${info.reason}: ${info.message})`;
    // The next call acquires a new device.
    if (context && ready === ctx) context = undefined;
  });
  ready = ctx;
  return ctx;
}

let ready: GpuContext | undefined;

export function getGpu(): Promise<GpuContext> {
  context ??= acquire().catch((e) => {
    // The next call tries again (a driver may have been installed meanwhile).
    context = undefined;
    throw e;
  });
  return context;
}

export function gpuUnavailableReason(): Promise<string | null> {
  return getGpu().then(() => null, (e: Error) => e.message);
}

/**
 * Everything that differs between Node and browsers for the wasm engine, detected once:
 * how kernel files are read, how workers start, how many cores there are.
 */
export const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export async function readKernel(name: string): Promise<Uint8Array<ArrayBuffer>> {
  const url = new URL(`../../wasm/${name}.wasm`, import.meta.url);
  if (isNode) {
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(url));
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetching ${url} answered ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export async function cores(): Promise<number> {
  if (isNode) {
    const os = await import('node:os');
    return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  }
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

/** The CPU's name where the platform tells it (Node), else the user agent's platform. */
export async function cpuName(): Promise<string> {
  if (isNode) return (await import('node:os')).cpus()[0]?.model?.trim() || 'unknown CPU';
  return (globalThis.navigator as { platform?: string } | undefined)?.platform || 'unknown CPU';
}

/** Whether shared memory (and so threads) can be used here. */
export function sharedMemoryReason(): string | null {
  if (!isNode && !(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) {
    return 'the page is not cross-origin isolated (COOP/COEP headers), so memory cannot be shared with workers';
  }
  if (typeof SharedArrayBuffer === 'undefined') return 'SharedArrayBuffer is not available';
  return null;
}

/** Node 20 ships relaxed SIMD behind a V8 flag; it must be set before the module is compiled. */
export async function enableRelaxedSimd(): Promise<void> {
  if (!isNode) return;
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
}

/** V8's wasm tiering flags, unless the process was started with its own (then they are left alone). */
const TIERING_FLAGS = ['wasm-lazy-compilation', 'wasm-dynamic-tiering'];

/**
 * Compiles the kernels with every function compiled at once and optimized in the background, so that a
 * model's first call runs optimized code. V8's defaults compile a function when first called and
 * optimize it once it has run a while: on mnist-a4, whose first call takes 2-3x its later ones
 * (docs/perf-notes.md section 68). In Node the two V8 flags are set for this compilation only, then
 * set back to their defaults, so that other modules (a peer runtime's) compile as they would; browsers
 * compile as they do.
 */
export async function compileKernels(bytes: BufferSource): Promise<WebAssembly.Module> {
  const given = isNode && [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => TIERING_FLAGS.some((f) => a.includes(f)));
  if (!isNode || given) return new WebAssembly.Module(bytes);
  const v8 = await import('node:v8');
  v8.setFlagsFromString(TIERING_FLAGS.map((f) => `--no-${f}`).join(' '));
  try {
    return new WebAssembly.Module(bytes);
  } finally {
    v8.setFlagsFromString(TIERING_FLAGS.map((f) => `--${f}`).join(' '));
  }
}

/** One worker, the same in Node and browsers (tasks go through a shared control block, pool.ts). */
export interface WorkerPort {
  /** The worker died or threw outside a task. */
  onFailure(cb: (why: string) => void): void;
  terminate(): void;
  /** A busy worker keeps the process alive; an idle one must not. */
  busy(yes: boolean): void;
}

export async function spawnWorker(init: unknown): Promise<WorkerPort> {
  const url = new URL('./worker.js', import.meta.url);
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(url, { workerData: init });
    return {
      busy: (yes) => (yes ? w.ref() : w.unref()),
      onFailure: (cb) => {
        w.on('error', (e) => cb(`threw ${e?.message ?? e}`));
        w.on('exit', (code) => cb(`exited with code ${code}`));
      },
      terminate: () => void w.terminate(),
    };
  }
  const w = new Worker(url, { type: 'module' });
  w.postMessage({ init });
  return {
    onFailure: (cb) => {
      w.addEventListener('error', (e) => cb(`threw ${e.message}`));
      w.addEventListener('messageerror', () => cb('sent a message that could not be read'));
    },
    terminate: () => w.terminate(),
    busy: () => {},
  };
}

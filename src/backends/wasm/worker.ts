// A kernel thread: instantiates the kernels over the shared memory, then runs the tasks its
// control block hands it (pool.ts), polling briefly after each before it sleeps on the block.
import { CTRL, SPIN_MS, TASK_FNS } from './pool.js';

interface Init { module: WebAssembly.Module; memory: WebAssembly.Memory; ctrl: SharedArrayBuffer }

function serve(init: Init): never {
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory, abort: () => { throw new Error('wasm abort'); } } });
  const exports = instance.exports as unknown as Record<string, (...a: number[]) => void>;
  const i32 = new Int32Array(init.ctrl);
  const args = new Float64Array(init.ctrl, CTRL.ARGS_AT, CTRL.MAX_ARGS);
  const err = new Uint8Array(init.ctrl, CTRL.ERR_AT, CTRL.BYTES - CTRL.ERR_AT);
  Atomics.store(i32, CTRL.READY, 1);
  Atomics.notify(i32, CTRL.READY);
  let seen = 0;
  for (;;) {
    const t0 = performance.now();
    while (Atomics.load(i32, CTRL.SEQ) === seen) {
      if (performance.now() - t0 > SPIN_MS) Atomics.wait(i32, CTRL.SEQ, seen, 100);
    }
    seen = Atomics.load(i32, CTRL.SEQ);
    try {
      exports[TASK_FNS[i32[CTRL.FN]]](...Array.from(args.subarray(0, i32[CTRL.ARGC])));
      i32[CTRL.STATUS] = 0;
    } catch (e) {
      const { written } = new TextEncoder().encodeInto(`${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? e}`, err);
      i32[CTRL.ERRLEN] = written;
      i32[CTRL.STATUS] = 1;
    }
    Atomics.store(i32, CTRL.DONE, seen);
    Atomics.notify(i32, CTRL.DONE);
  }
}

if (typeof process !== 'undefined' && process.versions?.node) {
  const { workerData } = await import('node:worker_threads');
  serve(workerData as Init);
} else {
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent) => void) | null };
  scope.onmessage = (e: MessageEvent) => {
    if (!e.data?.init) return;
    scope.onmessage = null;
    serve(e.data.init as Init);
  };
}

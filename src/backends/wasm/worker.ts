// A kernel thread: instantiates the kernels over the shared memory, then, each time its control
// block hands it a call, takes that call's tasks from the shared table (pool.ts) until none is left,
// polling briefly after each call before it sleeps on the block.
import { CTRL, QUEUE, SPIN_MS, TASK_FNS, takeTask } from './pool.js';

interface Init { module: WebAssembly.Module; memory: WebAssembly.Memory; ctrl: SharedArrayBuffer; queue: SharedArrayBuffer; id: number }

function serve(init: Init): never {
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory, abort: () => { throw new Error('wasm abort'); } } });
  const exports = instance.exports as unknown as Record<string, (...a: number[]) => void>;
  const i32 = new Int32Array(init.ctrl);
  const err = new Uint8Array(init.ctrl, CTRL.ERR_AT, CTRL.BYTES - CTRL.ERR_AT);
  const q = new Int32Array(init.queue), qf = new Float64Array(init.queue);
  Atomics.store(i32, CTRL.READY, 1);
  Atomics.notify(i32, CTRL.READY);
  let seen = 0;
  for (;;) {
    const t0 = performance.now();
    while (Atomics.load(i32, CTRL.SEQ) === seen) {
      if (performance.now() - t0 > SPIN_MS) Atomics.wait(i32, CTRL.SEQ, seen, 100);
    }
    seen = Atomics.load(i32, CTRL.SEQ);
    const gen = Atomics.load(i32, CTRL.GEN);
    for (let k; (k = takeTask(q, gen)) >= 0;) {
      const at = QUEUE.TASKS_AT + k * QUEUE.TASK_BYTES;
      const fn = q[at >> 2], argc = q[(at >> 2) + 1];
      try {
        exports[TASK_FNS[fn]](...Array.from(qf.subarray((at >> 3) + 2, (at >> 3) + 2 + argc)));
      } catch (e) {
        const { written } = new TextEncoder().encodeInto(`${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? e}`, err);
        i32[CTRL.ERRLEN] = written;
        Atomics.compareExchange(q, QUEUE.FAILED, 0, init.id + 1);
      }
      Atomics.add(q, QUEUE.FINISHED, 1);
      Atomics.notify(q, QUEUE.FINISHED);
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

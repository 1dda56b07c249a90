// A kernel thread: instantiates the kernels over the shared memory and runs the tasks it is sent.
import type { KernelExports } from './engine.js';

interface Init { module: WebAssembly.Module; memory: WebAssembly.Memory }
interface Task { id: number; fn: keyof KernelExports; args: number[] }

type Reply = (msg: unknown) => void;

function serve(init: Init, reply: Reply) {
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory, abort: () => { throw new Error('wasm abort'); } } });
  const exports = instance.exports as unknown as KernelExports;
  return (task: Task) => {
    try {
      (exports[task.fn] as (...a: number[]) => void)(...task.args);
      reply({ id: task.id });
    } catch (e) {
      reply({ id: task.id, error: `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? e}` });
    }
  };
}

if (typeof process !== 'undefined' && process.versions?.node) {
  const { parentPort, workerData } = await import('node:worker_threads');
  const run = serve(workerData as Init, (m) => parentPort!.postMessage(m));
  parentPort!.on('message', (t: Task) => run(t));
} else {
  let run: ((t: Task) => void) | undefined;
  const scope = globalThis as unknown as { onmessage: (e: MessageEvent) => void; postMessage: Reply };
  scope.onmessage = (e: MessageEvent) => {
    if (e.data?.init) run = serve(e.data.init as Init, (m) => scope.postMessage(m));
    else run?.(e.data as Task);
  };
}

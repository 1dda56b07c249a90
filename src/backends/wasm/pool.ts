import { KernelError } from '../../errors.js';
import { spawnWorker, type WorkerPort } from './platform.js';

export interface Task {
  fn: string;
  args: number[];
}

/** The kernels a worker may be asked to run, by index in a task record. */
export const TASK_FNS = ['pcilt_rows', 'direct_rows', 'direct8_rows', 'depthwise_rows', 'depthwise_f32_planes', 'sgemm', 'quantize_pad', 'quantize_levels_pad', 'quantize_pad_channels', 'pool_f32', 'pack_groups', 'sgemm_bias_act', 'pack_conv_panels', 'conv_groups_f32', 'matmul_batched_f32', 'sgemm_bias', 'sgemm_conv', 'unary_f32', 'conv_direct_f32'];

/**
 * A worker's control block, shared with it: Int32 slots (the sequence number of the last call handed
 * to it, the last one it finished, the generation of that call's task table, the length of its last
 * error message, 1 once its kernels are instantiated), that message as UTF-8 from byte 256.
 */
export const CTRL = { SEQ: 0, DONE: 1, GEN: 2, ERRLEN: 3, READY: 4, ERR_AT: 256, BYTES: 2048 } as const;

/**
 * The task table of a call, shared by the calling thread and the workers: Int32 slots (the call's
 * word, generation << 16 | task count << 8 | next task to take; the tasks finished, generation << 16 |
 * count; 1 + the id of the first worker whose task failed), then MAX_TASKS records of a function
 * index, an argument count and MAX_ARGS Float64 arguments.
 */
export const QUEUE = { RUN: 0, FINISHED: 1, FAILED: 2, TASKS_AT: 64, TASK_BYTES: 16 + 16 * 8, MAX_ARGS: 16, MAX_TASKS: 64, BYTES: 64 + 64 * (16 + 16 * 8) } as const;

/**
 * The next task of call `gen` that nobody has taken, or -1. Threads take tasks instead of being
 * handed one each, so that a worker the OS has not scheduled yet (or that is asleep) leaves its
 * share to the threads that are running rather than making the call wait for it.
 */
export function takeTask(q: Int32Array, gen: number): number {
  for (;;) {
    const w = Atomics.load(q, QUEUE.RUN);
    if (w >>> 16 !== gen || (w & 255) >= ((w >>> 8) & 255)) return -1;
    if (Atomics.compareExchange(q, QUEUE.RUN, w, w + 1) === w) return w & 255;
  }
}

/**
 * How long a worker polls its control block after a call before it sleeps (the calling thread's
 * JS between two layers takes less). The calling thread polls for the workers' tasks for half
 * as long as its own tasks took, between 0.5 ms and this: a worker that lags by more
 * has likely lost its core (to V8's compiler or GC threads), and polling would only keep it off.
 */
export const SPIN_MS = 1;

/** Polls `done` for spinMs, then sleeps on slot `at` of `i32` until it changes (or 20 ms), until done; `check` throws to give up. */
async function until(i32: Int32Array, at: number, done: () => boolean, spinMs: number, check: () => void): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const seen = Atomics.load(i32, at);
    if (done()) return;
    check();
    if (performance.now() - t0 < spinMs) continue;
    // Sleep until the slot changes, or 20 ms (a timer, which also keeps Node's event loop alive, so that a
    // death is noticed).
    const w = (Atomics as { waitAsync?: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: Promise<unknown> } }).waitAsync?.(i32, at, seen, 1000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, w?.async ? 20 : 1);
      if (w?.async) void w.value.then(() => resolve());
    });
    clearTimeout(timer);
  }
}

/** One worker and its control block. */
class Slot {
  dead: string | null = null;
  private seq = 0;
  private readonly i32: Int32Array;

  constructor(readonly port: WorkerPort, readonly id: number, readonly ctrl: SharedArrayBuffer) {
    this.i32 = new Int32Array(ctrl);
    port.onFailure((why) => {
      if (!this.dead) this.dead = why;
    });
  }

  /** Asks the worker to take tasks of call `gen` from the table. A call it has not got to yet is superseded: it takes from the newest. */
  start(gen: number): void {
    Atomics.store(this.i32, CTRL.GEN, gen);
    Atomics.store(this.i32, CTRL.SEQ, ++this.seq);
    Atomics.notify(this.i32, CTRL.SEQ);
  }

  /** Resolves once the worker has instantiated its kernels (tens of ms after it is spawned); rejects if it died first. */
  started(): Promise<void> {
    return until(this.i32, CTRL.READY, () => Atomics.load(this.i32, CTRL.READY) === 1, 0, () => this.alive('while starting'));
  }

  /** Resolves once the worker has answered every call handed to it (it may have found no task left). */
  idle(): Promise<void> {
    return until(this.i32, CTRL.DONE, () => Atomics.load(this.i32, CTRL.DONE) === this.seq, 0, () => this.alive('during a call'));
  }

  /** The message of the worker's last failed task. */
  error(): string {
    return new TextDecoder().decode(new Uint8Array(this.ctrl, CTRL.ERR_AT, this.i32[CTRL.ERRLEN]).slice());
  }

  alive(when: string): void {
    if (this.dead) throw new KernelError(`wasm worker ${this.id} ${this.dead} ${when}`);
  }
}

/**
 * Worker threads reused across calls. A call writes its tasks into a shared table; the calling thread
 * and the workers take them one at a time until none is left, and the call returns once all are done.
 * Workers poll their control block for a moment after a call before sleeping; one that dies is
 * replaced on the next call.
 */
export class Pool {
  private slots: Slot[] = [];
  private nextId = 0;
  private gen = 0;
  private queue: SharedArrayBuffer | null = null;
  /** The run in progress: the task table holds one call's tasks, so calls take turns. */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(private readonly init: Record<string, unknown> | null) {}

  /** Runs the tasks, the calling thread's share through `here`, the rest on up to tasks.length - 1 workers; resolves when all are done. Concurrent calls queue. */
  run(tasks: Task[], here: (t: Task) => void): Promise<void> {
    return this.inTurn(async () => {
      for (let i = 0; i < tasks.length; i += QUEUE.MAX_TASKS) await this.runNow(tasks.slice(i, i + QUEUE.MAX_TASKS), here);
    });
  }

  /** Runs f once everything queued before it has settled. */
  private inTurn(f: () => Promise<void>): Promise<void> {
    const mine = this.turn.then(f);
    this.turn = mine.catch(() => {});
    return mine;
  }

  private async runNow(tasks: Task[], here: (t: Task) => void): Promise<void> {
    const n = tasks.length;
    const fns = tasks.map((t) => {
      const fn = TASK_FNS.indexOf(t.fn);
      if (fn < 0 || t.args.length > QUEUE.MAX_ARGS) throw new KernelError(`no worker task '${t.fn}' with ${t.args.length} arguments`);
      return fn;
    });
    if (n <= 1) {
      try {
        if (n) here(tasks[0]);
      } catch (e) {
        throw new KernelError(`wasm kernel failed on the calling thread: ${(e as Error).message}`);
      }
      return;
    }
    // ensure() makes the table with the first workers.
    await this.ensure(n - 1);
    const q = new Int32Array(this.queue!), qf = new Float64Array(this.queue!);
    tasks.forEach((t, k) => {
      const at = QUEUE.TASKS_AT + k * QUEUE.TASK_BYTES;
      q[at >> 2] = fns[k];
      q[(at >> 2) + 1] = t.args.length;
      qf.set(t.args, (at >> 3) + 2);
    });
    const gen = (this.gen = (this.gen + 1) & 0xffff);
    Atomics.store(q, QUEUE.FAILED, 0);
    Atomics.store(q, QUEUE.FINISHED, gen << 16);
    Atomics.store(q, QUEUE.RUN, (gen << 16) | (n << 8));
    const helpers = this.slots.slice(0, n - 1).filter((s) => !s.dead);
    for (const s of helpers) s.start(gen);
    let localError: unknown;
    const t0 = performance.now();
    for (let k; (k = takeTask(q, gen)) >= 0;) {
      try {
        here(tasks[k]);
      } catch (e) {
        localError ??= e;
      }
      Atomics.add(q, QUEUE.FINISHED, 1);
    }
    const spin = Math.min(SPIN_MS, Math.max(0.5, (performance.now() - t0) / 2));
    // A worker that died holding a task never finishes it: once the live workers have answered the call,
    // the call fails if a task is still unfinished (one that died before taking any costs nothing).
    const all = (gen << 16) | n, finished = () => Atomics.load(q, QUEUE.FINISHED) === all;
    try {
      await until(q, QUEUE.FINISHED, finished, spin, () => helpers.forEach((s) => s.alive('during a call')));
    } catch (e) {
      await Promise.allSettled(helpers.filter((s) => !s.dead).map((s) => s.idle()));
      if (!finished()) throw e;
    }
    if (localError) throw new KernelError(`wasm kernel failed on the calling thread: ${(localError as Error).message}`);
    const failed = Atomics.load(q, QUEUE.FAILED);
    if (failed) throw new KernelError(`wasm kernel failed in worker ${failed - 1}: ${this.slots.find((s) => s.id === failed - 1)?.error() ?? '(no message)'}`);
  }

  /**
   * Starts workers ahead of the first call that needs n of them (starting one takes tens of ms);
   * in turn with runs, so that none waits twice.
   */
  prepare(n: number): Promise<void> {
    return this.inTurn(() => this.ensure(n));
  }

  /** Workers currently alive (for tests and diagnostics). */
  get size(): number {
    return this.slots.filter((s) => !s.dead).length;
  }

  /** Stops one worker abruptly, as a crash would. For tests of failure handling. */
  killWorker(index: number): void {
    this.slots[index]?.port.terminate();
  }

  private async ensure(n: number): Promise<void> {
    this.slots = this.slots.filter((s) => !s.dead);
    const spawned: Slot[] = [];
    this.queue ??= new SharedArrayBuffer(QUEUE.BYTES);
    while (this.slots.length < n) {
      const ctrl = new SharedArrayBuffer(CTRL.BYTES), id = this.nextId++;
      const port = await spawnWorker({ ...this.init, ctrl, queue: this.queue, id });
      // An idle worker must not keep the process alive (the calling thread's timers do while it waits).
      port.busy(false);
      const slot = new Slot(port, id, ctrl);
      this.slots.push(slot);
      spawned.push(slot);
    }
    // They start side by side; a call (or a model's load) returns once they can take tasks.
    await Promise.all(spawned.map((s) => s.started()));
  }
}

import { KernelError } from '../../errors.js';
import { spawnWorker, type WorkerPort } from './platform.js';

export interface Task {
  fn: string;
  args: number[];
}

/** The kernels a worker may be asked to run, by index in its control block. */
export const TASK_FNS = ['pcilt_rows', 'direct_rows', 'direct8_rows', 'depthwise_rows', 'depthwise_f32_planes', 'sgemm', 'quantize_pad', 'quantize_levels_pad', 'quantize_pad_channels', 'pool_f32', 'pack_groups', 'sgemm_bias_act', 'pack_conv_panels', 'conv_groups_f32', 'matmul_batched_f32', 'sgemm_bias', 'sgemm_conv', 'unary_f32', 'conv_direct_f32'];

/**
 * A worker's control block, shared with it: Int32 slots (the task's sequence number, the last one
 * done, function, argument count, status, error length, 1 once its kernels are instantiated), the
 * arguments as Float64 from byte 64, an error message as UTF-8 from byte 256.
 */
export const CTRL = { SEQ: 0, DONE: 1, FN: 2, ARGC: 3, STATUS: 4, ERRLEN: 5, READY: 6, ARGS_AT: 64, MAX_ARGS: 16, ERR_AT: 256, BYTES: 2048 } as const;

/**
 * How long a worker polls its control block after a task before it sleeps (the calling thread's
 * JS between two layers takes less). The calling thread polls for the worker's result for half
 * as long as its own part of the call took, between 0.5 ms and this: a worker that lags by more
 * has likely lost its core (to V8's compiler or GC threads), and polling would only keep it off.
 */
export const SPIN_MS = 1;

/** One worker and its control block. */
class Slot {
  dead: string | null = null;
  private seq = 0;
  private readonly i32: Int32Array;

  constructor(readonly port: WorkerPort, readonly index: number, readonly ctrl: SharedArrayBuffer) {
    this.i32 = new Int32Array(ctrl);
    port.onFailure((why) => {
      if (!this.dead) this.dead = why;
    });
  }

  /** Hands the worker a task. */
  start(t: Task): void {
    const fn = TASK_FNS.indexOf(t.fn);
    if (fn < 0 || t.args.length > CTRL.MAX_ARGS) throw new KernelError(`no worker task '${t.fn}' with ${t.args.length} arguments`);
    new Float64Array(this.ctrl, CTRL.ARGS_AT, CTRL.MAX_ARGS).set(t.args);
    this.i32[CTRL.FN] = fn;
    this.i32[CTRL.ARGC] = t.args.length;
    this.port.busy(true);
    Atomics.store(this.i32, CTRL.SEQ, ++this.seq);
    Atomics.notify(this.i32, CTRL.SEQ);
  }

  /** Resolves once the worker has instantiated its kernels (tens of ms after it is spawned); rejects if it died first. */
  started(): Promise<void> {
    return this.until(CTRL.READY, () => Atomics.load(this.i32, CTRL.READY) === 1, 0, 'while starting');
  }

  /** Resolves when the worker has done its task (polling up to spinMs first); rejects if it failed or died. */
  async finish(spinMs: number): Promise<void> {
    try {
      await this.until(CTRL.DONE, () => Atomics.load(this.i32, CTRL.DONE) === this.seq, spinMs, 'during a call');
    } finally {
      this.port.busy(false);
    }
    if (this.i32[CTRL.STATUS] !== 0) {
      const msg = new TextDecoder().decode(new Uint8Array(this.ctrl, CTRL.ERR_AT, this.i32[CTRL.ERRLEN]).slice());
      throw new KernelError(`wasm kernel failed in worker ${this.index}: ${msg}`);
    }
  }

  /** Waits until `done()`, polling for spinMs and then sleeping on control slot `at`; rejects if the worker dies. */
  private async until(at: number, done: () => boolean, spinMs: number, when: string): Promise<void> {
    const t0 = performance.now();
    for (;;) {
      const seen = Atomics.load(this.i32, at);
      if (done()) return;
      if (this.dead) throw new KernelError(`wasm worker ${this.index} ${this.dead} ${when}`);
      if (performance.now() - t0 < spinMs) continue;
      // Sleep until the worker signals, or 20 ms (a timer, which also keeps Node's event loop
      // alive, so that a death is noticed).
      const w = (Atomics as { waitAsync?: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: Promise<unknown> } }).waitAsync?.(this.i32, at, seen, 1000);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        timer = setTimeout(resolve, w?.async ? 20 : 1);
        if (w?.async) void w.value.then(() => resolve());
      });
      clearTimeout(timer);
    }
  }
}

/**
 * Worker threads reused across calls. A call runs its first task on the calling thread and the
 * others on workers, handed over and collected through shared control blocks that both sides poll
 * for a moment before sleeping; a worker that dies is replaced on the next call.
 */
export class Pool {
  private slots: Slot[] = [];
  /** The run in progress: a worker's control block holds one task, so runs take turns. */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(private readonly init: Record<string, unknown> | null) {}

  /** Runs tasks[0] through `here` and the rest on workers; resolves when all are done. Concurrent calls queue. */
  run(tasks: Task[], here: (t: Task) => void): Promise<void> {
    return this.inTurn(() => this.runNow(tasks, here));
  }

  /** Runs f once everything queued before it has settled. */
  private inTurn(f: () => Promise<void>): Promise<void> {
    const mine = this.turn.then(f);
    this.turn = mine.catch(() => {});
    return mine;
  }

  private async runNow(tasks: Task[], here: (t: Task) => void): Promise<void> {
    const remote = tasks.slice(1);
    await this.ensure(remote.length);
    const started = remote.map((t, i) => {
      const slot = this.slots[i];
      if (slot.dead) return Promise.reject(new KernelError(`wasm worker ${slot.index} ${slot.dead}`));
      slot.start(t);
      return null;
    });
    let localError: unknown;
    const t0 = performance.now();
    try {
      if (tasks.length) here(tasks[0]);
    } catch (e) {
      localError = e;
    }
    const spin = Math.min(SPIN_MS, Math.max(0.5, (performance.now() - t0) / 2));
    const results = await Promise.allSettled(started.map((s, i) => s ?? this.slots[i].finish(spin)));
    if (localError) throw new KernelError(`wasm kernel failed on the calling thread: ${(localError as Error).message}`);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
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
    while (this.slots.length < n) {
      const ctrl = new SharedArrayBuffer(CTRL.BYTES);
      const port = await spawnWorker({ ...this.init, ctrl });
      // Idle until a task: an idle worker must not keep the process alive.
      port.busy(false);
      const slot = new Slot(port, this.slots.length, ctrl);
      this.slots.push(slot);
      spawned.push(slot);
    }
    // They start side by side; a call (or a model's load) returns once they can take tasks.
    await Promise.all(spawned.map((s) => s.started()));
  }
}

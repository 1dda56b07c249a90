import { KernelError } from '../../errors.js';
import { spawnWorker, type WorkerPort } from './platform.js';

export interface Task {
  fn: string;
  args: number[];
}

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** One worker and the task it is running. */
class Slot {
  pending = new Map<number, Pending>();
  dead: string | null = null;

  constructor(readonly port: WorkerPort, readonly index: number) {
    port.onMessage((msg) => {
      const { id, error } = msg as { id: number; error?: string };
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (this.pending.size === 0) port.busy(false);
      if (error) p.reject(new KernelError(`wasm kernel failed in worker ${index}: ${error}`));
      else p.resolve();
    });
    port.onFailure((why) => {
      if (this.dead) return;
      this.dead = why;
      for (const p of this.pending.values()) p.reject(new KernelError(`wasm worker ${index} ${why} during a call`));
      this.pending.clear();
      port.busy(false);
    });
  }
}

/**
 * Worker threads reused across calls. A call runs its first task on the calling thread and
 * the others on workers; a worker that dies is replaced on the next call.
 */
export class Pool {
  private slots: Slot[] = [];
  private nextId = 1;

  constructor(private readonly init: unknown) {}

  /** Runs tasks[0] through `here` and the rest on workers; resolves when all are done. */
  async run(tasks: Task[], here: (t: Task) => void): Promise<void> {
    const remote = tasks.slice(1);
    await this.ensure(remote.length);
    const done = remote.map((t, i) => this.send(this.slots[i], t));
    let localError: unknown;
    try {
      if (tasks.length) here(tasks[0]);
    } catch (e) {
      localError = e;
    }
    const results = await Promise.allSettled(done);
    if (localError) throw new KernelError(`wasm kernel failed on the calling thread: ${(localError as Error).message}`);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
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
    while (this.slots.length < n) this.slots.push(new Slot(await spawnWorker(this.init), this.slots.length));
  }

  private send(slot: Slot, t: Task): Promise<void> {
    return new Promise((resolve, reject) => {
      if (slot.dead) return reject(new KernelError(`wasm worker ${slot.index} ${slot.dead}`));
      const id = this.nextId++;
      slot.pending.set(id, { resolve, reject });
      slot.port.busy(true);
      slot.port.post({ id, fn: t.fn, args: t.args });
    });
  }
}

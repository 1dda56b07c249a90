import { ArgumentError, BackendUnavailableError } from '../errors.js';
import { jsBackend } from './js/kernels.js';
import { wasmBackend } from './wasm/backend.js';
import type { Backend, DirectJob, PciltJob } from './types.js';

const backends = new Map<string, Backend>([['wasm', wasmBackend], ['js', jsBackend]]);

/**
 * Chooses among usable backends for 'auto'. The default prefers any registered backend
 * over the reference; faster backends install a measured chooser.
 */
export type AutoChooser = (op: 'pcilt' | 'direct', job: PciltJob | DirectJob, usable: Backend[]) => Backend;
let chooser: AutoChooser = (_op, _job, usable) => usable.find((b) => b.name !== 'js') ?? jsBackend;

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

export function setAutoChooser(c: AutoChooser): void {
  chooser = c;
}

export function backendNames(): string[] {
  return [...backends.keys()];
}

export function getBackend(name: string): Backend | undefined {
  return backends.get(name);
}

/** Resolves options.backend for one job; throws a typed error for unknown or unusable ones. */
export async function resolveBackend(name: unknown, op: 'pcilt' | 'direct', job: PciltJob | DirectJob): Promise<Backend> {
  const wanted = name ?? 'auto';
  if (wanted === 'auto') {
    const usable: Backend[] = [];
    for (const b of backends.values()) {
      if ((await b.unavailableReason()) === null && support(b, op, job) === null) usable.push(b);
    }
    return chooser(op, job, usable);
  }
  const b = typeof wanted === 'string' ? backends.get(wanted) : undefined;
  if (!b) throw new ArgumentError('options.backend', wanted, `one of 'auto', ${backendNames().map((n) => `'${n}'`).join(', ')}`);
  const reason = (await b.unavailableReason()) ?? support(b, op, job);
  if (reason !== null) throw new BackendUnavailableError(b.name, reason);
  return b;
}

function support(b: Backend, op: 'pcilt' | 'direct', job: PciltJob | DirectJob): string | null {
  return op === 'pcilt' ? b.supportsPcilt(job as PciltJob) : b.supportsDirect(job as DirectJob);
}

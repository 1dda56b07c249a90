import { ArgumentError, BackendUnavailableError } from '../errors.js';
import { macsOf, type ConvGeometry } from '../conv/geometry.js';
import { requantizeSums } from '../conv/requantize.js';
import { checkCodeRange, type OutputData } from '../tensor.js';
import { autoRun, knownWinner, type Candidate } from './auto.js';
import { jsBackend } from './js/kernels.js';
import { wasmBackend } from './wasm/backend.js';
import { webgpuBackend } from './webgpu/backend.js';
import type { Backend, DirectJob, PciltJob } from './types.js';

const backends = new Map<string, Backend>([['wasm', wasmBackend], ['webgpu', webgpuBackend], ['js', jsBackend]]);

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

export function backendNames(): string[] {
  return [...backends.keys()];
}

async function usable(b: Backend, reason: string | null): Promise<boolean> {
  return reason === null && (await b.unavailableReason()) === null;
}

/**
 * Runs a job on one backend; where the job requantizes and the backend's kernels do not, the
 * backend computes the int32 sums and they are requantized here (the reference twin). Input codes
 * are range-checked here unless the backend checks them.
 */
async function runOn(b: Backend, op: 'pcilt' | 'direct', job: PciltJob | DirectJob): Promise<OutputData> {
  if (!b.checksCodes) checkCodeRange(job.input, op === 'pcilt' ? (job as PciltJob).tables.activationBits : (job as DirectJob).activationBits);
  const run = (j: PciltJob | DirectJob) => (op === 'pcilt' ? b.pcilt(j as PciltJob) : b.direct(j as DirectJob));
  if (!job.requant || b.requantizes) return run(job);
  const sums = await run({ ...job, requant: undefined, out: undefined });
  return requantizeSums(sums, job.geometry, job.requant, job.out as Uint8Array | undefined);
}

/** Below this many multiply-accumulates 'auto' also tries one thread. */
const SMALL_MACS = 20e6;

/**
 * Adds candidates to `found`: each run with the caller's thread count and, on a small layer
 * whose caller left the count open, also on the calling thread alone ('-1t'): small layers may
 * not repay waking worker threads.
 */
export function candidateAdder<T = OutputData>(found: { label: string; run: () => Promise<T> | T }[], g: ConvGeometry, threads: number | undefined) {
  const alsoOneThread = threads === undefined && macsOf(g) < SMALL_MACS;
  return (label: string, run: (threads: number | undefined) => Promise<T> | T) => {
    found.push({ label, run: () => run(threads) });
    if (alsoOneThread) found.push({ label: `${label}-1t`, run: () => run(1) });
  };
}

/** Resolves a named backend for one job; throws a typed error for unknown or unusable ones. */
async function named(name: unknown, op: 'pcilt' | 'direct', job: PciltJob | DirectJob): Promise<Backend> {
  const b = typeof name === 'string' ? backends.get(name) : undefined;
  if (!b) throw new ArgumentError('options.backend', name, `one of 'auto', ${backendNames().map((n) => `'${n}'`).join(', ')}`);
  const reason = (await b.unavailableReason()) ?? (op === 'pcilt' ? b.supportsPcilt(job as PciltJob) : b.supportsDirect(job as DirectJob));
  if (reason !== null) throw new BackendUnavailableError(b.name, reason);
  return b;
}

/** How one candidate runs a job: found when the candidates are listed, kept for the winner of a job kind. */
interface Route { backend: Backend; op: 'pcilt' | 'direct'; kernel?: string; oneThread: boolean }

/** The winners' routes by job kind: a known winner runs without listing the candidates again. */
const routes = new Map<string, Route>();

function runRoute(r: Route, op: 'pcilt' | 'direct', job: PciltJob | DirectJob): Promise<OutputData> | null {
  const threads = r.oneThread ? 1 : job.threads;
  if (r.op === 'pcilt') return runOn(r.backend, 'pcilt', { ...(job as PciltJob), threads });
  const d = op === 'direct' ? (job as DirectJob) : directTwin(job as PciltJob);
  return d ? runOn(r.backend, 'direct', { ...d, kernel: r.kernel, threads }) : null;
}

/**
 * The ways 'auto' may run a job: every usable backend's kernel for the op, and for a PCILT job
 * whose tables still determine their weights, direct multiplication with those weights.
 * The reference 'js' is only a candidate when nothing faster can run the job. WebGPU is not a
 * candidate: a single op pays for uploads and a read-back, so it is used when asked for.
 */
async function candidates(op: 'pcilt' | 'direct', job: PciltJob | DirectJob): Promise<(Candidate & { route: Route })[]> {
  const found: Candidate[] = [];
  const routed: Route[] = [];
  const add = candidateAdder(found, job.geometry, job.threads);
  const route = (label: string, r: Omit<Route, 'oneThread'>) => {
    const before = found.length;
    // The adder gives each variant its thread count; the route records which variant it is.
    add(label, (threads) => runRoute({ ...r, oneThread: false }, op, { ...job, threads })!);
    for (let i = before; i < found.length; i++) routed.push({ ...r, oneThread: found[i].label.endsWith('-1t') });
  };
  const direct = op === 'direct' ? (job as DirectJob) : directTwin(job as PciltJob);
  for (const b of backends.values()) {
    if (!b.inAuto) continue;
    if (op === 'pcilt' && (await usable(b, b.supportsPcilt(job as PciltJob)))) route(`${b.name}-pcilt`, { backend: b, op: 'pcilt' });
    if (direct && (await usable(b, b.supportsDirect(direct)))) {
      const kernels = b.directKernels?.(direct) ?? [];
      route(`${b.name}-direct`, { backend: b, op: 'direct' });
      for (const kernel of kernels.slice(1)) route(`${b.name}-direct-${kernel}`, { backend: b, op: 'direct', kernel });
    }
  }
  if (found.length === 0) {
    // The reference alone (single-threaded: no '-1t' twin to time).
    found.push({ label: `js-${op}`, run: () => runOn(jsBackend, op, job) });
    routed.push({ backend: jsBackend, op, oneThread: false });
  }
  return found.map((c, i) => ({ ...c, route: routed[i] }));
}

/** The direct job that computes the same output as a PCILT job, when the tables allow it. */
function directTwin(job: PciltJob): DirectJob | null {
  const weight = job.tables.derivedWeights();
  if (!weight) return null;
  return {
    input: job.input, weight, geometry: job.geometry, bias: job.bias, activationBits: job.tables.activationBits,
    integer: job.integer, threads: job.threads, requant: job.requant, out: job.out,
  };
}

function autoKey(op: string, job: PciltJob | DirectJob): string {
  const g = job.geometry;
  const shape = [g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.strideH, g.strideW, g.dilH, g.dilW, g.padT, g.padL, g.padB, g.padR, g.groups].join(',');
  const kind = op === 'pcilt'
    ? (() => { const t = (job as PciltJob).tables; return `${t.activationBits}b/${t.variant}/g${t.groupSize}/${t.entryType}`; })()
    : `${(job as DirectJob).activationBits}b/${(job as DirectJob).weight.constructor.name}`;
  return `${op}|${shape}|${kind}${job.requant ? '|codes' : ''}|t${job.threads ?? 'default'}`;
}

/** Runs one validated job on the backend `name` names ('auto' when undefined). */
export async function runJob(name: unknown, op: 'pcilt' | 'direct', job: PciltJob | DirectJob): Promise<OutputData> {
  if ((name ?? 'auto') === 'auto') {
    const key = autoKey(op, job);
    const winner = knownWinner(key);
    const known = winner ? routes.get(key) : undefined;
    const fast = known ? runRoute(known, op, job) : null;
    if (fast) return fast;
    const found = await candidates(op, job);
    const pick = winner ? found.find((c) => c.label === winner) : undefined;
    if (pick) {
      // A winner restored from a saved model, or measured before its route was kept.
      routes.set(key, pick.route);
      return pick.run();
    }
    const out = await autoRun(key, found);
    const chosen = found.find((c) => c.label === knownWinner(key));
    if (chosen) routes.set(key, chosen.route);
    return out;
  }
  return runOn(await named(name, op, job), op, job);
}

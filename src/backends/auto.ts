import type { OutputData } from '../tensor.js';

/** One way to compute a job's output; every candidate gives the same, exact result. */
export interface Candidate {
  label: string;
  run: () => Promise<OutputData> | OutputData;
}

/** What 'auto' measured for one kind of job and what it chose. */
export interface AutoChoice {
  key: string;
  winner: string;
  /** Each candidate's fastest calibration run, in milliseconds. */
  ms: Record<string, number>;
}

const choices = new Map<string, AutoChoice>();
let lastKey: string | undefined;

/** Calibration stops after this many rounds, or once it has spent this long. */
const MAX_ROUNDS = 9;
const BUDGET_MS = 60;

/**
 * Runs the fastest candidate for this kind of job. The first job of a kind warms every
 * candidate up (V8 compiles wasm in tiers), then times them in interleaved rounds (at least
 * three, more for short jobs) and keeps the one with the lowest time; later jobs run the winner.
 */
export async function autoRun(key: string, candidates: Candidate[]): Promise<OutputData> {
  if (candidates.length === 1) {
    choices.set(key, { key, winner: candidates[0].label, ms: {} });
    return candidates[0].run();
  }
  const ms: Record<string, number> = {};
  let out: OutputData | undefined;
  for (const c of candidates) {
    await c.run();
    ms[c.label] = Infinity;
  }
  const start = performance.now();
  for (let round = 0; round < MAX_ROUNDS && (round < 3 || performance.now() - start < BUDGET_MS); round++) {
    for (const c of candidates) {
      const t0 = performance.now();
      out = await c.run();
      ms[c.label] = Math.min(ms[c.label], performance.now() - t0);
    }
  }
  const winner = candidates.reduce((a, b) => (ms[b.label] < ms[a.label] ? b : a)).label;
  choices.set(key, { key, winner, ms });
  return out!;
}

/** The candidate 'auto' settled on for this kind of job, if it has measured it. */
export function knownWinner(key: string): string | undefined {
  lastKey = key;
  return choices.get(key)?.winner;
}

/** The choice behind the latest job 'auto' ran (for per-layer profiles). */
export function lastAutoChoice(): AutoChoice | undefined {
  return lastKey === undefined ? undefined : choices.get(lastKey);
}

/** The choices 'auto' has made so far in this process (for profiles and the bench report). */
export function autoChoices(): AutoChoice[] {
  return [...choices.values()];
}

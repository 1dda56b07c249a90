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
  /** Milliseconds of each candidate's second run (the first one warms it up). */
  ms: Record<string, number>;
}

const choices = new Map<string, AutoChoice>();

/**
 * Runs the fastest candidate for this kind of job. The first job of a kind runs every
 * candidate twice and keeps the faster by its second (warm) run; later jobs run the winner.
 */
export async function autoRun(key: string, candidates: Candidate[]): Promise<OutputData> {
  const known = choices.get(key);
  const pick = known && candidates.find((c) => c.label === known.winner);
  if (pick) return pick.run();
  if (candidates.length === 1) {
    choices.set(key, { key, winner: candidates[0].label, ms: {} });
    return candidates[0].run();
  }
  const ms: Record<string, number> = {};
  let best: { label: string; out: OutputData; ms: number } | undefined;
  for (const c of candidates) {
    await c.run();
    const t0 = performance.now();
    const out = await c.run();
    ms[c.label] = performance.now() - t0;
    if (!best || ms[c.label] < best.ms) best = { label: c.label, out, ms: ms[c.label] };
  }
  choices.set(key, { key, winner: best!.label, ms });
  return best!.out;
}

/** The choices 'auto' has made so far in this process (for profiles and the bench report). */
export function autoChoices(): AutoChoice[] {
  return [...choices.values()];
}

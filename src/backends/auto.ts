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
  /** Each candidate's median calibration run, in milliseconds. */
  ms: Record<string, number>;
  /** Interleaved rounds it timed (every candidate once a round). */
  rounds: number;
  /**
   * Candidates whose medians came within 5% of the fastest median: a tie, which the candidate
   * listed first wins (the registry lists the kernel of the op asked for before its alternatives,
   * imported models' layers direct multiplication, which needs no tables, before PCILT).
   */
  tiedWith: string[];
  /** Taken from a saved model measured on this machine (restoreChoices), not measured in this process. */
  restored?: boolean;
  /**
   * What the machine's cost model predicted for each candidate (ms), when it made the choice
   * (predictChoice): no candidate was timed on the first call; a close runner-up is measured
   * against the winner over later calls (`probing` until it has been).
   */
  predicted?: Record<string, number>;
  probing?: boolean;
}

/** What 'auto' learned, as a model stores it: valid on the machine it was measured on. */
export interface SavedChoices {
  /** CPU, wasm features and thread count (machineKey()). */
  machine: string;
  /** Job kind -> winning candidate. */
  choices: Record<string, string>;
}

const choices = new Map<string, AutoChoice>();
let lastKey: string | undefined;

/** A job kind whose candidates are being measured over its calls, one candidate a call. */
interface Probe { queue: string[]; times: Record<string, number[]>; rounds: number; spentMs: number }
const probes = new Map<string, Probe>();

/** A runner-up predicted within this factor of the predicted winner is measured against it over later calls. */
const CLOSE = 1.25;
/** Measuring over calls stops after this many rounds: each round slows two calls of the kind. */
const PROBE_ROUNDS = 6;

/** Calibration takes at least MIN_ROUNDS rounds and at most MAX_ROUNDS, after WARM_UP calls of each candidate. */
const WARM_UP = 2;
const MIN_ROUNDS = 3;
const MAX_ROUNDS = 15;
/** Rounds go on while they are this cheap (ms so far), separated or not: more samples, nearly free. */
const CHEAP_MS = 10;
/** Rounds beyond MIN_ROUNDS stop once calibration has spent this long (ms), separated or not. */
const BUDGET_MS = 400;

/** The median of some times (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Medians within this share of the fastest one are a tie. */
const TIE = 0.05;

/**
 * The decision from per-candidate run times (ms), in candidate order. `separated`: every other
 * candidate's fastest run is slower than the fastest median (the noise no longer mixes them; until
 * then calibration goes on). The lowest median wins, except that candidates whose medians are within
 * TIE of it tie with it, and the tied candidate listed first wins.
 */
export function autoDecision(times: Record<string, number[]>): { winner: string; ms: Record<string, number>; tiedWith: string[]; separated: boolean } {
  const labels = Object.keys(times);
  const ms: Record<string, number> = {};
  for (const l of labels) ms[l] = median(times[l]);
  const fastest = labels.reduce((a, b) => (ms[b] < ms[a] ? b : a));
  const separated = labels.every((l) => l === fastest || Math.min(...times[l]) > ms[fastest]);
  const tied = labels.filter((l) => ms[l] <= ms[fastest] * (1 + TIE));
  return { winner: tied[0], ms, tiedWith: tied.filter((l) => l !== tied[0]), separated };
}

/**
 * Runs the fastest candidate for this kind of job. The first job of a kind warms every candidate
 * up (V8 compiles wasm in tiers), then times them in interleaved rounds until their medians
 * separate beyond the noise (at least MIN_ROUNDS; more while rounds are cheap), within a budget;
 * later jobs of the kind run the winner. A kind whose choice was predicted close (predictChoice)
 * is measured here over its later calls instead, one candidate run a call.
 */
export async function autoRun(key: string, candidates: Candidate[]): Promise<OutputData> {
  if (candidates.length === 1) {
    choices.set(key, { key, winner: candidates[0].label, ms: {}, rounds: 0, tiedWith: [] });
    return candidates[0].run();
  }
  const probe = probes.get(key);
  if (probe) return probeStep(key, probe, candidates);
  const times: Record<string, number[]> = {};
  let out: OutputData | undefined;
  // V8 compiles wasm and JS in tiers during the first calls, on the workers too.
  for (let i = 0; i < WARM_UP; i++) for (const c of candidates) await c.run();
  for (const c of candidates) times[c.label] = [];
  const start = performance.now();
  let rounds = 0;
  for (; rounds < MAX_ROUNDS; rounds++) {
    if (rounds >= MIN_ROUNDS && enough(times, performance.now() - start)) break;
    for (const c of candidates) {
      const t0 = performance.now();
      out = await c.run();
      times[c.label].push(performance.now() - t0);
    }
  }
  const { winner, ms, tiedWith } = autoDecision(times);
  choices.set(key, { key, winner, ms, tiedWith, rounds });
  return out!;
}

/**
 * Chooses a kind's candidate from predicted times (ms per label, in listing order; from the
 * machine's cost model), without running any: the fastest, or the first listed of those within
 * TIE of it. Where the runner-up was predicted within CLOSE of the winner, the two are then
 * measured as autoRun measures, but over the kind's later calls, one run a call (every candidate
 * computes the same output), until the measured winner replaces the predicted one. Returns the
 * label to run now, or undefined where it cannot predict (no times, or the kind is being measured).
 */
export function predictChoice(key: string, labels: string[], predicted: Record<string, number> | null): string | undefined {
  if (!predicted || probes.has(key) || !labels.every((l) => predicted[l] !== undefined)) return undefined;
  const winner = predictedWinner(labels, predicted);
  const others = labels.filter((l) => l !== winner);
  const runnerUp = others.length ? others.reduce((a, b) => (predicted[b] < predicted[a] ? b : a)) : undefined;
  const probing = runnerUp !== undefined && predicted[runnerUp] <= predicted[winner] * CLOSE;
  choices.set(key, { key, winner, ms: {}, rounds: 0, tiedWith: [], predicted, probing });
  if (probing) {
    // The winner runs now; its run is its first warm-up.
    const queue = [...Array<string>(WARM_UP - 1).fill(winner), ...Array<string>(WARM_UP).fill(runnerUp)];
    probes.set(key, { queue, times: { [winner]: [], [runnerUp]: [] }, rounds: -1, spentMs: 0 });
  }
  return winner;
}

/** The candidate predictChoice runs first: the fastest predicted, or the first listed of those within TIE of it. */
export function predictedWinner(labels: string[], predicted: Record<string, number>): string {
  const best = Math.min(...labels.map((l) => predicted[l]));
  return labels.find((l) => predicted[l] <= best * (1 + TIE))!;
}

/** Whether calibration that has spent `spentMs` on these times may stop (after MIN_ROUNDS rounds). */
function enough(times: Record<string, number[]>, spentMs: number): boolean {
  return spentMs >= BUDGET_MS || (spentMs >= CHEAP_MS && autoDecision(times).separated);
}

/** One call of a kind being measured: the next candidate in turn, timed after its warm-ups. */
async function probeStep(key: string, p: Probe, candidates: Candidate[]): Promise<OutputData> {
  if (p.queue.length === 0) {
    // A round starts: first the decision on the rounds so far.
    p.rounds++;
    if (p.rounds >= PROBE_ROUNDS || (p.rounds >= MIN_ROUNDS && (p.spentMs >= BUDGET_MS || autoDecision(p.times).separated))) {
      probes.delete(key);
      const { winner, ms, tiedWith } = autoDecision(p.times);
      choices.set(key, { ...choices.get(key)!, winner, ms, tiedWith, rounds: p.rounds, probing: false });
      return candidates.find((c) => c.label === winner)!.run();
    }
    p.queue = Object.keys(p.times);
  }
  const label = p.queue.shift()!;
  const c = candidates.find((x) => x.label === label)!;
  const t0 = performance.now();
  const out = await c.run();
  if (p.rounds >= 0) {
    const ms = performance.now() - t0;
    p.times[label].push(ms);
    p.spentMs += ms;
  }
  return out;
}

/** Job kinds whose key starts with `prefix` that are still being measured over their calls. */
export function probing(prefix = ''): number {
  let n = 0;
  for (const k of probes.keys()) if (k.startsWith(prefix)) n++;
  return n;
}

/** The candidate 'auto' settled on for this kind of job, if it has measured or predicted it and measures no more. */
export function knownWinner(key: string): string | undefined {
  lastKey = key;
  return probes.has(key) ? undefined : choices.get(key)?.winner;
}

/** The choice behind the latest job 'auto' ran (for per-layer profiles). */
export function lastAutoChoice(): AutoChoice | undefined {
  return lastKey === undefined ? undefined : choices.get(lastKey);
}

/** The choices 'auto' has made so far in this process (for profiles and the bench report). */
export function autoChoices(): AutoChoice[] {
  return [...choices.values()];
}

/** The winners of the job kinds whose keys start with `prefix`, to store with a model. */
export function saveChoices(machine: string, prefix = ''): SavedChoices {
  const out: Record<string, string> = {};
  // A choice still being measured is not kept: the next process predicts and measures it again.
  for (const c of choices.values()) if (c.key.startsWith(prefix) && !c.restored && !c.probing) out[c.key] = c.winner;
  return { machine, choices: out };
}

/**
 * Takes saved winners as this process's choices when they were measured on this machine (same
 * CPU, wasm features and thread count), so that the first run of a saved model does not time
 * every candidate again; on another machine nothing is taken and 'auto' measures anew. Kinds
 * already measured here keep their measurement. Returns how many were taken.
 */
export function restoreChoices(saved: SavedChoices | undefined, machine: string): number {
  if (!saved || typeof saved !== 'object' || saved.machine !== machine || !saved.choices || typeof saved.choices !== 'object') return 0;
  let n = 0;
  for (const [key, winner] of Object.entries(saved.choices)) {
    if (typeof winner !== 'string' || choices.has(key)) continue;
    choices.set(key, { key, winner, ms: {}, rounds: 0, tiedWith: [], restored: true });
    n++;
  }
  return n;
}

import { ArgumentError } from '../errors.js';
import { median } from '../backends/auto.js';
import type { Tensor } from '../ir/tensor.js';
import type { QuantOptions, Range } from '../kernels/wasm/int-conv.js';
import type { NodeTiming, Session } from '../runtime/session.js';
import { calibrate, layersOnCodes, type Calibration } from './calibrate.js';

/**
 * Per-layer activation widths chosen by measured speed and error (issue 19): each tensor that layers
 * on codes read (a "group": its readers share one width and one range) gets a width from `widths`.
 * A sensitivity pass measures the model's output error with each group alone narrower than 8 bits;
 * the runtime's per-node times give each width's cost; a greedy search lowers, one step at a time,
 * the group with the most time saved per unit of error added, while the predicted error stays
 * within the budget, and measures the plans it passes (agreement with float and latency). The
 * fastest measured plan within the budget wins. A group whose layers run faster in float32 than on
 * 8-bit codes (depthwise layers, on this project's wasm kernels) starts in float32: exact, and
 * faster; from there it may still go narrower.
 */
export interface TuneOptions {
  /** Widths a group may take, 8 included (default 8, 6, 4, 3, 2). */
  widths?: number[];
  /** Largest mean |output - float output| allowed (default 0.02). */
  budget?: number;
  /** Smallest top-1 agreement with float allowed (default 0.97). */
  agreement?: number;
  /**
   * 'measured' (default): the runtime's per-node times; 'estimated': multiply-adds scaled by a fixed
   * cost per width (deterministic: tests, or machines too noisy to time).
   */
  latency?: 'measured' | 'estimated';
  /** Let groups run in float32 where that measures faster than 8-bit codes (default true). */
  float?: boolean;
  threads?: number;
  onProgress?: (message: string) => void;
}

/** One plan the search measured. */
export interface TunedPlan {
  label: string;
  /** Width per group (the tensor its layers read); FLOAT (0) for a group in float32; {} for float32 everywhere. */
  widths: Record<string, number>;
  /** Median ms of a batch-1 run. */
  ms: number;
  /** Top-1 agreement with the float model, and mean |dp| of the first output, over the inputs. */
  agreement: number;
  meanAbsDiff: number;
}

export interface TuneResult {
  chosen: TunedPlan;
  /** Every plan the search measured, in order, and the uniform and float reference points. */
  tried: TunedPlan[];
  references: TunedPlan[];
  /** What a .fcnn stores for the chosen plan (model.meta fields). */
  meta: { activationBits: number; ranges: Record<string, Range>; layers: Record<string, { bits: number }>; biasCorrection: Record<string, number[]> };
}

/** A plan's width for a group that runs in float32. */
export const FLOAT = 0;

/**
 * Relative cost of a layer's work per width for 'estimated' latency: the direct kernels' (relaxed dot below 8
 * bits); float32 as measured against 8-bit codes on MobileNetV2 (docs/perf-notes.md section 63): depthwise layers
 * 1.6-2.2x faster in float32, the others about 10% slower.
 */
const WIDTH_COST: Record<number, number> = { 1: 0.4, 2: 0.5, 3: 0.55, 4: 0.6, 5: 0.6, 6: 0.6, 7: 0.6, 8: 1 };
const FLOAT_COST = { depthwise: 0.6, other: 1.1 };

/** How many groups a plan gives each width, by label ('float32', '8-bit', ...), float32 first, then widest first. */
export function widthCounts(widths: Record<string, number>): Record<string, number> {
  const rank = (w: number) => (w === FLOAT ? 9 : w);
  const counts: Record<string, number> = {};
  for (const w of Object.values(widths).sort((a, b) => rank(b) - rank(a))) {
    const label = w === FLOAT ? 'float32' : `${w}-bit`;
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

export function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** How close outputs come to reference outputs: top-1 agreement, and mean and largest |difference|. */
export interface Agreement { images: number; top1: number; meanAbsDiff: number; maxAbsDiff: number }

export function agreement(ref: Float32Array[], got: Float32Array[]): Agreement {
  let top1 = 0, sum = 0, n = 0, max = 0;
  for (let i = 0; i < ref.length; i++) {
    if (argmax(ref[i]) === argmax(got[i])) top1++;
    for (let k = 0; k < ref[i].length; k++) {
      const d = Math.abs(ref[i][k] - got[i][k]);
      sum += d;
      n++;
      max = Math.max(max, d);
    }
  }
  return { images: ref.length, top1: top1 / ref.length, meanAbsDiff: sum / n, maxAbsDiff: max };
}

export async function tune(session: Session, feeds: Record<string, Tensor>[], opts: TuneOptions = {}): Promise<TuneResult> {
  const widths = [...new Set(opts.widths ?? [8, 6, 4, 3, 2])].sort((a, b) => b - a);
  if (!widths.every((w) => Number.isInteger(w) && w >= 1 && w <= 8) || widths[0] !== 8) throw new ArgumentError('widths', opts.widths, 'integers 1..8, 8 among them');
  const budget = opts.budget ?? 0.02, minAgree = opts.agreement ?? 0.97;
  if (!(budget > 0)) throw new ArgumentError('budget', opts.budget, 'a positive mean |dp|');
  if (!(minAgree >= 0 && minAgree <= 1)) throw new ArgumentError('agreement', opts.agreement, 'a share 0..1');
  if (!feeds.length) throw new ArgumentError('calibration', feeds, 'at least one input');
  const progress = opts.onProgress ?? (() => undefined), threads = opts.threads;
  const g = session.graph;
  const out = g.outputs[0].name;
  const nodes = layersOnCodes(g);
  const groups = [...new Set(nodes.map((n) => n.inputs[0]))];
  const readers = new Map(groups.map((t) => [t, nodes.filter((n) => n.inputs[0] === t)]));

  // The float model's outputs, and each width's calibration (MSE ranges, bias correction; no edge rule: widths are the search's).
  const want: Float32Array[] = [];
  for (const f of feeds) want.push((await session.run(f, { threads }))[out].data as Float32Array);
  const cal = new Map<number, Calibration>();
  for (const w of widths) {
    cal.set(w, await calibrate(session, feeds, w, { method: 'mse', edgeBits: 0, threads, onProgress: (m) => progress(`${w}-bit ${m}`) }));
  }

  const quantOf = (plan: Record<string, number>): QuantOptions => {
    const layers: Record<string, { bits: number; range?: Range }> = {}, biasCorrection: Record<string, number[]> = {};
    for (const t of groups) {
      const w = plan[t] ?? 8;
      if (w === FLOAT) {
        for (const n of readers.get(t)!) layers[n.name] = { bits: 0 };
        continue;
      }
      const c = cal.get(w)!;
      for (const n of readers.get(t)!) {
        layers[n.name] = { bits: w, range: c.ranges[t] };
        if (c.biasCorrection?.[n.name]) biasCorrection[n.name] = c.biasCorrection[n.name];
      }
    }
    return { layers, biasCorrection };
  };
  const score = async (quant: QuantOptions | undefined, count = feeds.length) => {
    const got: Float32Array[] = [];
    for (let i = 0; i < count; i++) got.push((await session.run(feeds[i], { threads, quant }))[out].data as Float32Array);
    const a = agreement(want.slice(0, count), got);
    return { agreement: a.top1, meanAbsDiff: a.meanAbsDiff };
  };
  /** The plan with every group at width w. */
  const uniform = (w: number) => Object.fromEntries(groups.map((t) => [t, w]));
  const all8 = uniform(8), reference = quantOf(all8);
  /**
   * A plan's batch-1 time, robust to this kind of VM's slow spells: 7 runs alternated with the
   * all-8-bit plan; its median time times the median of the per-pair ratios.
   */
  const timeOf = async (quant: QuantOptions | undefined) => {
    const once = async (q: QuantOptions | undefined) => {
      const t0 = performance.now();
      await session.run(feeds[0], { threads, quant: q });
      return performance.now() - t0;
    };
    await once(quant);
    const ratios: number[] = [], base: number[] = [];
    for (let i = 0; i < 7; i++) {
      const b = await once(reference);
      ratios.push((await once(quant)) / b);
      base.push(b);
    }
    return median(base) * median(ratios);
  };
  // 'estimated': a plan's time is the sum of its groups' estimates (the rest of the graph left out), so the choice is deterministic.
  const estimate = (plan: Record<string, number>) => groups.reduce((a, t) => a + cost.get(t)![plan[t] ?? 8], 0);
  const floatToo = opts.float ?? true, choices = floatToo ? [FLOAT, ...widths] : widths;
  const measure = async (label: string, plan: Record<string, number>, quant = quantOf(plan)): Promise<TunedPlan> =>
    ({ label, widths: { ...plan }, ms: opts.latency === 'estimated' ? estimate(plan) : await timeOf(quant), ...(await score(quant)) });

  // Sensitivity: each group alone at each narrower width, the rest at 8 bits, on up to 8 inputs.
  const few = Math.min(8, feeds.length);
  const base = (await score(reference, few)).meanAbsDiff;
  const sens = new Map<string, Record<number, number>>();
  for (const [k, t] of groups.entries()) {
    progress(`tuning: sensitivity, group ${k + 1}/${groups.length}`);
    const s: Record<number, number> = { 8: base };
    for (const w of choices.filter((v) => v !== 8)) s[w] = (await score(quantOf({ ...all8, [t]: w }), few)).meanAbsDiff;
    sens.set(t, s);
  }

  // Each group's time at each width: per-node times of uniform plans (or the estimate).
  const cost = new Map<string, Record<number, number>>(groups.map((t) => [t, {}]));
  for (const w of choices) {
    progress(`tuning: layer times ${w === FLOAT ? 'in float32' : `at ${w} bits`}`);
    const ms = new Map<string, number>();
    if (opts.latency === 'estimated') {
      for (const n of nodes) {
        const depthwise = n.op === 'Conv' && g.consts.get(n.inputs[1])!.shape[1] === 1 && Number(n.attrs.group ?? 1) > 1;
        const perWeight = w === FLOAT ? FLOAT_COST[depthwise ? 'depthwise' : 'other'] : WIDTH_COST[w];
        ms.set(n.name, (g.consts.get(n.inputs[1])!.data.length * perWeight) / 1e6);
      }
    } else {
      const quant = quantOf(uniform(w));
      await session.run(feeds[0], { threads, quant });
      const runs: Map<string, number>[] = [];
      for (let i = 0; i < 3; i++) {
        const profile: NodeTiming[] = [];
        await session.run(feeds[0], { threads, quant, profile });
        runs.push(new Map(profile.map((p) => [p.node, p.ms])));
      }
      for (const n of nodes) ms.set(n.name, median(runs.map((r) => r.get(n.name) ?? 0)));
    }
    for (const t of groups) cost.get(t)![w] = readers.get(t)!.reduce((a, n) => a + ms.get(n.name)!, 0);
  }

  // Float32 wherever it is faster than 8-bit codes; then greedy: lower the group with the most time saved per
  // error added, while the predicted error fits (from float32, the next step is the first width under 8).
  const plan = { ...all8 };
  let predicted = base;
  const steps: Record<string, number>[] = [];
  for (const t of groups.filter((t) => floatToo && cost.get(t)![FLOAT] < cost.get(t)![8])) {
    plan[t] = FLOAT;
    predicted += sens.get(t)![FLOAT] - base;
  }
  if (groups.some((t) => plan[t] === FLOAT)) steps.push({ ...plan });
  for (;;) {
    let best: { t: string; w: number; ratio: number; add: number } | undefined;
    for (const t of groups) {
      const next = widths[plan[t] === FLOAT ? 1 : widths.indexOf(plan[t]) + 1];
      if (next === undefined) continue;
      const saved = cost.get(t)![plan[t]] - cost.get(t)![next];
      const add = Math.max(1e-9, sens.get(t)![next] - sens.get(t)![plan[t]]);
      if (saved <= 0 || predicted + add > budget) continue;
      // Ties (equal ratios) go to the earlier group: deterministic for a given calibration set.
      if (!best || saved / add > best.ratio) best = { t, w: next, ratio: saved / add, add };
    }
    if (!best) break;
    plan[best.t] = best.w;
    predicted += best.add;
    steps.push({ ...plan });
  }

  // Measure the plans passed: every step up to 12 of them, spread evenly, the last always.
  const tried: TunedPlan[] = [await measure('all 8-bit', all8)];
  const every = Math.max(1, Math.ceil(steps.length / 12));
  for (const [i, s] of steps.entries()) {
    if (i % every !== every - 1 && i !== steps.length - 1) continue;
    progress(`tuning: measuring plan ${i + 1}/${steps.length}`);
    tried.push(await measure(`step ${i + 1}`, s));
  }
  const references: TunedPlan[] = [];
  for (const w of [8, 4, 2].filter((v) => widths.includes(v))) references.push(await measure(`uniform ${w}-bit`, uniform(w)));
  references.push({ label: 'float32', widths: {}, ms: opts.latency === 'estimated' ? estimate(all8) / WIDTH_COST[8] : await timeOf(undefined), agreement: 1, meanAbsDiff: 0 });

  const fits = tried.filter((p) => p.meanAbsDiff <= budget && p.agreement >= minAgree);
  const chosen = (fits.length ? fits : [tried[0]]).reduce((a, b) => (b.ms < a.ms ? b : a));
  const q = quantOf(chosen.widths);
  const ranges: Record<string, Range> = {};
  for (const t of groups) if (chosen.widths[t] !== FLOAT) ranges[t] = cal.get(chosen.widths[t] ?? 8)!.ranges[t];
  return {
    chosen, tried, references,
    meta: {
      activationBits: 8, ranges,
      layers: Object.fromEntries(Object.entries(q.layers!).map(([k, v]) => [k, { bits: v.bits }])),
      biasCorrection: Object.fromEntries(Object.entries(q.biasCorrection!).map(([k, v]) => [k, Array.from(v)])),
    },
  };
}

import { macsOf, type ConvGeometry } from '../conv/geometry.js';
import { isNode } from './wasm/platform.js';

/**
 * What a kernel family costs on one machine: ms = msAtMillion * (units / 1e6) ^ exponent, fitted
 * to calibration runs (src/kernels/wasm/calibrate.ts) in log space, so that small layers (where
 * waking threads and per-element passes dominate) are fitted as closely as large ones. Units are
 * multiply-accumulates for direct kernels and MACs x activation bits for look-ups (one table read
 * per bit plane and group of taps).
 */
export interface CostLine { msAtMillion: number; exponent: number; minUnits: number; maxUnits: number }

/** Per-machine lines, keyed by family (familyOf). */
export interface CostModel {
  machine: string;
  version: number;
  lines: Record<string, CostLine>;
  /** The thread count its multi-threaded lines ran with (the default: every core). */
  threads: number;
  /** How long calibration took, ms. */
  calibrationMs: number;
}

export const COST_MODEL_VERSION = 2;

/** The model in use in this process: undefined until looked for, null when there is none. */
let current: CostModel | null | undefined;
/** Set when the caller turned predictions off (setCostModel(null)): nothing is loaded or calibrated then. */
let off = false;

/** The cost model 'auto' predicts with in this process, if any. */
export function costModel(): CostModel | null {
  return current ?? null;
}

/**
 * Predicts with `m` from now on; null turns predictions off for this process ('auto' then measures
 * every candidate on a job kind's first call, as it does where no model exists); undefined goes
 * back to the default (this machine's model, looked for on the next model run).
 */
export function setCostModel(m: CostModel | null | undefined): void {
  current = m;
  off = m === null;
}

export function costModelOff(): boolean {
  return off;
}

/** depthwise, 1x1 (Gemm included) or any other convolution: their kernels differ most in these. */
export function convClass(g: ConvGeometry): 'dw' | 'pw' | 'conv' {
  if (g.Cg === 1 && g.groups > 1) return 'dw';
  return g.KH * g.KW === 1 ? 'pw' : 'conv';
}

/**
 * The family a candidate label ('wasm-direct', 'wasm-pcilt-1t', ...) belongs to for a layer and
 * width, and its units of work; null for candidates the model does not describe. The default direct
 * kernel differs between 8 bits and fewer (int16 dot against the relaxed int8 dot), so the width
 * class is part of its family; look-ups cost per bit plane, so theirs is in the units.
 */
export function familyOf(label: string, g: ConvGeometry, bits: number): { family: string; units: number } | null {
  const oneThread = label.endsWith('-1t');
  const base = oneThread ? label.slice(0, -3) : label;
  const macs = macsOf(g);
  const t = oneThread ? '1t' : 'mt';
  if (base === 'wasm-pcilt') return { family: `${base}|${t}|${convClass(g)}`, units: macs * bits };
  if (base.startsWith('wasm-direct')) return { family: `${base}|${t}|${convClass(g)}|${bits === 8 ? 'b8' : 'low'}`, units: macs };
  return null;
}

/** Least-squares line through the (log units, log ms) points: a power law. */
export function fitLine(points: { units: number; ms: number }[]): CostLine {
  const xs = points.map((p) => Math.log(p.units / 1e6)), ys = points.map((p) => Math.log(Math.max(p.ms, 1e-4)));
  const n = points.length, mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  // Time never falls as work grows; one point (or equal units) gives a proportional line.
  const exponent = sxx > 0 ? Math.max(0, sxy / sxx) : 1;
  const units = points.map((p) => p.units);
  return { msAtMillion: Math.exp(my - exponent * mx), exponent, minUnits: Math.min(...units), maxUnits: Math.max(...units) };
}

export function lineMs(line: CostLine, units: number): number {
  return line.msAtMillion * (units / 1e6) ** line.exponent;
}

/**
 * Predicted ms of each candidate label for a layer, or null when the model cannot say for one of
 * them (no model, another thread count than it was calibrated with, a family it has no line for).
 */
export function predict(labels: string[], g: ConvGeometry, bits: number, threads: number | undefined): Record<string, number> | null {
  const m = current;
  if (!m || (threads !== undefined && threads !== m.threads)) return null;
  const out: Record<string, number> = {};
  for (const label of labels) {
    const f = familyOf(label, g, bits);
    const line = f && m.lines[f.family];
    // Far above what was calibrated (the seed layer's 3.7 G MACs), a line is a guess: measure.
    if (!f || !line || f.units > line.maxUnits * REACH) return null;
    // Far below it, fixed costs (waking threads, setting up) dominate, which a power law fitted on larger
    // layers leaves out: a layer costs at least what the lowest trusted work does. (MNIST's 10 x 128 output
    // layer, 1.3k MACs, was timed candidate by candidate on its first call: 33 ms, against 0.1 ms a run.)
    out[label] = lineMs(line, Math.max(f.units, line.minUnits / REACH));
  }
  return out;
}

/** How far beyond its calibration points (a factor in units of work) a line is trusted. */
const REACH = 8;

/** Where Node keeps models between processes: $FASTER_CNN_CACHE, else ~/.cache/faster-cnn. */
export async function costModelFile(): Promise<string> {
  const { join } = await import('node:path');
  const dir = process.env.FASTER_CNN_CACHE || join((await import('node:os')).homedir(), '.cache', 'faster-cnn');
  return join(dir, 'cost-model.json');
}

/** Loads this machine's model, once per process (Node; browsers keep it for the page only). */
export async function loadCostModel(machine: string): Promise<CostModel | null> {
  if (current !== undefined) return current?.machine === machine ? current : null;
  current = null;
  if (!isNode) return null;
  try {
    const all = JSON.parse(await (await import('node:fs/promises')).readFile(await costModelFile(), 'utf8')) as Record<string, CostModel>;
    const m = all?.[machine];
    if (m && m.version === COST_MODEL_VERSION && m.lines && typeof m.lines === 'object') current = m;
  } catch {
    // No file yet, or an unreadable one: calibration writes a new one.
  }
  return current;
}

/** Keeps `m` for later processes on this machine (Node), beside other machines' models. */
export async function storeCostModel(m: CostModel): Promise<void> {
  current = m;
  if (!isNode) return;
  const fs = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  const file = await costModelFile();
  let all: Record<string, CostModel> = {};
  try { all = JSON.parse(await fs.readFile(file, 'utf8')); } catch { /* a new file */ }
  all[m.machine] = m;
  await fs.mkdir(dirname(file), { recursive: true });
  // Written whole, then renamed: a concurrent reader sees the old file or the new one.
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(all, null, 1));
  await fs.rename(tmp, file);
}

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgumentError } from '../errors.js';
import { intFlag, listFlag, parse } from '../cli/args.js';
import { LAYERS, macs } from './layers.js';
import { checkRequantize, requantizeSum } from '../conv/requantize.js';
import { qlinearRequant } from './peers.js';
import { writeReport } from './report.js';
import { benchWebgpu } from './webgpu.js';
import { OUR_IMPLS, PEER_IMPLS, type Impl, type WorkerOrder, type WorkerResult } from './worker.js';
import type { LayerSpec } from './layers.js';

export interface BenchResult extends Omit<WorkerResult, 'outFile' | 'outType' | 'times' | 'rivalsMs'> {
  gmacs: number;
  rssMB: number;
  /** Elements that disagree with our exact reference, requantized as QLinearConv (a +-1 code step is allowed for peers). */
  mismatches: number | null;
  /** u8 codes one step from ours (allowed for peers). */
  offByOne?: number;
  /** The median of each round (a child process each); medianMs is the lowest of them. */
  roundMs: number[];
  /**
   * auto-wasm, each round (a fresh process): the chosen candidate's median over the best candidate's - 1,
   * every candidate run by name, interleaved call for call with 'auto' itself.
   */
  regrets?: number[];
  /** auto-wasm, each round: auto's own median (its dispatch included) over the best candidate's - 1. */
  autoOverBest?: number[];
  /** auto-wasm, each round: the candidate it chose. */
  choices?: string[];
}

export interface BenchReport {
  machine: Record<string, unknown>;
  command: string;
  /** Rounds per implementation (each result is the best round's median). */
  rounds: number;
  results: BenchResult[];
  profile?: unknown;
}

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Runs a faster-cnn child process; hands each JSON line it prints to onLine (other lines are ignored). */
export function child(args: string[], onLine: (o: Record<string, unknown>) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line.startsWith('{')) onLine(JSON.parse(line));
      }
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench child ${args[0]} ${args[1]?.slice(0, 80)} exited with code ${code}`))));
  });
}

function readOut(file: string, type: string): ArrayLike<number> {
  const b = readFileSync(file);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  return type === 'int32' ? new Int32Array(buf) : type === 'uint8' ? new Uint8Array(buf) : new Float32Array(buf);
}

/**
 * Elements of an output that disagree with the exact sums `ref` (bad), and u8 codes one step off
 * (off): u8 outputs are compared with the sums requantized as QLinearConv (ours must be equal,
 * onnxruntime's within one step), int32 exactly, float32 within 1e-6 of the largest sum.
 */
function mismatches(out: ArrayLike<number>, type: string, ref: Int32Array, yScale: number, l: LayerSpec, exact: boolean): { bad: number; off: number } {
  if (out.length !== ref.length) return { bad: ref.length, off: 0 };
  let bad = 0, off = 0;
  if (type === 'int32') for (let i = 0; i < ref.length; i++) bad += out[i] === ref[i] ? 0 : 1;
  else if (type === 'uint8') {
    const q = checkRequantize(qlinearRequant(yScale), l.O, true)!, plane = l.H * l.W;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(out[i] - requantizeSum(ref[i], q, Math.floor(i / plane) % l.O));
      if (d === 1) off++;
      if (d > (exact ? 0 : 1)) bad++;
    }
  } else {
    let max = 1;
    for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i]));
    for (let i = 0; i < ref.length; i++) bad += Math.abs(out[i] - ref[i]) <= 1e-6 * max ? 0 : 1;
  }
  return { bad, off };
}

export async function benchCommand(argv: string[]): Promise<BenchReport> {
  const { values } = parse(argv, {
    layers: { type: 'string' }, bits: { type: 'string' }, threads: { type: 'string' }, runs: { type: 'string' },
    impls: { type: 'string' }, json: { type: 'boolean' }, report: { type: 'string' }, quick: { type: 'boolean' },
    'no-profile': { type: 'boolean' }, backend: { type: 'string' }, rounds: { type: 'string' }, sweep: { type: 'boolean' }, anchor: { type: 'string' },
  });
  const layers = values.layers ? String(values.layers).split(',') : values.quick ? ['mnist-b1', 'mnist-b64'] : ['seed', 'mnist-b1', 'mnist-b64'];
  for (const l of layers) if (!LAYERS[l]) throw new ArgumentError('--layers', l, `a list of ${Object.keys(LAYERS).join(', ')}`);
  const bits = listFlag('bits', values.bits, [1, 2, 4, 8], 1, 8);
  const threads = listFlag('threads', values.threads, [1, 2], 1, 64);
  const runs = intFlag('runs', values.runs, values.quick ? 5 : 7, 1, 1000);
  // Rounds: every implementation runs once per round, in turn, each time in a fresh child. Two-thread
  // times on this VM switch between two speeds for seconds at a time (docs/perf-notes.md sections 21
  // and 24), so each multi-thread result is the best of its rounds' medians, taken alike for ours and
  // the peers; one thread does not switch, and runs in the first round only.
  const rounds = intFlag('rounds', values.rounds, values.quick ? 1 : 5, 1, 20);
  if (values.backend !== undefined && values.backend !== 'wasm') {
    if (values.backend !== 'webgpu') throw new ArgumentError('--backend', values.backend, "'wasm' (the default: CPU kernels and peers) or 'webgpu'");
    await benchWebgpu(values.layers ? layers : ['seed'], bits, values.runs ? runs : 5, !!values.json, values.report ? String(values.report) : undefined, !!values.sweep, values.anchor ? String(values.anchor) : undefined);
    return { machine: {}, command: '', rounds: 0, results: [] };
  }
  const all: Impl[] = [...OUR_IMPLS, ...PEER_IMPLS];
  const impls = values.impls ? (String(values.impls).split(',') as Impl[]) : all;
  for (const i of impls) if (!all.includes(i)) throw new ArgumentError('--impls', i, `a list of ${all.join(', ')}`);
  const log = (s: string) => process.stderr.write(`${s}\n`);

  const outDir = mkdtempSync(join(tmpdir(), 'faster-cnn-bench-'));
  const results: BenchResult[] = [];
  try {
    for (const layer of layers) {
      const l = LAYERS[layer];
      // The reference comes first: the exact sums of direct multiplication (checked exact against JS
      // by the tests), written by the first child of ours, which also picks the QLinearConv output scale.
      const order = ['direct-wasm', ...impls.filter((i) => i !== 'direct-wasm')] as Impl[];
      const refs = new Map<number, Int32Array>();
      const yScales: Record<number, number> = {};
      /** Each result so far, by impl|bits|threads: the best round's. */
      const kept = new Map<string, BenchResult>();
      let round = 0;
      /** Runs one implementation at one thread count in a child process of its own. */
      const runChild = (o: WorkerOrder) => {
        const mine: BenchResult[] = [];
        return child(['bench-worker', JSON.stringify(o)], (r) => {
          if ('rssMB' in r) {
            for (const m of mine) m.rssMB = Math.max(m.rssMB, r.rssMB as number);
            return;
          }
          const w = r as unknown as WorkerResult;
          let bad: number | null = null, off: number | undefined;
          if (w.refFile) {
            refs.set(w.bits, readOut(w.refFile, 'int32') as Int32Array);
            yScales[w.bits] = w.yScale!;
            rmSync(w.refFile);
          }
          if (w.outFile) {
            const out = readOut(w.outFile, w.outType!);
            const m = mismatches(out, w.outType!, refs.get(w.bits)!, yScales[w.bits], l, (OUR_IMPLS as readonly string[]).includes(w.impl));
            bad = m.bad;
            if (w.outType === 'uint8') off = m.off;
            rmSync(w.outFile);
          }
          const gmacs = macs(l) / w.medianMs / 1e6;
          const res: BenchResult = { impl: w.impl, layer, bits: w.bits, threads: w.threads, medianMs: w.medianMs, gmacs, tableBytes: w.tableBytes, rssMB: 0, mismatches: bad, ...(off !== undefined ? { offByOne: off } : {}), ...(w.auto ? { auto: w.auto } : {}), ...(w.kernel ? { kernel: w.kernel } : {}), roundMs: [] };
          const key = `${w.impl}|${w.bits}|${w.threads}`;
          const seen = kept.get(key);
          // The decision's regret: the chosen candidate's median over the best candidate's, both run by name.
          const bestMs = w.rivalsMs ? Math.min(...Object.values(w.rivalsMs)) : NaN;
          const regret = w.rivalsMs ? [(w.rivalsMs[w.auto ?? ''] ?? w.medianMs) / bestMs - 1] : [];
          const rawRegret = w.rivalsMs ? [w.medianMs / bestMs - 1] : [];
          const best = seen && seen.medianMs <= w.medianMs ? seen : res;
          best.rssMB = seen?.rssMB ?? 0;
          best.roundMs = [...(seen?.roundMs ?? []), w.medianMs];
          if (regret.length) {
            best.regrets = [...(seen?.regrets ?? []), ...regret];
            best.autoOverBest = [...(seen?.autoOverBest ?? []), ...rawRegret];
            best.choices = [...(seen?.choices ?? []), w.auto ?? '?'];
          }
          if (seen && bad !== null) best.mismatches = Math.max(seen.mismatches ?? 0, bad);
          kept.set(key, best);
          mine.push(best);
          log(`[bench] ${layer.padEnd(9)} ${o.impl.padEnd(21)} bits=${w.bits} threads=${w.threads} ${w.medianMs.toFixed(2).padStart(9)} ms ${gmacs.toFixed(1).padStart(7)} GMAC/s${bad === null ? '' : bad === 0 ? ` output ok${off ? ` (${off} codes one step off)` : ''}` : ` OUTPUT MISMATCHES: ${bad}`}${rounds > 1 ? ` (round ${round + 1})` : ''}`);
        });
      };
      for (round = 0; round < rounds; round++) {
        for (const impl of order) {
          if (impl === 'ref-js' && (layer === 'seed' || round > 0)) continue; // ~10 s a run in plain JS; no speed modes on one thread
          if (impl !== 'direct-wasm' && !impls.includes(impl)) continue;
          // tfjs-backend-wasm runs one thread in Node; the JS reference is single-threaded.
          // One child per thread count: onnxruntime-web fixes its thread count when its first session
          // starts, so a second thread count in the same process would silently run with the first.
          // The plain call leaves the thread count to the library (the cores there are).
          for (const t of impl === 'tfjs-wasm-f32' || impl === 'ref-js' ? [1] : impl === 'plain-call' ? [availableParallelism()] : threads) {
            if (t === 1 && round > 0) continue;
            await runChild({ impl, layer, bits, threads: [t], runs: impl === 'ref-js' ? Math.min(runs, 3) : runs, outDir, yScales });
          }
        }
      }
      // direct-wasm always runs, as the reference; it is reported only when asked for.
      for (const r of kept.values()) if (impls.includes(r.impl)) results.push(r);
    }
    let profile: unknown;
    if (!values['no-profile']) {
      const layer = layers.includes('seed') ? 'seed' : layers[0];
      log(`[bench] profiling phases on ${layer} and running the swizzle micro-benchmarks...`);
      await child(['bench-profile', JSON.stringify({ layer, bits, threads })], (r) => (profile = r));
    }
    const report: BenchReport = {
      machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGB: +(totalmem() / 1e9).toFixed(1), node: process.version, v8: process.versions.v8, platform: `${process.platform}-${process.arch}` },
      command: `faster-cnn bench ${argv.join(' ')}`.trim(),
      rounds,
      results,
      profile,
    };
    if (values.json) console.log(JSON.stringify(report, null, 2));
    if (values.report) {
      writeReport(report, String(values.report));
      log(`[bench] wrote ${values.report}`);
    }
    if (!values.json) printSummary(report);
    // Our outputs must equal the reference; a peer's wrong outputs are its own, reported in the table and the text.
    const bad = results.filter((r) => r.mismatches && (OUR_IMPLS as readonly string[]).includes(r.impl));
    for (const r of results.filter((r) => r.mismatches && !bad.includes(r))) log(`[bench] peer ${r.impl} ${r.layer} ${r.bits}-bit: ${r.mismatches} outputs disagree with the exact reference (reported as MISMATCH)`);
    if (bad.length) throw new Error(`outputs disagree with the reference: ${bad.map((r) => `${r.impl} ${r.layer} ${r.bits}-bit`).join(', ')}`);
    return report;
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

function printSummary(r: BenchReport): void {
  console.log(`\nmedian ms (GMAC/s) on ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}`);
  const keys = [...new Set(r.results.map((x) => `${x.layer}|${x.threads}`))];
  for (const k of keys) {
    const [layer, threads] = k.split('|');
    const rows = r.results.filter((x) => x.layer === layer && String(x.threads) === threads);
    const bitsList = [...new Set(rows.map((x) => x.bits))].sort((a, b) => a - b);
    console.log(`\n${layer}, ${threads} thread(s)`.padEnd(30) + bitsList.map((b) => `${b}-bit`.padStart(18)).join(''));
    for (const impl of [...new Set(rows.map((x) => x.impl))]) {
      console.log(impl.padEnd(29) + bitsList.map((b) => {
        const x = rows.find((y) => y.impl === impl && y.bits === b);
        return (x ? `${x.medianMs.toFixed(2)} (${x.gmacs.toFixed(0)})` : '-').padStart(18);
      }).join(''));
    }
  }
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intFlag, listFlag, parse } from '../cli/args.js';
import { imageTensor, imagesIn } from '../cli/import.js';
import { ArgumentError } from '../errors.js';
import { importModel, loadModel, type Model } from '../nn/api.js';
import type { Tensor } from '../nn/tensor.js';
import { child } from './bench.js';
import { NSFWJS_MODELS, nsfwjsModelPath } from './models.js';
import { median } from '../backends/auto.js';
import { setCostModel, type CostModel } from '../backends/cost-model.js';
import { ensureCostModel } from '../kernels/wasm/calibrate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What one fresh process measured: how long the model took to become ready, its first calls and its steady state. */
export interface FirstCall {
  model: string;
  how: 'fresh import' | 'saved .fcnn' | 'fresh import, no cost model';
  bits: number | null;
  readyMs: number;
  firstMs: number;
  secondMs: number;
  steadyMs: number;
}

/** In this (fresh) process: import or load the model, then time `runs` calls on the photos in turn. */
export async function firstCallWorker(o: { model: string; src: string; how: FirstCall['how']; bits: number | null; photos: string[]; runs: number }): Promise<void> {
  const t0 = performance.now();
  // Without the machine's cost model, 'auto' times every candidate of every layer on the first call (the old way).
  if (o.how === 'fresh import, no cost model') setCostModel(null);
  const m: Model = o.how === 'saved .fcnn' ? await loadModel(o.src) : await importModel(o.src, o.bits ? { activationBits: o.bits } : {});
  const readyMs = performance.now() - t0;
  const xs: Tensor[] = [];
  // MNIST models read 28x28 gray digits; imported ones their stored preprocessing.
  for (const p of o.photos) xs.push(m.meta.preprocessing ? await imageTensor(p, m.meta.preprocessing) : await digit(p));
  const times: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const t = performance.now();
    await m.run(xs[i % xs.length]);
    times.push(performance.now() - t);
  }
  const r: FirstCall = { model: o.model, how: o.how, bits: o.bits, readyMs, firstMs: times[0], secondMs: times[1], steadyMs: median(times.slice(2)) };
  console.log(JSON.stringify(r));
}

/** A photograph as an MNIST-style digit (as \`faster-cnn predict\` reads images). */
async function digit(path: string): Promise<Tensor> {
  const { readGray } = await import('../images/decode.js');
  const { toDigit } = await import('../images/digit.js');
  return { data: toDigit(await readGray(path)), shape: [1, 1, 28, 28] };
}

/**
 * `faster-cnn bench-first-call --photos DIR [--models ...] [--bits 8] [--runs N] [--report FILE]`: each
 * model's first call, second call and steady state in fresh processes, from a fresh import and from
 * the .fcnn `faster-cnn import` writes (which keeps what 'auto' chose on this machine).
 */
export async function firstCallCommand(argv: string[]): Promise<FirstCall[]> {
  const { values } = parse(argv, { photos: { type: 'string' }, models: { type: 'string' }, bits: { type: 'string' }, runs: { type: 'string' }, report: { type: 'string' }, json: { type: 'boolean' } });
  if (!values.photos) throw new ArgumentError('--photos', values.photos, 'a folder of PNG or JPEG photographs (scripts/fetch-photos.sh makes one)');
  const photos = (await imagesIn(String(values.photos), 12, '--photos'));
  const names = values.models ? String(values.models).split(',') : [...Object.keys(NSFWJS_MODELS), 'mnist-a1', 'mnist-a2', 'mnist-a4'];
  for (const n of names) if (!NSFWJS_MODELS[n] && !/^mnist-a[124]$/.test(n)) throw new ArgumentError('--models', n, `a list of ${Object.keys(NSFWJS_MODELS).join(', ')}, mnist-a1, mnist-a2, mnist-a4`);
  const bits = listFlag('bits', values.bits, [8], 1, 8)[0];
  const runs = intFlag('runs', values.runs, 12, 4, 1000);
  // Once per machine: later processes (these rows') load it.
  const cost = await ensureCostModel((m) => process.stderr.write(`\r${m}\x1b[K`));
  process.stderr.write('\n');
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-first-call-'));
  const results: FirstCall[] = [];
  const measure = async (o: Omit<Parameters<typeof firstCallWorker>[0], 'photos' | 'runs'>) => {
    let r: FirstCall | undefined;
    await child(['bench-first-call-worker', JSON.stringify({ ...o, photos, runs })], (line) => (r = line as unknown as FirstCall));
    if (!r) throw new Error(`bench-first-call-worker printed no result for ${o.model}`);
    process.stderr.write(`[first-call] ${r.model} ${r.how}: ready ${r.readyMs.toFixed(0)} ms, first ${r.firstMs.toFixed(1)} ms, second ${r.secondMs.toFixed(1)} ms, steady ${r.steadyMs.toFixed(1)} ms\n`);
    results.push(r);
  };
  try {
    for (const name of names) {
      if (NSFWJS_MODELS[name]) {
        const fcnn = join(dir, `${name}-a${bits}.fcnn`);
        await child(['import', nsfwjsModelPath(name), '--activation-bits', String(bits), '--out', fcnn, '--align-corners'], () => {});
        await measure({ model: name, src: nsfwjsModelPath(name), how: 'fresh import', bits });
        await measure({ model: name, src: fcnn, how: 'saved .fcnn', bits });
        await measure({ model: name, src: nsfwjsModelPath(name), how: 'fresh import, no cost model', bits });
      } else {
        await measure({ model: name, src: join(ROOT, 'models', `${name}.fcnn`), how: 'saved .fcnn', bits: null });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  if (values.report) writeFileSync(String(values.report), firstCallReport(results, `faster-cnn bench-first-call ${argv.join(' ')}`, cost));
  return results;
}

export function firstCallReport(rs: FirstCall[], command: string, cost: CostModel | null): string {
  const f = (v: number) => v.toFixed(v < 10 ? 2 : 1);
  return `# First calls

Generated by \`${command}\` on ${cpus()[0]?.model}, ${cpus().length} cores, Node ${process.version}, 2 threads by default.
Each row is one fresh process: the model imported (TF.js from the nsfwjs package, activation codes of the
given width) or loaded from the .fcnn that \`faster-cnn import\` wrote (the import ran the model until 'auto' had
measured the layers the cost model found close, so the file keeps each layer's kernel choice for this machine),
then run on photographs in turn, batch 1. "Ready" is the import or load (with the weights of the layers on codes
quantized and the worker threads started); "steady" the median of the calls after the second.
A fresh import's layers take the kernel this machine's cost model predicts (calibrated once per machine${cost ? `, here in ${(cost.calibrationMs / 1000).toFixed(1)} s` : ''},
kept in ~/.cache/faster-cnn); the rows "no cost model" show the same import where 'auto' times every candidate
of every layer on the first call instead.

| model | from | bits | ready ms | first call ms | second ms | steady ms | first / steady |
|---|---|---|---|---|---|---|---|
${rs.map((r) => `| ${r.model} | ${r.how} | ${r.bits ?? 'trained'} | ${f(r.readyMs)} | ${f(r.firstMs)} | ${f(r.secondMs)} | ${f(r.steadyMs)} | ${(r.firstMs / r.steadyMs).toFixed(1)}x |`).join('\n')}

Targets (issue 20): a saved model's first call within 2x of its steady state, a fresh import's within 5x.
The MNIST models are networks trained here, saved before any run: their .fcnn holds no kernel choices, so the
cost model chooses for them as for a fresh import.
`;
}

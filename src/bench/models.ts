import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { ArgumentError } from '../errors.js';
import { writeOnnx } from '../formats/onnx/write-ir.js';
import { readTfjs, type TfjsArtifacts } from '../formats/tfjs.js';
import { imageTensor, imagesIn, withMirror } from '../cli/import.js';
import { intFlag, listFlag, parse } from '../cli/args.js';
import { median } from '../backends/auto.js';
import { agreement, widthCounts, type Agreement } from '../passes/tune.js';
import { Model, importModel } from '../nn/api.js';
import type { Tensor } from '../nn/tensor.js';

/** The pretrained models the nsfwjs package ships (TF.js layers and graph formats). */
export const NSFWJS_MODELS: Record<string, { dir: string; format: string }> = {
  mobilenet_v2: { dir: 'mobilenet_v2', format: 'layers' },
  mobilenet_v2_mid: { dir: 'mobilenet_v2_mid', format: 'graph' },
  inception_v3: { dir: 'inception_v3', format: 'layers' },
};

/** Where one of the nsfwjs models lives: the package's exports hide its model files, so beside its main module. */
export function nsfwjsModelPath(name: string): string {
  const main = createRequire(import.meta.url).resolve('nsfwjs');
  return join(main.slice(0, main.lastIndexOf(`${sep}dist${sep}`)), 'dist', 'models', NSFWJS_MODELS[name].dir, 'model.min.js');
}

export interface ModelReport {
  model: string;
  format: string;
  input: number[];
  nodes: number;
  importMs: number;
  photos: number;
  float: Agreement;
  /**
   * Per activation bit width: dynamic ranges on every photo; static ranges calibrated on every 4th
   * photo and scored on the rest, by min/max ('static') and by the MSE clip search with bias correction ('mse').
   */
  quantized: { bits: number; dynamic: Agreement; static: Agreement; mse: Agreement; levels?: LevelsReport[]; channels?: ChannelsReport; refit?: RefitReport }[];
  /** onnxruntime-web on the QDQ export of the 8-bit MSE calibration, on the held-out photos. */
  ortInt8?: Agreement;
  /** `--tune`: the tuned plan (src/passes/tune.ts) on the held-out photos. */
  tuned?: TunedReport;
  /** Median ms per image at batch 1. */
  latency: Record<string, number>;
  threads: number;
}


/**
 * Median ms of each of fs over `runs` rounds that call each once in turn (this VM's slow spells then
 * fall on all of them), after `warmUp` calls each ('auto' settles its choices in a model's first calls).
 */
async function timedTogether(runs: number, fs: (() => Promise<unknown>)[], warmUp = 8): Promise<number[]> {
  for (let i = 0; i < warmUp; i++) for (const f of fs) await f();
  const t = fs.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    for (const [i, f] of fs.entries()) {
      const t0 = performance.now();
      await f();
      t[i].push(performance.now() - t0);
    }
  }
  return t.map(median);
}

/** Median ms of `runs` calls after two warm-up calls. */
export async function timed(runs: number, f: () => Promise<unknown>): Promise<number> {
  return (await timedTogether(runs, [f], 2))[0];
}

/** tfjs's own output for each photo (the oracle), and a timer for its wasm backend; the model tests use it too. */
export async function tfjsPeer(art: TfjsArtifacts, format: string) {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  const io = tf.io.fromMemory({
    modelTopology: art.modelTopology as object, weightSpecs: art.weightsManifest.flatMap((g) => g.weights) as never,
    weightData: art.weightData.slice().buffer,
  });
  const model = format === 'graph' ? await tf.loadGraphModel(io) : await tf.loadLayersModel(io);
  const predict = async (x: Tensor) => {
    const t = tf.tensor(x.data, x.shape);
    const y = model.predict(t) as import('@tensorflow/tfjs').Tensor;
    const d = (await y.data()) as Float32Array;
    t.dispose();
    y.dispose();
    return d;
  };
  return { predict, dispose: () => model.dispose() };
}

/**
 * Imports each nsfwjs model, runs it on real photographs in float32 and with 8- and 4-bit
 * activations, compares every output with tfjs's own, and times it against tfjs-backend-wasm and
 * onnxruntime-web (running the same graph exported as float ONNX), in one process: ours first,
 * the peers after, so that their thread pools do not spin during our runs.
 */
export async function benchModel(name: string, photos: string[], opts: { bits: number[]; runs: number; threads: number; levels?: boolean; tune?: boolean; refit?: string[]; log: (s: string) => void }): Promise<ModelReport> {
  const spec = NSFWJS_MODELS[name] ?? (() => { throw new ArgumentError('--models', name, Object.keys(NSFWJS_MODELS).join(', ')); })();
  const modelPath = nsfwjsModelPath(name);
  const t0 = performance.now();
  const model: Model = await importModel(modelPath);
  const importMs = performance.now() - t0;
  // nsfwjs itself resizes with align_corners and scales pixels to [0, 1]; both engines get the same tensors.
  const pre = { ...model.meta.preprocessing!, alignCorners: true };
  const inputs: Tensor[] = [];
  for (const f of photos) inputs.push(await imageTensor(f, pre));
  const { log, threads } = opts;
  log(`${name}: imported in ${importMs.toFixed(0)} ms (${model.graph!.nodes.length} nodes); ${inputs.length} photos`);

  const art = await readTfjs(modelPath);
  const tfjs = await tfjsPeer(art, spec.format);
  const ref: Float32Array[] = [];
  for (const x of inputs) ref.push(await tfjs.predict(x));

  const run = async (m: Model, xs: Tensor[] = inputs, bits?: number) => {
    const out: Float32Array[] = [];
    for (const x of xs) out.push((await m.predict(x, { activationBits: bits ?? 0, threads })).data);
    return out;
  };
  const float = agreement(ref, await run(model));
  log(`  float32: top-1 agreement ${(float.top1 * 100).toFixed(1)}%, max |diff| ${float.maxAbsDiff.toExponential(2)}`);
  const quantized = [];
  /** Per width: the MSE-calibrated model (its static ranges are timed, and at 8 bits exported as QDQ for onnxruntime-web). */
  const mseModels = new Map<number, Model>();
  const calib = inputs.filter((_, i) => i % 4 === 0), held = inputs.filter((_, i) => i % 4 !== 0);
  const heldRef = ref.filter((_, i) => i % 4 !== 0);
  for (const bits of opts.bits) {
    const dynamic = agreement(ref, await run(model, inputs, bits));
    const calibrated = new Model(null, { ...model.meta, activationBits: bits }, model.graph);
    await calibrated.calibrate(calib, { method: 'minmax' });
    const stat = agreement(heldRef, await run(calibrated, held, bits));
    const t1 = performance.now();
    await calibrated.calibrate(calib, { method: 'mse', threads, onProgress: (m) => process.stderr.write(`\r  ${m}\x1b[K`) });
    process.stderr.write('\r\x1b[K');
    const calibMs = performance.now() - t1;
    const mse = agreement(heldRef, await run(calibrated, held, bits));
    mseModels.set(bits, new Model(null, { ...calibrated.meta }, model.graph));
    const fmt = (a: Agreement) => `top-1 ${(a.top1 * 100).toFixed(1)}% mean |dp| ${a.meanAbsDiff.toFixed(4)}`;
    // Below 8 bits, the opt-in range per channel of each layer input: scored alike, timed alternating with one range per tensor.
    let channels: ChannelsReport | undefined;
    if (bits < 8) {
      const m = new Model(null, { ...model.meta, activationBits: bits }, model.graph);
      await m.calibrate(calib, { method: 'mse', channels: true, threads, onProgress: (p) => process.stderr.write(`\r  ${p}\x1b[K`) });
      process.stderr.write('\r\x1b[K');
      const [tensorMs, ms] = await timedTogether(opts.runs, [calibrated, m].map((x) => () => x.predict(held[0], { threads })));
      channels = { ...agreement(heldRef, await run(m, held, bits)), ms, tensorMs };
      log(`  ${bits}-bit: static MSE, a range per channel ${fmt(channels)}, ${ms.toFixed(1)} ms (one range per tensor: ${tensorMs.toFixed(1)} ms)`);
    }
    log(`  ${bits}-bit: dynamic ${fmt(dynamic)}; static min/max ${fmt(stat)}; static MSE clip + bias correction ${fmt(mse)} `
      + `(${held.length} held-out photos; MSE calibration ${(calibMs / 1000).toFixed(1)} s)`);
    const levels: LevelsReport[] = [];
    // Non-uniform levels per layer input where they measure better (src/passes/calibrate.ts), each kind on a model of its
    // own, timed alternating with the uniform model (each kind apart: the Lloyd-Max model's garbage fell into the next one's calls).
    for (const kind of opts.levels ? (['fit', 'additive'] as const) : []) {
      const m = new Model(null, { ...model.meta, activationBits: bits }, model.graph);
      await m.calibrate(calib, { method: 'mse', levels: kind, threads, onProgress: (p) => process.stderr.write(`\r  ${p}\x1b[K`) });
      process.stderr.write('\r\x1b[K');
      const a = agreement(heldRef, await run(m, held, bits)), layers = Object.values(m.meta.layers ?? {}).filter((l) => l.levels).length;
      const [uniformMs, ms] = await timedTogether(opts.runs, [calibrated, m].map((x) => () => x.predict(held[0], { threads })));
      levels.push({ kind, ...a, layers, ms, uniformMs });
      log(`  ${bits}-bit: ${kind} non-uniform levels on ${layers} layers ${fmt(a)}, ${ms.toFixed(1)} ms (uniform codes: ${uniformMs.toFixed(1)} ms)`);
    }
    // Below 8 bits, with --refit: the MSE calibration plus the pointwise layers refitted on the calibration photos, the
    // refit pictures and the mirror images of both (src/passes/refit.ts), timed alternating with the MSE model.
    let refit: RefitReport | undefined;
    if (bits < 8 && opts.refit?.length) {
      const extra: Tensor[] = [], mirrors: Tensor[] = [];
      for (const f of photos.filter((_, i) => i % 4 === 0)) mirrors.push(await imageTensor(f, pre, true));
      for (const f of opts.refit) {
        const [x, mirror] = await withMirror(f, pre);
        extra.push(x);
        mirrors.push(mirror);
      }
      const m = new Model(null, { ...model.meta, activationBits: bits }, model.graph);
      const t2 = performance.now();
      await m.calibrate(calib, { method: 'mse', refit: [...calib, ...extra, ...mirrors], threads, onProgress: (p) => process.stderr.write(`\r  ${p}\x1b[K`) });
      process.stderr.write('\r\x1b[K');
      const refitMs = performance.now() - t2;
      const [mseMs, ms] = await timedTogether(opts.runs, [calibrated, m].map((x) => () => x.predict(held[0], { threads })));
      refit = { ...agreement(heldRef, await run(m, held, bits)), inputs: m.meta.calibration!.refit!.inputs, layers: m.meta.calibration!.refit!.layers, ms, mseMs, refitMs };
      log(`  ${bits}-bit: static MSE + refit of ${refit.layers} layers on ${refit.inputs} inputs ${fmt(refit)}, ${ms.toFixed(1)} ms (MSE: ${mseMs.toFixed(1)} ms); refit ${(refitMs / 1000).toFixed(0)} s`);
    }
    quantized.push({ bits, dynamic, static: stat, mse, ...(opts.levels ? { levels } : {}), ...(channels ? { channels } : {}), ...(refit ? { refit } : {}) });
  }
  let tuned: TunedReport | undefined;
  if (opts.tune) {
    const m = new Model(null, { ...model.meta, activationBits: 8 }, model.graph);
    const t0 = performance.now();
    const r = await m.tune(calib, { threads, onProgress: (p) => process.stderr.write(`\r  ${p}\x1b[K`) });
    process.stderr.write('\r\x1b[K');
    const tuneMs = performance.now() - t0;
    const widths = widthCounts(r.chosen.widths);
    const m8 = mseModels.get(8) ?? (await (async () => {
      const c = new Model(null, { ...model.meta, activationBits: 8 }, model.graph);
      await c.calibrate(calib, { method: 'mse', threads });
      return c;
    })());
    const [ms, uniform8Ms, floatMs] = await timedTogether(opts.runs, [m, m8, model].map((x) => () => x.predict(held[0], { threads })));
    tuned = { ...agreement(heldRef, await run(m, held, 8)), widths, ms, uniform8Ms, floatMs, tuneMs };
    log(`  tuned (${r.chosen.label}; ${JSON.stringify(widths)}): top-1 ${(tuned.top1 * 100).toFixed(1)}% mean |dp| ${tuned.meanAbsDiff.toFixed(4)}, `
      + `${ms.toFixed(1)} ms (8-bit static MSE ${uniform8Ms.toFixed(1)} ms, float32 ${floatMs.toFixed(1)} ms); tuning ${(tuneMs / 1000).toFixed(0)} s`);
  }

  const x = inputs[0];
  const latency: Record<string, number> = {};
  const time = async (label: string, f: () => Promise<unknown>) => {
    latency[label] = await timed(opts.runs, f);
    log(`  ${label}: ${latency[label].toFixed(1)} ms`);
  };
  await time('faster-cnn float32', () => model.predict(x, { threads, activationBits: 0 }));
  for (const bits of opts.bits) await time(`faster-cnn ${bits}-bit (auto)`, () => model.predict(x, { threads, activationBits: bits }));
  for (const [bits, m] of mseModels) await time(`faster-cnn ${bits}-bit static (MSE)`, () => m.predict(x, { threads }));
  await time('tfjs-backend-wasm float32 (1 thread in Node)', () => tfjs.predict(x));
  tfjs.dispose();
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  const session = await ort.InferenceSession.create(writeOnnx(model.graph!), { executionProviders: ['wasm'] });
  const feed = { [model.inputs[0].name]: new ort.Tensor('float32', x.data, x.shape) };
  const ortOut = (await session.run(feed))[model.outputs[0].name].data as Float32Array;
  const ortDiff = agreement([ref[0]], [ortOut]).maxAbsDiff;
  log(`  onnxruntime-web on the exported graph: max |diff| to tfjs ${ortDiff.toExponential(2)}`);
  await time('onnxruntime-web float32', () => session.run(feed));
  await session.release();
  // onnxruntime-web int8: the 8-bit MSE calibration written as a QDQ model (int8 per-channel weights, u8 activations), which
  // its graph optimizer turns into QLinearConv; scored on the held-out photos like ours.
  let ortInt8: Agreement | undefined;
  const m8 = mseModels.get(8);
  if (m8) {
    const { writeQdq } = await import('../formats/onnx/write-qdq.js');
    const q = await ort.InferenceSession.create(writeQdq(m8.graph!, { bits: 8, ranges: m8.meta.ranges, layers: m8.meta.layers, biasCorrection: m8.meta.biasCorrection }), { executionProviders: ['wasm'] });
    const outs: Float32Array[] = [];
    for (const h of held) outs.push((await q.run({ [model.inputs[0].name]: new ort.Tensor('float32', h.data, h.shape) }))[model.outputs[0].name].data as Float32Array);
    ortInt8 = agreement(heldRef, outs);
    log(`  onnxruntime-web int8 (QDQ of our 8-bit MSE calibration): top-1 ${(ortInt8.top1 * 100).toFixed(1)}% mean |dp| ${ortInt8.meanAbsDiff.toFixed(4)}`);
    await time('onnxruntime-web int8 (QDQ)', () => q.run(feed));
    await q.release();
  }
  return {
    model: name, format: spec.format, input: model.inputShape(), nodes: model.graph!.nodes.length, importMs, photos: inputs.length,
    float, quantized, ...(ortInt8 ? { ortInt8 } : {}), ...(tuned ? { tuned } : {}), latency, threads,
  };
}

/**
 * A model calibrated as 'mse' plus non-uniform levels of one kind (src/passes/calibrate.ts): its agreement, layers on
 * levels, and its time and the uniform model's, timed together.
 */
export interface LevelsReport extends Agreement { kind: 'fit' | 'additive'; layers: number; ms: number; uniformMs: number }

/**
 * A plan `tune` chose on the calibration photos: how many layer inputs at each width (widthCounts), its
 * agreement on the held-out photos, and its time, the 8-bit MSE-calibrated model's and float32's, timed together.
 */
export interface TunedReport extends Agreement { widths: Record<string, number>; ms: number; uniform8Ms: number; floatMs: number; tuneMs: number }

/** Below 8 bits, `--refit`: MSE calibration with the pointwise layers refitted; its time and the MSE model's, timed together, and the refit's. */
export interface RefitReport extends Agreement { inputs: number; layers: number; ms: number; mseMs: number; refitMs: number }

/** Below 8 bits: MSE calibration with a range per channel (`channels: true`), and its time and the default's (one range per tensor), timed together. */
export interface ChannelsReport extends Agreement { ms: number; tensorMs: number }

export function modelsMarkdown(reports: ModelReport[]): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const lines = [
    '| model | format | precision | top-1 agreement with tfjs | mean abs prob diff | max abs diff |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of reports) {
    lines.push(`| ${r.model} | ${r.format} | float32 | ${pct(r.float.top1)} (${r.float.images}) | ${r.float.meanAbsDiff.toExponential(2)} | ${r.float.maxAbsDiff.toExponential(2)} |`);
    for (const q of r.quantized) {
      lines.push(`| ${r.model} | ${r.format} | ${q.bits}-bit dynamic | ${pct(q.dynamic.top1)} (${q.dynamic.images}) | ${q.dynamic.meanAbsDiff.toFixed(4)} | ${q.dynamic.maxAbsDiff.toFixed(4)} |`);
      lines.push(`| ${r.model} | ${r.format} | ${q.bits}-bit static, min/max | ${pct(q.static.top1)} (${q.static.images}) | ${q.static.meanAbsDiff.toFixed(4)} | ${q.static.maxAbsDiff.toFixed(4)} |`);
      const c = q.channels;
      lines.push(`| ${r.model} | ${r.format} | ${q.bits}-bit static, MSE clip + bias correction${c ? ` (${c.tensorMs.toFixed(1)} ms)` : ''} | ${pct(q.mse.top1)} (${q.mse.images}) | ${q.mse.meanAbsDiff.toFixed(4)} | ${q.mse.maxAbsDiff.toFixed(4)} |`);
      if (c) lines.push(`| ${r.model} | ${r.format} | ${q.bits}-bit static, as above with a range per channel (${c.ms.toFixed(1)} ms) | ${pct(c.top1)} (${c.images}) | ${c.meanAbsDiff.toFixed(4)} | ${c.maxAbsDiff.toFixed(4)} |`);
      const f = q.refit;
      if (f) lines.push(`| ${r.model} | ${r.format} | ${q.bits}-bit static, MSE clip + ${f.layers} layers refitted on ${f.inputs} inputs (${f.ms.toFixed(1)} ms, MSE ${f.mseMs.toFixed(1)} ms) | ${pct(f.top1)} (${f.images}) | ${f.meanAbsDiff.toFixed(4)} | ${f.maxAbsDiff.toFixed(4)} |`);
      if (q.bits === 8 && r.ortInt8) lines.push(`| ${r.model} | ${r.format} | onnxruntime-web int8, QDQ of the 8-bit MSE calibration | ${pct(r.ortInt8.top1)} (${r.ortInt8.images}) | ${r.ortInt8.meanAbsDiff.toFixed(4)} | ${r.ortInt8.maxAbsDiff.toFixed(4)} |`);
      for (const l of q.levels ?? []) {
        const what = l.kind === 'fit' ? 'Lloyd-Max levels' : 'additive levels';
        lines.push(`| ${r.model} | ${r.format} | ${q.bits}-bit static, as above + ${what} (${l.layers} layers; ${l.ms.toFixed(1)} ms, uniform ${l.uniformMs.toFixed(1)} ms) | ${pct(l.top1)} (${l.images}) | ${l.meanAbsDiff.toFixed(4)} | ${l.maxAbsDiff.toFixed(4)} |`);
      }
    }
    const t = r.tuned;
    if (t) {
      const plan = Object.entries(t.widths).map(([w, n]) => `${n} x ${w}`).join(', ');
      lines.push(`| ${r.model} | ${r.format} | tuned plan (${plan}; ${t.ms.toFixed(1)} ms, 8-bit static ${t.uniform8Ms.toFixed(1)} ms, float32 ${t.floatMs.toFixed(1)} ms) | ${pct(t.top1)} (${t.images}) | ${t.meanAbsDiff.toFixed(4)} | ${t.maxAbsDiff.toFixed(4)} |`);
    }
  }
  lines.push('', `| model | ${Object.keys(reports[0]?.latency ?? {}).join(' | ')} |`, `|---|${Object.keys(reports[0]?.latency ?? {}).map(() => '---').join('|')}|`);
  for (const r of reports) lines.push(`| ${r.model} ${r.input.join('x')} | ${Object.values(r.latency).map((v) => `${v.toFixed(1)} ms`).join(' | ')} |`);
  return lines.join('\n');
}

/** `faster-cnn bench-models --photos DIR [--models ...] [--bits 8,4] [--runs N] [--threads T] [--levels] [--tune] [--refit DIR] [--json FILE] [--report FILE]`. */
export async function benchModelsCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    photos: { type: 'string' }, models: { type: 'string' }, bits: { type: 'string' }, runs: { type: 'string' }, threads: { type: 'string' },
    json: { type: 'string' }, report: { type: 'string' }, limit: { type: 'string' }, levels: { type: 'boolean' }, tune: { type: 'boolean' },
    refit: { type: 'string' },
  });
  if (!values.photos) throw new ArgumentError('--photos', undefined, 'a folder of real photographs (scripts/fetch-photos.sh makes one)');
  const photos = await imagesIn(String(values.photos), intFlag('limit', values.limit, 1000, 1), '--photos');
  const names = values.models ? String(values.models).split(',') : Object.keys(NSFWJS_MODELS);
  const opts = {
    bits: listFlag('bits', values.bits, [8, 4], 1, 8), runs: intFlag('runs', values.runs, 9, 1, 1000),
    threads: intFlag('threads', values.threads, 2, 1, 64), levels: Boolean(values.levels), tune: Boolean(values.tune), log: (s: string) => process.stderr.write(`${s}\n`),
    ...(values.refit !== undefined ? { refit: await imagesIn(String(values.refit), 1000, '--refit') } : {}),
  };
  const reports: ModelReport[] = [];
  for (const n of names) reports.push(await benchModel(n, photos, opts));
  const md = modelsMarkdown(reports);
  console.log(md);
  if (values.json) await writeFile(String(values.json), JSON.stringify({ photos: photos.map((p) => join(p)), reports }, null, 2));
  if (values.report) await writeFile(String(values.report), `${md}\n`);
}

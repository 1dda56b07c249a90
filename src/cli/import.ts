import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../passes/calibrate.js';
import { ArgumentError } from '../errors.js';
import { readRgba, type Rgba } from '../images/decode.js';
import { checkPreprocess, mirrored, preprocess, type Preprocess } from '../images/preprocess.js';
import { probing } from '../backends/auto.js';
import { ensureCostModel } from '../kernels/wasm/calibrate.js';
import { importModel, saveModel, type Model, type NodeProfile } from '../nn/api.js';
import type { Tensor } from '../nn/tensor.js';
import { customLayersFlag, intFlag, parse } from './args.js';

/** Flags that override a model's stored preprocessing. */
const PREPROCESS_FLAGS = {
  size: { type: 'string' }, resize: { type: 'string' }, 'align-corners': { type: 'boolean' }, scale: { type: 'string' },
  offset: { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' }, channels: { type: 'string' },
} as const;

function numberFlag(name: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ArgumentError(`--${name}`, v, 'a finite number');
  return n;
}

function preprocessFlags(values: Record<string, unknown>): Partial<Preprocess> {
  const p: Partial<Preprocess> = {};
  if (values.size !== undefined) {
    const m = /^(\d+)(?:x(\d+))?$/.exec(String(values.size));
    if (!m) throw new ArgumentError('--size', values.size, 'WIDTHxHEIGHT or one number, e.g. 224x224');
    p.width = Number(m[1]);
    p.height = Number(m[2] ?? m[1]);
  }
  if (values.resize !== undefined) p.resize = String(values.resize) as Preprocess['resize'];
  if (values['align-corners']) p.alignCorners = true;
  if (values.scale !== undefined) p.scale = numberFlag('scale', values.scale);
  if (values.offset !== undefined) p.offset = numberFlag('offset', values.offset);
  if (values.mean !== undefined) p.mean = String(values.mean).split(',').map((v) => numberFlag('mean', v));
  if (values.std !== undefined) p.std = String(values.std).split(',').map((v) => numberFlag('std', v));
  if (values.channels !== undefined) p.channels = String(values.channels) as Preprocess['channels'];
  return p;
}

/** `--input-shape NAME=1x3x224x224` (repeatable): sizes for an input's named dimensions. */
export function inputShapeFlags(v: unknown): Record<string, number[]> | undefined {
  if (v === undefined) return undefined;
  const out: Record<string, number[]> = {};
  for (const s of (Array.isArray(v) ? v : [v]).map(String)) {
    const m = /^(.+)=(\d+(?:x\d+)*)$/.exec(s);
    if (!m) throw new ArgumentError('--input-shape', s, 'NAME=SIZExSIZE..., e.g. input=1x3x224x224');
    out[m[1]] = m[2].split('x').map(Number);
  }
  return out;
}

/** The PNG and JPEG files of a folder, sorted by name. */
export async function imagesIn(dir: string, limit = Infinity, flag = '--calibrate'): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new ArgumentError(flag, dir, `a readable folder of PNG or JPEG images (${(e as Error).message})`);
  }
  const files = names.filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, limit).map((f) => join(dir, f));
  if (files.length === 0) throw new ArgumentError(flag, dir, 'a folder holding at least one .png, .jpg or .jpeg file');
  return files;
}

/** A deterministic noise picture: stands in for a photo where the kernels are only timed. */
function noiseImage(width: number, height: number): Rgba {
  let r = 12345;
  const data = Uint8Array.from({ length: width * height * 4 }, () => ((r = (Math.imul(r, 1103515245) + 12345) >>> 0) >>> 24));
  return { width, height, data };
}

export async function imageTensor(path: string, p: Preprocess, mirror = false): Promise<Tensor> {
  const img = await readRgba(path);
  return preprocess(mirror ? mirrored(img) : img, p);
}

/** The picture and its mirror image as model inputs (refit inputs), read once. */
export async function withMirror(path: string, p: Preprocess): Promise<[Tensor, Tensor]> {
  const img = await readRgba(path);
  return [preprocess(img, p), preprocess(mirrored(img), p)];
}

/** At most this many runs at import measure the layers whose kernels the cost model found close. */
const MEASURING_RUNS = 60;

/** `faster-cnn import MODEL --out FILE.fcnn [--custom-layers FILE.mjs] [--activation-bits B] [--calibrate DIR [--calibration-method mse|minmax] [--levels uniform|fit|additive] [--ranges channel|tensor] [--refit DIR [--refit-layers pointwise|all]]]`. */
export async function importCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    out: { type: 'string' }, 'activation-bits': { type: 'string' }, calibrate: { type: 'string' }, limit: { type: 'string' }, 'calibration-method': { type: 'string' }, levels: { type: 'string' }, ranges: { type: 'string' }, refit: { type: 'string' }, 'refit-layers': { type: 'string' },
    'input-shape': { type: 'string', multiple: true }, 'custom-layers': { type: 'string' }, ...PREPROCESS_FLAGS,
  });
  const src = positionals[0];
  if (!src || !values.out) throw new ArgumentError('arguments', positionals, 'a model (.onnx, model.json or a .js module) and --out FILE.fcnn');
  const bits = values['activation-bits'] === undefined ? undefined : intFlag('activation-bits', values['activation-bits'], 8, 1, 8);
  const overrides = preprocessFlags(values);
  const t0 = performance.now();
  if (values.calibrate !== undefined && !bits) throw new ArgumentError('--calibrate', values.calibrate, 'used together with --activation-bits');
  if (values.refit !== undefined && values.calibrate === undefined) throw new ArgumentError('--refit', values.refit, 'used together with --calibrate');
  const refitLayers = values['refit-layers'] === undefined ? undefined : String(values['refit-layers']);
  if (refitLayers !== undefined && values.refit === undefined) throw new ArgumentError('--refit-layers', refitLayers, 'used together with --refit');
  if (refitLayers !== undefined && refitLayers !== 'pointwise' && refitLayers !== 'all') throw new ArgumentError('--refit-layers', refitLayers, "'pointwise' (1 x 1 and dense layers) or 'all' (every convolution)");
  const customLayers = await customLayersFlag(values['custom-layers']);
  const model = await importModel(src, { activationBits: bits, preprocessing: overrides, inputShapes: inputShapeFlags(values['input-shape']), customLayers });
  let sample: Tensor | undefined;
  if (values.calibrate !== undefined) {
    const files = await imagesIn(String(values.calibrate), intFlag('limit', values.limit, 100, 1));
    const pre = model.meta.preprocessing!;
    const calibration: Tensor[] = [];
    for (const [i, f] of files.entries()) {
      process.stderr.write(`\rcalibrating: reading ${i + 1}/${files.length} images`);
      calibration.push(await imageTensor(f, pre));
    }
    process.stderr.write('\n');
    const method = String(values['calibration-method'] ?? 'mse');
    if (!(CALIBRATION_METHODS as readonly string[]).includes(method)) throw new ArgumentError('--calibration-method', method, CALIBRATION_METHODS.join(', '));
    const levels = String(values.levels ?? 'uniform');
    if (levels !== 'uniform' && levels !== 'fit' && levels !== 'additive') throw new ArgumentError('--levels', levels, 'uniform, fit or additive');
    // One range per tensor (the default) or a range per channel.
    const ranges = values.ranges === undefined ? undefined : String(values.ranges);
    if (ranges !== undefined && ranges !== 'channel' && ranges !== 'tensor') throw new ArgumentError('--ranges', ranges, "'channel' (a range per channel of each layer input) or 'tensor' (one per tensor)");
    // --refit: each picture of the folder and its mirror image.
    const refit: Tensor[] = [];
    const refitFiles = values.refit === undefined ? [] : await imagesIn(String(values.refit), 1000, '--refit');
    for (const [i, f] of refitFiles.entries()) {
      process.stderr.write(`\rrefit: reading ${i + 1}/${refitFiles.length} images`);
      refit.push(...(await withMirror(f, pre)));
    }
    await model.calibrate(calibration, {
      method: method as CalibrationMethod, levels, ...(ranges ? { channels: ranges === 'channel' } : {}), ...(refit.length ? { refit, ...(refitLayers ? { refitLayers: refitLayers as 'pointwise' | 'all' } : {}) } : {}),
      onProgress: (m) => process.stderr.write(`\r${m}\x1b[K`),
    });
    process.stderr.write('\n');
    sample = calibration[0];
  }
  if (bits) {
    // 'auto' chooses each layer's kernel here; the .fcnn keeps the choices for this machine (a first
    // run elsewhere chooses anew).
    await ensureCostModel((m) => process.stderr.write(`\r${m}\x1b[K`)).catch(() => null);
    const pre = model.meta.preprocessing!;
    const x = sample ?? preprocess(noiseImage(pre.width, pre.height), pre);
    // The cost model predicts each layer's kernel; the close calls are measured over the next runs,
    // until none is left (a choice still being measured is not saved).
    for (let runs = 1; ; runs++) {
      process.stderr.write(`\rmeasuring each layer's kernels on this machine: run ${runs}, ${probing('layer|')} layers still measuring\x1b[K`);
      await model.run(x);
      if (probing('layer|') === 0 || runs >= MEASURING_RUNS) break;
    }
    process.stderr.write('\n');
  }
  await saveModel(model, String(values.out), { importedFrom: src, calibrationImages: values.calibrate });
  const g = model.graph!;
  const convs = g.nodes.filter((n) => n.op === 'Conv' || n.op === 'Gemm' || n.op === 'MatMul').length;
  console.log(`${values.out}: ${g.nodes.length} nodes (${convs} convolution/matrix), inputs ${g.inputs.map((i) => `${i.name} [${i.shape}]`).join(', ')}, `
    + `${bits ? `${bits}-bit activations, ${model.meta.ranges ? 'static ranges' : 'dynamic ranges'}` : 'float32'}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** `faster-cnn run FILE IMAGE [--custom-layers FILE.mjs] [--top K] [--json] [--profile] [--backend webgpu]`: one image through an imported model. */
export async function runCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    top: { type: 'string' }, json: { type: 'boolean' }, profile: { type: 'boolean' }, 'activation-bits': { type: 'string' },
    kernel: { type: 'string' }, threads: { type: 'string' }, backend: { type: 'string' }, 'custom-layers': { type: 'string' }, ...PREPROCESS_FLAGS,
  });
  if (values.backend !== undefined && values.backend !== 'webgpu') throw new ArgumentError('--backend', values.backend, "'webgpu' (absent: the CPU)");
  const [file, image] = positionals;
  if (!file || !image) throw new ArgumentError('arguments', positionals, 'a model file and an image (faster-cnn run FILE.fcnn IMAGE)');
  const kernel = values.kernel as 'auto' | 'pcilt' | 'direct' | undefined;
  if (kernel !== undefined && !['auto', 'pcilt', 'direct'].includes(kernel)) throw new ArgumentError('--kernel', kernel, 'auto, pcilt or direct');
  const model: Model = await importModel(file, { customLayers: await customLayersFlag(values['custom-layers']) });
  if (!model.graph) throw new ArgumentError('FILE', file, 'an imported model (faster-cnn import); for MNIST models use predict');
  const pre = checkPreprocess({ ...model.meta.preprocessing, ...preprocessFlags(values) });
  const x = await imageTensor(image, pre);
  const opts = {
    activationBits: values['activation-bits'] === undefined ? undefined : intFlag('activation-bits', values['activation-bits'], 8, 0, 8),
    kernel, threads: values.threads === undefined ? undefined : intFlag('threads', values.threads, 2, 1, 256),
    backend: values.backend as string | undefined,
  };
  const first = model.inputs[0];
  if (model.inputs.length !== 1) throw new ArgumentError('FILE', file, `a model with one input for an image (this one takes ${model.inputs.map((i) => i.name).join(', ')})`);
  let profile: NodeProfile[] | undefined;
  if (values.profile) {
    // The first run calibrates 'auto' per layer; the profile shows the second.
    await model.run({ [first.name]: x }, opts);
    profile = [];
  }
  const t0 = performance.now();
  const outputs = await model.run({ [first.name]: x }, { ...opts, profile });
  const ms = performance.now() - t0;
  // Scores: the first output's values for the first image.
  const firstOut = outputs[model.outputs[0].name];
  const scores = Array.from(firstOut.data as ArrayLike<number>, Number).slice(0, firstOut.shape[firstOut.shape.length - 1] ?? 1);
  const k = intFlag('top', values.top, 5, 1, Math.max(1, scores.length));
  const top = scores.map((score, index) => ({ index, score })).sort((a, b) => b.score - a.score).slice(0, k);
  if (values.json) {
    const all = Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, { shape: t.shape, dtype: t.dtype, data: Array.from(t.data as ArrayLike<number>, Number) }]));
    console.log(JSON.stringify({ outputs: all, top, ms, ...(profile ? { profile } : {}) }));
    return;
  }
  console.log(`${image} (${ms.toFixed(1)} ms)`);
  for (const [name, t] of Object.entries(outputs)) {
    const v = Array.from(t.data as ArrayLike<number>, Number);
    const head = name === model.outputs[0].name ? top.map((q) => `#${q.index} ${q.score.toFixed(4)}`).join(', ')
      : `min ${Math.min(...v.slice(0, 1e6)).toFixed(4)}, max ${Math.max(...v.slice(0, 1e6)).toFixed(4)}`;
    console.log(`  ${name} ${t.dtype} [${t.shape}]: ${head}`);
  }
  if (profile) console.log(formatProfile(profile));
}

/** One line per node; integer layers say which kernel ran and what 'auto' measured. */
export function formatProfile(profile: NodeProfile[]): string {
  const rows = profile.map((p) => {
    const list = (ms: Record<string, number>) => Object.entries(ms).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' / ');
    const why = p.candidates ? ` (measured ms: ${list(p.candidates)})`
      : p.predicted ? ` (predicted by this machine's cost model, ms: ${list(p.predicted)}${p.probing ? '; measuring over the next calls' : ''})`
        : p.saved ? ' (measured when the model was saved, on this machine)' : '';
    return `${p.node.slice(-40).padEnd(40)} ${p.op.padEnd(18)} ${p.ms.toFixed(2).padStart(8)} ms  [${p.shape}]`
      + `${p.kernel ? `  ${p.kernel}` : ''}${why}`
      + `${p.crossedBytes ? `  (${(p.crossedBytes / 1024).toFixed(1)} KiB crossed host/device)` : ''}`;
  });
  const total = profile.reduce((s, p) => s + p.ms, 0);
  const byOp = new Map<string, number>();
  for (const p of profile) byOp.set(p.kernel ?? p.op, (byOp.get(p.kernel ?? p.op) ?? 0) + p.ms);
  rows.push(`total ${total.toFixed(1)} ms: ${[...byOp].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  const crossed = profile.filter((p) => p.crossedBytes);
  if (profile.some((p) => p.kernel?.startsWith('webgpu:'))) {
    rows.push(`WebGPU: ${profile.filter((p) => !p.kernel?.startsWith('webgpu:')).length} of ${profile.length} nodes on the CPU; ${crossed.length} crossings, ${(crossed.reduce((s, p) => s + p.crossedBytes!, 0) / 1024).toFixed(1)} KiB`);
  }
  return rows.join('\n');
}

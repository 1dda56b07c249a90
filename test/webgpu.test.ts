import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendUnavailableError, KernelError, buildPcilt, conv2dDirect, pciltConv2d } from 'faster-cnn';
import { describeCase, firstDiff, options, randomCase, randomCodes, randomIntWeights, rng, webgpuSkip } from './helpers.js';

const { getGpu, gpuUnavailableReason } = await import(new URL('../../dist/backends/webgpu/device.js', import.meta.url).href);
const skip = await webgpuSkip();

test('WebGPU adapter is available where CI requires it', { skip }, async () => {
  assert.equal(await gpuUnavailableReason(), null);
});

test('WebGPU PCILT and dot4I8Packed direct kernels equal the reference bit for bit', { skip }, async () => {
  const r = rng(606);
  for (let bits = 1; bits <= 8; bits++) {
    for (let rep = 0; rep < 3; rep++) {
      const c = randomCase(r, 60_000);
      const w = { data: randomIntWeights(r, c, r.int(2, 8)), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
      const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
      const bias = rep === 1 ? Int32Array.from({ length: c.O }, () => r.int(-300, 300)) : undefined;
      // Tables of at most 32 entries (the GPU layout): bit-serial with up to 5 activations per index,
      // or a plain index of at most 5 bits; wider ones in the test below.
      const opts = rep === 2 && bits <= 5 ? { groupSize: Math.floor(5 / bits), share: true } : { bitSerial: true, groupSize: r.int(1, 5) };
      const t = buildPcilt(w, { activationBits: bits, ...opts });
      const ref = await conv2dDirect(x, w, { ...options(c), bias, backend: 'js' });
      const y = await pciltConv2d(x, t, { ...options(c), bias, backend: 'webgpu' });
      const z = await conv2dDirect(x, w, { ...options(c), bias, activationBits: bits, backend: 'webgpu' });
      assert.equal(firstDiff(y.data, ref.data), -1, `pcilt bits=${bits} ${t.variant} g=${t.groupSize}: ${describeCase(c)}`);
      assert.equal(firstDiff(z.data, ref.data), -1, `direct bits=${bits}: ${describeCase(c)}`);
    }
  }
});

test('WebGPU PCILT runs tables of 64 to 256 entries (fewer channel pairs a workgroup) bit for bit', { skip }, async () => {
  const r = rng(608);
  for (const [bits, opts] of [[1, { bitSerial: true, groupSize: 6 }], [2, { bitSerial: true, groupSize: 8 }], [1, { groupSize: 8, share: true }], [4, { groupSize: 2, share: true }]] as const) {
    // A case whose receptive field holds a whole group (a smaller one gets a narrower table).
    let c = randomCase(r, 20_000);
    while ((c.C / c.groups) * c.KH * c.KW < 8) c = randomCase(r, 20_000);
    const w = { data: randomIntWeights(r, c, 8), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const t = buildPcilt(w, { activationBits: bits, ...opts });
    assert.ok(t.tableSize > 32, `${t.tableSize} entries`);
    const ref = await conv2dDirect(x, w, { ...options(c), backend: 'js' });
    const y = await pciltConv2d(x, t, { ...options(c), backend: 'webgpu' });
    assert.equal(firstDiff(y.data, ref.data), -1, `pcilt bits=${bits} ${t.variant} g=${t.groupSize} (${t.tableSize} entries): ${describeCase(c)}`);
  }
});

test('WebGPU PCILT flushes its packed int16 sums often enough for entries near the int16 limit', { skip }, async () => {
  const r = rng(607);
  // |entry| up to 2 x 9000 (two 9000-sized weights on a 1-bit slot pair): a chunk of one segment at a time.
  for (const [groupSize, top] of [[2, 9000], [1, 30000], [3, 700]]) {
    const c = { N: 2, C: 24, H: 9, W: 11, O: 37, KH: 3, KW: 3, groups: 1 };
    const w = { data: Int16Array.from({ length: c.O * c.C * 9 }, () => (r.int(0, 1) ? top : -top) + r.int(-5, 5)), shape: [c.O, c.C, 3, 3] };
    const x = { data: randomCodes(r, c as never, 2), shape: [c.N, c.C, c.H, c.W] };
    const t = buildPcilt(w, { activationBits: 2, bitSerial: true, groupSize });
    const ref = await conv2dDirect(x, w, { padding: 1, backend: 'js' });
    const y = await pciltConv2d(x, t, { padding: 1, backend: 'webgpu' });
    assert.equal(firstDiff(y.data, ref.data), -1, `groupSize ${groupSize}, weights near +-${top}`);
  }
});

test('WebGPU PCILT reads tables wider than 256 entries, or with entries beyond int16, from storage, bit for bit', { skip }, async () => {
  const r = rng(609);
  const cases = [
    [5, { groupSize: 2 }, 8], // 2 x 5-bit codes: 1024 entries
    [1, { bitSerial: true, groupSize: 10 }, 8], // 1024 entries, 10-bit indices (3 segments a word)
    [2, { bitSerial: true, groupSize: 12 }, 8], // 4096 entries, two planes
    [4, { groupSize: 3 }, 8], // 3 x 4-bit codes: 4096 entries, 12-bit indices
    [8, { groupSize: 2 }, 8], // 65536 entries (on a small layer: 19 MB of rows), |entry| up to 2 x 127 x 255
    [1, { bitSerial: true, groupSize: 4 }, 15], // 16 entries, but int16 weights: |entry| up to 64000
  ] as const;
  for (const [bits, opts, wbits] of cases) {
    let c = randomCase(r, 15_000);
    while ((c.C / c.groups) * c.KH * c.KW < 12) c = randomCase(r, 15_000);
    if (bits === 8) c = { N: 1, C: 2, H: 7, W: 9, O: 8, KH: 3, KW: 3, groups: 1, stride: [1, 1], dilation: [1, 1], padding: [1, 1, 1, 1] };
    const data = wbits === 8 ? randomIntWeights(r, c, 8) : Int16Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.int(-16000, 16000));
    const w = { data, shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const bias = Int32Array.from({ length: c.O }, () => r.int(-300, 300));
    const t = buildPcilt(w, { activationBits: bits, ...opts });
    const ref = await conv2dDirect(x, w, { ...options(c), bias, backend: 'js' });
    for (let call = 0; call < 2; call++) {
      const y = await pciltConv2d(x, t, { ...options(c), bias, backend: 'webgpu' });
      assert.equal(firstDiff(y.data, ref.data), -1, `call ${call}, bits=${bits} ${t.variant} g=${t.groupSize} (${t.tableSize} entries, |entry| <= ${t.maxAbsEntry}): ${describeCase(c)}`);
    }
  }
});

test('WebGPU says why it cannot run float tables, tables beyond one storage binding, or int16 weights on dot4I8Packed', { skip }, async () => {
  const w = { data: Int8Array.from({ length: 4 * 2 * 9 }, (_, i) => (i % 9) - 4), shape: [4, 2, 3, 3] };
  const x = { data: new Uint8Array(2 * 6 * 6).fill(3), shape: [1, 2, 6, 6] };
  const fw = { data: Float32Array.from(w.data, (v) => v * 0.5), shape: w.shape };
  await assert.rejects(() => pciltConv2d(x, buildPcilt(fw, { activationBits: 2 }), { backend: 'webgpu' }), (e: unknown) =>
    e instanceof BackendUnavailableError && /backend 'webgpu' is unavailable: the tables hold float entries/.test(e.message));
  // 8-bit codes two an index: 65536 entries x 9 segments x 64 channels x 4 bytes, beyond 128 MiB.
  const big = { data: Int8Array.from({ length: 64 * 2 * 9 }, (_, i) => (i % 9) - 4), shape: [64, 2, 3, 3] };
  await assert.rejects(() => pciltConv2d(x, buildPcilt(big, { activationBits: 8, groupSize: 2 }), { backend: 'webgpu' }), (e: unknown) =>
    e instanceof BackendUnavailableError && /read from one storage buffer of at most 134217728 bytes, and these need 150994944/.test(e.message));
  const w16 = { data: Int16Array.from(w.data, (v) => v * 100), shape: w.shape };
  await assert.rejects(() => conv2dDirect(x, w16, { backend: 'webgpu' }), /weights beyond int8/);
});

test('a lost device gives a clear error, and the next call acquires a new one', { skip }, async () => {
  const w = { data: Int8Array.from({ length: 8 * 4 * 9 }, (_, i) => (i % 13) - 6), shape: [8, 4, 3, 3] };
  const x = { data: Uint8Array.from({ length: 4 * 10 * 10 }, (_, i) => i % 4), shape: [1, 4, 10, 10] };
  const t = buildPcilt(w, { activationBits: 2, bitSerial: true, groupSize: 4 });
  const good = await pciltConv2d(x, t, { padding: 1, backend: 'webgpu' });
  const before = await getGpu();
  // Lose the device while a long call waits for its result (a CPU driver takes ~0.1 s for it).
  const bw = { data: Int8Array.from({ length: 64 * 32 * 9 }, (_, i) => (i % 13) - 6), shape: [64, 32, 3, 3] };
  const bx = { data: Uint8Array.from({ length: 4 * 32 * 48 * 48 }, (_, i) => i % 4), shape: [4, 32, 48, 48] };
  const pending = pciltConv2d(bx, buildPcilt(bw, { activationBits: 2, bitSerial: true, groupSize: 4 }), { padding: 1, backend: 'webgpu' });
  let finished = false;
  void pending.then(() => (finished = true), () => {});
  setTimeout(() => before.device.destroy(), 20);
  const outcome = await pending.then(() => null, (e: unknown) => e);
  // A fast GPU may finish before the loss; then the result must have come first.
  if (outcome === null) assert.ok(finished);
  else assert.ok(outcome instanceof KernelError && /WebGPU device was (destroyed|lost)/.test(outcome.message), String(outcome));
  const again = await pciltConv2d(x, t, { padding: 1, backend: 'webgpu' });
  assert.notEqual(await getGpu(), before);
  assert.equal(firstDiff(again.data, good.data), -1);
});

test('faster-cnn bench --backend webgpu times PCILT and direct WGSL and checks their outputs', { skip }, async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'bench', '--backend', 'webgpu', '--layers', 'mnist-b1', '--bits', '2', '--runs', '2', '--json']);
  const r = JSON.parse(stdout.slice(stdout.indexOf('{')));
  assert.ok(r.adapter.length > 0);
  assert.deepEqual(r.results.map((x: { impl: string }) => x.impl), ['pcilt-webgpu', 'direct-webgpu']);
  for (const x of r.results) assert.ok(x.outputOk && x.medianMs > 0, JSON.stringify(x));
});

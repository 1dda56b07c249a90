import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ArgumentError, BackendUnavailableError, MemoryCapError, OverflowError,
  buildPcilt, conv2dDirect, pciltConv2d, registerBackend,
} from 'faster-cnn';

const w = { data: Int8Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => (i % 7) - 3), shape: [4, 3, 3, 3] };
const x = { data: new Uint8Array(1 * 3 * 8 * 8).fill(1), shape: [1, 3, 8, 8] };
const tables = buildPcilt(w, { activationBits: 2 });

/** Asserts a typed ArgumentError naming `argument`, whose message shows what was given and allowed. */
async function rejectsArg(run: () => unknown, argument: string, given: RegExp) {
  await assert.rejects(async () => run(), (e: unknown) => {
    assert.ok(e instanceof ArgumentError, `expected ArgumentError, got ${e}`);
    assert.equal(e.argument, argument);
    assert.match(e.message, given);
    assert.match(e.message, / must be .*, got /);
    return true;
  });
}

test('wrong ranks are refused, naming the argument', async () => {
  await rejectsArg(() => pciltConv2d({ data: x.data, shape: [3, 8, 8] }, tables), 'input.shape', /got \[3, 8, 8\]/);
  await rejectsArg(() => buildPcilt({ data: w.data, shape: [4, 27] }, { activationBits: 2 }), 'weight.shape', /got \[4, 27\]/);
  await rejectsArg(() => conv2dDirect(x, { data: w.data, shape: [4, 3, 9] }), 'weight.shape', /got \[4, 3, 9\]/);
});

test('channels that do not match groups are refused', async () => {
  await rejectsArg(() => pciltConv2d({ data: new Uint8Array(2 * 64), shape: [1, 2, 8, 8] }, tables), 'input.shape[1] (channels)', /got 2/);
  await rejectsArg(() => pciltConv2d(x, tables, { groups: 2 }), 'input.shape[1] (channels)', /must be weight.shape\[1\] \* options.groups = 3 \* 2 = 6, got 3/);
  await rejectsArg(() => conv2dDirect(x, w, { groups: 3 }), 'weight.shape[0] (output channels)', /a multiple of options.groups \(3\), got 4/);
});

test('codes >= 2^b are refused by every backend, and the next call works', async () => {
  // The wasm backend checks them on its copy of the input; the registry checks them for the others.
  const bad = { data: x.data.slice(), shape: x.shape };
  bad.data[5] = 4;
  bad.data[x.data.length - 1] = 7;
  for (const backend of ['auto', 'wasm', 'js'] as const) {
    await rejectsArg(() => pciltConv2d(bad, tables, { backend }), 'input.data[5]', /got 4/);
    await rejectsArg(() => conv2dDirect(bad, w, { activationBits: 2, backend }), 'input.data[5]', /0\.\.3/);
    const ref = await pciltConv2d(x, tables, { backend: 'js' });
    assert.deepEqual((await pciltConv2d(x, tables, { backend })).data, ref.data, backend);
  }
  // Rows of 19 codes: wasm checks 16 of each in a vector and 3 one by one; one bad code in either part.
  for (const at of [7 * 19 + 5, 3 * 7 * 19 - 1]) {
    const one = { data: new Uint8Array(3 * 7 * 19).fill(3), shape: [1, 3, 7, 19] };
    one.data[at] = 4;
    await rejectsArg(() => pciltConv2d(one, tables, { backend: 'wasm' }), `input.data[${at}]`, /got 4/);
  }
});

test('activationBits outside 1..8 is refused', async () => {
  await rejectsArg(() => buildPcilt(w, { activationBits: 9 }), 'options.activationBits', /an integer 1\.\.8, got 9/);
  await rejectsArg(() => buildPcilt(w, { activationBits: 0 }), 'options.activationBits', /got 0/);
  await rejectsArg(() => buildPcilt(w, { activationBits: 2.5 }), 'options.activationBits', /got 2\.5/);
});

test('non-integer or negative sizes are refused', async () => {
  await rejectsArg(() => pciltConv2d({ data: x.data, shape: [1, 3, 8.5, 8] }, tables), 'input.shape[2]', /got 8\.5/);
  await rejectsArg(() => pciltConv2d({ data: x.data, shape: [1, 3, -8, -8] }, tables), 'input.shape[2]', /got -8/);
  await rejectsArg(() => pciltConv2d(x, tables, { stride: 0 }), 'options.stride', /got 0/);
  await rejectsArg(() => pciltConv2d(x, tables, { padding: -1 }), 'options.padding', /got -1/);
  await rejectsArg(() => pciltConv2d(x, tables, { dilation: [1, 1.5] }), 'options.dilation[1]', /got 1\.5/);
  await rejectsArg(() => pciltConv2d(x, tables, { padding: [1, 2, 3] as never }), 'options.padding', /\[top, left, bottom, right\]/);
  await rejectsArg(() => pciltConv2d({ data: x.data, shape: [1, 3, 8, 9] }, tables), 'input.data.length', /got 192/);
  await rejectsArg(() => pciltConv2d(x, tables, { threads: 0 }), 'options.threads', /got 0/);
});

test('output size <= 0 is refused', async () => {
  await rejectsArg(() => pciltConv2d(x, tables, { dilation: 5 }), 'output size', /larger than the padded input/);
});

test('NaN or infinite weights are refused', async () => {
  const f = new Float32Array(w.data);
  f[7] = NaN;
  await rejectsArg(() => buildPcilt({ data: f, shape: w.shape }, { activationBits: 2 }), 'weight.data[7]', /got NaN/);
  f[7] = Infinity;
  await rejectsArg(() => conv2dDirect(x, { data: f, shape: w.shape }), 'weight.data[7]', /got Infinity/);
  await rejectsArg(() => buildPcilt(w, { activationBits: 2, fn: () => NaN }), 'options.fn(-3, 0)', /got NaN/);
});

test('tables over the memory cap are refused before allocation, with a hint', () => {
  const big = { data: new Int8Array(128 * 64 * 9).fill(3), shape: [128, 64, 3, 3] };
  assert.throws(() => buildPcilt(big, { activationBits: 8, groupSize: 2 }), (e: unknown) => {
    assert.ok(e instanceof MemoryCapError);
    assert.match(e.message, /PCILT tables would need 4.83 GB, over the cap of 256\.00 MB; use bitSerial/);
    return true;
  });
  assert.throws(() => buildPcilt(w, { activationBits: 8, maxTableBytes: 100 }), MemoryCapError);
  // Sharing makes the same weights fit: every segment here is identical.
  const shared = buildPcilt(big, { activationBits: 8, groupSize: 2, share: true });
  assert.equal(shared.numTables, 1);
});

test('unknown and unavailable backends are refused', async () => {
  await rejectsArg(() => pciltConv2d(x, tables, { backend: 'cuda' }), 'options.backend', /one of 'auto', 'wasm', 'webgpu', 'js'/);
  registerBackend({
    name: 'test-missing', unavailableReason: async () => 'no such device in this test',
    supportsPcilt: () => null, supportsDirect: () => null, pcilt: () => new Int32Array(0), direct: () => new Int32Array(0),
  });
  await assert.rejects(() => conv2dDirect(x, w, { backend: 'test-missing' }), (e: unknown) => {
    assert.ok(e instanceof BackendUnavailableError);
    assert.match(e.message, /backend 'test-missing' is unavailable: no such device in this test/);
    return true;
  });
  // 'auto' skips it.
  const y = await conv2dDirect(x, w, { backend: 'auto' });
  assert.equal(y.data.length, 4 * 36);
});

test('bit-serial refuses a non-linear fn, clearly', () => {
  assert.throws(() => buildPcilt(w, { activationBits: 3, bitSerial: true, fn: (p, a) => p * a * a }), (e: unknown) => {
    assert.ok(e instanceof ArgumentError);
    assert.match(e.message, /options\.fn must be linear in the activation/);
    assert.match(e.message, /f\(-3, 2\) = -12 but 2 \* f\(-3, 1\) = -6/);
    return true;
  });
});

test('sums that could overflow int32 are refused rather than wrapped', async () => {
  const huge = { data: new Int32Array(2 * 1 * 3 * 3).fill(2 ** 28), shape: [2, 1, 3, 3] };
  assert.throws(() => buildPcilt(huge, { activationBits: 2 }), OverflowError);
  const img = { data: new Uint8Array(25), shape: [1, 1, 5, 5] };
  await assert.rejects(() => conv2dDirect(img, huge), OverflowError);
  const fine = { data: new Int32Array(18).fill(1000), shape: [2, 1, 3, 3] };
  const t = buildPcilt(fine, { activationBits: 2 });
  await assert.rejects(() => pciltConv2d(img, t, { bias: new Int32Array([2 ** 31 - 10, 0]) }), OverflowError);
});

test('a bad bias is refused; a float bias gives a float output', async () => {
  await rejectsArg(() => pciltConv2d(x, tables, { bias: new Int32Array(3) }), 'options.bias.length', /got 3/);
  await rejectsArg(() => pciltConv2d(x, tables, { bias: [1, 2, 3, 4] as never }), 'options.bias', /Int32Array or Float32Array/);
  const y = await pciltConv2d(x, tables, { bias: new Float32Array([0.5, 0, 0, 0]) });
  const z = await pciltConv2d(x, tables);
  assert.ok(y.data instanceof Float32Array);
  assert.equal(y.data[0], z.data[0] + 0.5);
});

test('a non-table and a wrong input type are refused', async () => {
  await rejectsArg(() => pciltConv2d(x, {} as never), 'tables', /the result of buildPcilt/);
  await rejectsArg(() => pciltConv2d({ data: new Float32Array(192), shape: [1, 3, 8, 8] } as never, tables), 'input.data', /Float32Array\(192\)/);
});

test('options.out receives the output on every backend; a wrong type or length is refused and left untouched', async () => {
  const size = 1 * 4 * 6 * 6;
  for (const backend of ['js', 'wasm', 'auto']) {
    const ref = await pciltConv2d(x, tables, { backend });
    const out = new Int32Array(size).fill(-7);
    const y = await pciltConv2d(x, tables, { backend, out });
    assert.equal(y.data, out, backend);
    assert.deepEqual(Array.from(out), Array.from(ref.data), backend);
    const d = new Int32Array(size);
    assert.equal((await conv2dDirect(x, w, { backend, activationBits: 2, out: d })).data, d);
    assert.deepEqual(Array.from(d), Array.from(ref.data), `${backend} direct`);
    const f = new Float32Array(size);
    await pciltConv2d(x, tables, { backend, bias: new Float32Array([0.5, 0, 0, 0]), out: f });
    assert.equal(f[0], ref.data[0] + 0.5, `${backend} float bias`);
  }
  const wrong = new Int32Array(size + 1).fill(3);
  await rejectsArg(() => pciltConv2d(x, tables, { out: wrong }), 'options.out', /an Int32Array of length 144 .*got Int32Array\(145\)/);
  await rejectsArg(() => pciltConv2d(x, tables, { out: new Float32Array(size) }), 'options.out', /Float32Array\(144\)/);
  assert.ok(wrong.every((v) => v === 3));
});

test('a bad options.requantize is refused, naming the field; a good one gives uint8 codes on every backend', async () => {
  const bad: [unknown, string, RegExp][] = [
    [0.5, 'options.requantize', /an object \{ scale/],
    [{ scale: -1 }, 'options.requantize.scale[0]', /a finite number > 0/],
    [{ scale: [1, 1, 1] }, 'options.requantize.scale', /4 of them/],
    [{ scale: 'x' }, 'options.requantize.scale', /a finite number > 0 or 4 of them/],
    [{ scale: 1e-50 }, 'options.requantize.scale[0]', /as float32/],
    [{ scale: 1, zeroPoint: 256 }, 'options.requantize.zeroPoint', /0\.\.255/],
    [{ scale: 1, bits: 2, zeroPoint: 4 }, 'options.requantize.zeroPoint', /0\.\.3/],
    [{ scale: 1, bits: 9 }, 'options.requantize.bits', /1\.\.8/],
  ];
  for (const [requantize, name, allowed] of bad) {
    await rejectsArg(() => pciltConv2d(x, tables, { requantize: requantize as never }), name, allowed);
    await rejectsArg(() => conv2dDirect(x, w, { activationBits: 2, requantize: requantize as never }), name, allowed);
  }
  await rejectsArg(() => pciltConv2d(x, tables, { requantize: { scale: 1 }, bias: new Float32Array(4) }), 'options.requantize', /exact integer sums/);
  await rejectsArg(() => pciltConv2d(x, tables, { requantize: { scale: 1 }, out: new Int32Array(144) }), 'options.out', /a Uint8Array of length 144/);
  const sums = await pciltConv2d(x, tables, { backend: 'js' });
  const scale = 100 / Math.max(...Array.from(sums.data, Math.abs));
  for (const backend of ['js', 'wasm', 'auto']) {
    const y = await pciltConv2d(x, tables, { backend, requantize: { scale, zeroPoint: 128 } });
    assert.ok(y.data instanceof Uint8Array, backend);
    assert.deepEqual(Array.from(y.data), Array.from(sums.data, (v) => Math.min(255, Math.max(0, Math.round(v * scale) + 128))), backend);
  }
});

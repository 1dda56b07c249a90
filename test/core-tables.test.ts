import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AffineQuantizer, ArgumentError, CodebookQuantizer, buildPcilt, conv2dDirect, dequantizeWeights,
  levelProduct, pciltConv2d, quantizeWeights,
} from 'faster-cnn';
import { rng } from './helpers.js';

test('basic tables hold w * a for every code (the paper, Fig. 1)', () => {
  const w = { data: Int8Array.from([3, -2, 0, 7]), shape: [1, 4, 1, 1] };
  const t = buildPcilt(w, { activationBits: 2, groupSize: 1 });
  assert.equal(t.variant, 'basic');
  assert.equal(t.tableSize, 4);
  assert.equal(t.entryType, 'int8');
  assert.deepEqual([...t.entries], [0, 3, 6, 9, 0, -2, -4, -6, 0, 0, 0, 0, 0, 7, 14, 21]);
  assert.equal(t.bytes, 16 + 4 * 2);
});

test('grouped entries are sums over the packed slots, slot i at bits i*b', () => {
  const w = { data: Int8Array.from([5, -3, 2]), shape: [1, 3, 1, 1] };
  const t = buildPcilt(w, { activationBits: 2, groupSize: 2 });
  assert.equal(t.variant, 'grouped');
  assert.equal(t.segments, 2);
  for (let idx = 0; idx < 16; idx++) assert.equal(t.entries[idx], 5 * (idx & 3) - 3 * (idx >> 2));
  // The last segment has one slot; its upper slot bits never occur.
  for (let a = 0; a < 4; a++) assert.equal(t.entries[16 + a], 2 * a);
});

test('tables of products, built in place, equal the same tables built slot by slot through a product function', () => {
  const r = rng(808);
  for (let rep = 0; rep < 60; rep++) {
    const bits = r.int(1, 8), O = r.int(1, 9), Cg = r.int(1, 11), K = r.int(1, 3);
    const top = r.next() < 0.3 ? 32767 : 127;
    const w = { data: Int16Array.from({ length: O * Cg * K * K }, () => r.int(-top, top)), shape: [O, Cg, K, K] };
    const bitSerial = r.next() < 0.5;
    const groupSize = r.int(1, Math.max(1, Math.floor(8 / (bitSerial ? 1 : bits))));
    const share = r.next() < 0.3;
    const opts = { activationBits: bits, bitSerial, groupSize, share, maxTableBytes: 1 << 30 };
    // A product function that is not the library's own multiply takes the slot-by-slot path.
    const fast = buildPcilt(w, opts), slow = buildPcilt(w, { ...opts, fn: (p: number, q: number) => p * q });
    assert.equal(fast.entryType, slow.entryType);
    assert.deepEqual(fast.tableOf, slow.tableOf);
    assert.deepEqual(fast.entries, slow.entries, JSON.stringify({ ...opts, shape: w.shape }));
  }
});

test('entry type is the narrowest that holds every entry', () => {
  const mk = (v: number, bits: number, g = 1) => buildPcilt({ data: Int16Array.from([v, v]), shape: [1, 2, 1, 1] }, { activationBits: bits, groupSize: g }).entryType;
  assert.equal(mk(127, 1), 'int8');
  assert.equal(mk(127, 1, 2), 'int16');
  assert.equal(mk(127, 8), 'int16');
  assert.equal(mk(30000, 8), 'int32');
  const f = buildPcilt({ data: Int8Array.from([1, 2]), shape: [1, 2, 1, 1] }, { activationBits: 2, fn: (w, a) => w * a * 0.5 });
  assert.equal(f.entryType, 'float32');
  assert.equal(f.integer, false);
});

test('shared tables: identical segments are stored once and the ratio is reported', async () => {
  const r = rng(3);
  // 2-bit weights in 1x1 segments: at most 3 distinct tables (-1, 0, 1).
  const w = { data: Int8Array.from({ length: 16 * 8 * 3 * 3 }, () => r.int(-1, 1)), shape: [16, 8, 3, 3] };
  const t = buildPcilt(w, { activationBits: 4, groupSize: 1, share: true });
  assert.equal(t.numTables, 3);
  assert.equal(t.dedupRatio, (16 * 72) / 3);
  assert.match(t.summary(), /shared: yes, dedup ratio 384\.00x/);
  const plain = buildPcilt(w, { activationBits: 4, groupSize: 1 });
  assert.ok(t.bytes < plain.bytes / 8, `${t.bytes} vs ${plain.bytes}`);
  const x = { data: Uint8Array.from({ length: 2 * 8 * 9 * 9 }, () => r.int(0, 15)), shape: [2, 8, 9, 9] };
  assert.deepEqual((await pciltConv2d(x, t, { padding: 1 })).data, (await pciltConv2d(x, plain, { padding: 1 })).data);
});

test("the seed layer's tables: ours against its 75.5 MB of float32", () => {
  const r = rng(11);
  const w = { data: Int8Array.from({ length: 128 * 64 * 9 }, () => r.int(-127, 127)), shape: [128, 64, 3, 3] };
  const basic8 = buildPcilt(w, { activationBits: 8, groupSize: 1 });
  assert.equal(basic8.entryType, 'int16');
  assert.equal(basic8.bytes, 128 * 576 * 256 * 2 + 128 * 576 * 4); // 73728 tables: a 32-bit index
  const serial = buildPcilt(w, { activationBits: 8, bitSerial: true, groupSize: 4 });
  assert.ok(serial.bytes < 5e6, `${serial.bytes}`);
  assert.match(serial.summary(), /PCILT bit-serial for weight \[128, 64, 3, 3\]/);
});

test('auto group size fills an 8-bit index and backs off under the memory cap', () => {
  const w = { data: new Int8Array(8 * 16 * 9).fill(1), shape: [8, 16, 3, 3] };
  const packed = (bits: number) => buildPcilt(w, { activationBits: bits, bitSerial: false }).groupSize;
  assert.equal(packed(1), 8);
  assert.equal(packed(2), 4);
  assert.equal(packed(3), 2);
  assert.equal(packed(5), 1);
  assert.equal(buildPcilt(w, { activationBits: 1, bitSerial: true }).groupSize, 8);
  const capped = buildPcilt(w, { activationBits: 1, maxTableBytes: 20_000 });
  assert.ok(capped.groupSize < 8 && capped.bytes <= 20_000, `${capped.groupSize} ${capped.bytes}`);
});

test('defaults give the fast layout: bit-serial, 8 activations an index on the CPU, 5 for WebGPU', () => {
  const w = { data: Int8Array.from({ length: 16 * 8 * 9 }, (_, i) => (i % 15) - 7), shape: [16, 8, 3, 3] };
  for (const bits of [1, 2, 3, 4, 8]) {
    const t = buildPcilt(w, { activationBits: bits });
    assert.equal(t.variant, 'bit-serial', `${bits} bits`);
    assert.equal(t.groupSize, 8);
    assert.equal(t.tableSize, 256);
    assert.equal(buildPcilt(w, { activationBits: bits, backend: 'webgpu' }).tableSize, 32);
  }
  // An explicit option still wins: a groupSize packs whole codes, a custom fn needs no linearity.
  assert.equal(buildPcilt(w, { activationBits: 2, groupSize: 2 }).variant, 'grouped');
  assert.equal(buildPcilt(w, { activationBits: 2, fn: (p, a) => p * a * a }).variant, 'grouped');
  assert.equal(buildPcilt(w, { activationBits: 2, bitSerial: false }).variant, 'grouped');
});

test('affine activation quantizer: codes, range, round trip', () => {
  const q = AffineQuantizer.fromRange(4, 0, 1.5);
  assert.equal(q.zeroPoint, 0);
  assert.equal(q.scale, 0.1);
  assert.deepEqual([...q.quantize([-1, 0, 0.04, 0.06, 1.5, 9])], [0, 0, 0, 1, 15, 15]);
  const signed = AffineQuantizer.fromRange(8, -1, 1);
  assert.ok(signed.zeroPoint > 120 && signed.zeroPoint < 135);
  const x = [-0.5, 0, 0.25, 0.9];
  const back = signed.dequantize(signed.quantize(x));
  x.forEach((v, i) => assert.ok(Math.abs(back[i] - v) <= signed.scale / 2 + 1e-7));
  assert.throws(() => new AffineQuantizer(9, 1), /bits must be an integer 1\.\.8, got 9/);
  assert.throws(() => new AffineQuantizer(2, 0), ArgumentError);
});

test('codebook quantizer picks the nearest level; levelProduct runs PCILT on it exactly', async () => {
  const q = new CodebookQuantizer([0, 0.1, 0.5, 2]);
  assert.equal(q.bits, 2);
  assert.deepEqual([...q.quantize([-3, 0.04, 0.29, 0.31, 1.24, 1.26, 100])], [0, 0, 1, 2, 2, 3, 3]);
  assert.throws(() => new CodebookQuantizer([0, 1, 2]), /levels.length must be a power of two/);
  assert.throws(() => new CodebookQuantizer([0, 1, 1, 2]), /levels\[2\] must be a finite number above the previous level/);
  // Integer levels keep integer tables: a non-uniform code book with exact output.
  const ints = new CodebookQuantizer([0, 1, 3, 10]);
  const w = { data: Int8Array.from([2, -1, 4, 3]), shape: [2, 2, 1, 1] };
  const x = { data: Uint8Array.from([0, 1, 2, 3, 3, 2, 1, 0]), shape: [1, 2, 2, 2] };
  const fn = levelProduct(ints);
  const y = await pciltConv2d(x, buildPcilt(w, { activationBits: 2, fn, groupSize: 2 }));
  const z = await conv2dDirect(x, w, { fn, activationBits: 2 });
  assert.ok(y.data instanceof Int32Array);
  assert.deepEqual([...y.data], [...z.data]);
  assert.equal(y.data[0], 2 * 0 + -1 * 10);
});

test('weight quantization: signed, per tensor and per channel, and back', () => {
  const data = Float32Array.from([0.5, -1, 0.25, 0.1, -0.02, 0.05]);
  const per = quantizeWeights({ data, shape: [2, 3] }, { bits: 4, perChannel: true });
  assert.deepEqual([...per.data], [4, -7, 2, 7, -1, 4]);
  assert.ok(per.data instanceof Int8Array);
  const back = dequantizeWeights(per);
  data.forEach((v, i) => assert.ok(Math.abs(back[i] - v) <= per.scales[i < 3 ? 0 : 1] / 2 + 1e-7));
  const tensor = quantizeWeights({ data, shape: [2, 3] }, { bits: 8, perChannel: false });
  assert.equal(tensor.scales.length, 1);
  assert.equal(tensor.data[1], -127);
  assert.throws(() => quantizeWeights({ data, shape: [2, 3] }, { bits: 1 }), /options.bits must be an integer 2\.\.16, got 1/);
});

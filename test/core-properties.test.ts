import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPcilt, conv2dDirect, pciltConv2d, type PciltOptions } from 'faster-cnn';
import { describeCase, firstDiff, naiveConv, options, randomCase, randomCodes, randomIntWeights, rng } from './helpers.js';

type Variant = { name: string; opts: (bits: number, r: ReturnType<typeof rng>) => Omit<PciltOptions, 'activationBits'>; fn?: (w: number, a: number) => number };

const nonLinear = (w: number, a: number) => w * a * a - 3 * w + a;
const linear = (w: number, a: number) => 3 * w * a;

const variants: Variant[] = [
  { name: 'basic', opts: () => ({ groupSize: 1 }) },
  { name: 'grouped-auto', opts: () => ({ groupSize: 'auto' }) },
  { name: 'grouped-random', opts: (bits, r) => ({ groupSize: r.int(1, Math.max(1, Math.floor(12 / bits))) }) },
  { name: 'bit-serial', opts: (_bits, r) => ({ bitSerial: true, groupSize: r.pick([1, 3, 4, 8, 'auto'] as const) }) },
  { name: 'shared', opts: (bits, r) => ({ share: true, groupSize: r.int(1, Math.max(1, Math.floor(8 / bits))) }) },
  { name: 'shared-bit-serial', opts: () => ({ share: true, bitSerial: true }) },
  { name: 'custom-fn', opts: () => ({ fn: nonLinear }), fn: nonLinear },
  { name: 'custom-linear-bit-serial', opts: () => ({ fn: linear, bitSerial: true, groupSize: 2 }), fn: linear },
];

test('pciltConv2d equals conv2dDirect and a naive loop, bit for bit, for every bit width and table variant', async () => {
  const r = rng(20260126);
  let cases = 0;
  for (let bits = 1; bits <= 8; bits++) {
    for (const v of variants) {
      for (let rep = 0; rep < 5; rep++) {
        const c = randomCase(r, 250_000);
        const weightBits = r.int(2, 8);
        const w = { data: randomIntWeights(r, c, weightBits), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
        const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
        const withBias = r.next() < 0.5;
        const bias = withBias ? Int32Array.from({ length: c.O }, () => r.int(-1000, 1000)) : undefined;
        const tables = buildPcilt(w, { activationBits: bits, ...v.opts(bits, r) });
        const y = await pciltConv2d(x, tables, { ...options(c), bias, backend: 'js' });
        const z = await conv2dDirect(x, w, { ...options(c), bias, fn: v.fn, activationBits: bits, backend: 'js' });
        const ref = naiveConv(x.data, w.data, c, v.fn, bias);
        const where = `${v.name} bits=${bits} ${tables.variant} g=${tables.groupSize} ${describeCase(c)}`;
        assert.ok(y.data instanceof Int32Array, `integer output expected: ${where}`);
        assert.ok(z.data instanceof Int32Array, `integer direct output expected: ${where}`);
        assert.deepEqual(y.shape, ref.shape, where);
        assert.equal(firstDiff(y.data, z.data), -1, `pcilt != direct at ${firstDiff(y.data, z.data)}: ${where}`);
        assert.equal(firstDiff(y.data, ref.out), -1, `pcilt != naive at ${firstDiff(y.data, ref.out)}: ${where}`);
        cases++;
      }
    }
  }
  assert.equal(cases, 8 * variants.length * 5);
});

test('int16 weights: exact with grouped and bit-serial tables', async () => {
  const r = rng(7);
  for (let rep = 0; rep < 6; rep++) {
    const c = randomCase(r, 60_000);
    const w = { data: Int16Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.int(-2000, 2000)), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const bits = r.int(1, 8);
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const ref = naiveConv(x.data, w.data, c);
    for (const bitSerial of [false, true]) {
      const t = buildPcilt(w, { activationBits: bits, bitSerial, groupSize: bitSerial ? 4 : 1 });
      const y = await pciltConv2d(x, t, options(c));
      assert.equal(firstDiff(y.data, ref.out), -1, `bitSerial=${bitSerial} ${describeCase(c)}`);
    }
  }
});

test('float weights: within 1e-5 relative of a float64 reference', async () => {
  const r = rng(99);
  for (let rep = 0; rep < 24; rep++) {
    const c = randomCase(r, 80_000);
    const bits = r.int(1, 8);
    const w = { data: Float32Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => (r.next() - 0.5) * 4), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const ref = naiveConv(x.data, w.data, c);
    const t = buildPcilt(w, { activationBits: bits, groupSize: 'auto', bitSerial: rep % 3 === 0 });
    const y = await pciltConv2d(x, t, options(c));
    const z = await conv2dDirect(x, w, options(c));
    assert.ok(y.data instanceof Float32Array && z.data instanceof Float32Array);
    for (let i = 0; i < ref.out.length; i++) {
      const tol = 1e-5 * Math.max(ref.absSum[i], 1e-30);
      assert.ok(Math.abs(y.data[i] - ref.out[i]) <= tol, `pcilt ${y.data[i]} vs ${ref.out[i]} at ${i}: ${describeCase(c)}`);
      assert.ok(Math.abs(z.data[i] - ref.out[i]) <= tol, `direct ${z.data[i]} vs ${ref.out[i]} at ${i}: ${describeCase(c)}`);
    }
  }
});

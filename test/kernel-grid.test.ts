import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPcilt, checkRequantize, conv2dDirect, convGeometry, pciltConv2d, type DirectJob, type PciltJob } from 'faster-cnn';
import { firstDiff, rng, type Case } from './helpers.js';

// Generated tests of the wasm integer kernel families (src/backends/wasm/assembly/), each run by
// name over one shape grid against its reference twin (the JS backend), as XNNPACK generates its
// kernel tests: every family x every grid shape x every output form (int32 sums, float32 with a
// float bias, u8 codes requantized in the stores) x 1 and 2 threads. (The float32 families run
// through the graph runtime's ops and are compared with the ops' reference kernels on generated
// cases in runtime.test.ts.)

const { wasmBackend } = await import(new URL('../../dist/backends/wasm/backend.js', import.meta.url).href);
const { getEngine } = await import(new URL('../../dist/backends/wasm/engine.js', import.meta.url).href);
const relaxed: boolean = (await getEngine()).features.relaxedSimd;

/** The grid: kernel size, stride, width (around the 16-pixel tile and the 4-pixel steps), channels in and out. */
function* grid(depthwise: boolean): Generator<Case> {
  for (const K of [1, 3, 5]) for (const s of [1, 2]) for (const W of [1, 4, 15, 17]) for (const [C, O] of depthwise ? [[1, 1], [9, 9], [16, 16]] : [[1, 1], [3, 8], [9, 13], [16, 24]]) {
    const pad = K >> 1;
    yield { N: 1 + (W % 2), C, H: 5, W, O, KH: K, KW: K, groups: depthwise ? C : 1, stride: [s, s], dilation: [1, 1], padding: [pad, pad, pad, pad] };
  }
}

type Family = { name: string; depthwise?: boolean; bits: number[]; run: (c: Case, x: Uint8Array, w: Int8Array, bits: number, extra: Extra, threads: number) => Promise<ArrayLike<number>> };
interface Extra { bias?: Int32Array | Float32Array; requantize?: { scale: number; zeroPoint: number; bits: number } }

const geometryOf = (c: Case) => convGeometry([c.N, c.C, c.H, c.W], [c.O, c.C / c.groups, c.KH, c.KW], { stride: c.stride, padding: c.padding, groups: c.groups });
/** A direct job for one named kernel of the wasm backend. */
function directJob(c: Case, x: Uint8Array, w: Int8Array, bits: number, extra: Extra, threads: number, kernel?: string): DirectJob {
  const geometry = geometryOf(c);
  const integer = !(extra.bias instanceof Float32Array);
  return { input: x, weight: w, geometry, bias: extra.bias, activationBits: bits, integer, threads, kernel, requant: checkRequantize(extra.requantize, geometry.O, integer) };
}
function pciltJob(c: Case, x: Uint8Array, w: Int8Array, bits: number, extra: Extra, threads: number, opts: { bitSerial: boolean; groupSize: number }): PciltJob {
  const geometry = geometryOf(c);
  const integer = !(extra.bias instanceof Float32Array);
  const tables = buildPcilt({ data: w, shape: [c.O, c.C / c.groups, c.KH, c.KW] }, { activationBits: bits, ...opts });
  return { input: x, tables, geometry, bias: extra.bias, integer, threads, requant: checkRequantize(extra.requantize, geometry.O, integer) };
}

const FAMILIES: Family[] = [
  { name: 'pcilt-bitserial-i16rows (bit-serial, 8 activations an index)', bits: [1, 2, 4, 8], run: (c, x, w, b, e, t) => wasmBackend.pcilt(pciltJob(c, x, w, b, e, t, { bitSerial: true, groupSize: 8 })) },
  { name: 'pcilt-bitserial-i16rows (grouped codes, 4-bit index)', bits: [1, 2, 4], run: (c, x, w, b, e, t) => wasmBackend.pcilt(pciltJob(c, x, w, b, e, t, { bitSerial: false, groupSize: Math.max(1, 4 / b) })) },
  { name: 'qconv-u8s8-i32dot-4x8', bits: [1, 4, 8], run: (c, x, w, b, e, t) => wasmBackend.direct(directJob(c, x, w, b, e, t, 'dot-i16')) },
  ...(relaxed ? [{ name: 'qconv-u8s8-i16relaxeddot-4x8', bits: [1, 4, 7], run: (c: Case, x: Uint8Array, w: Int8Array, b: number, e: Extra, t: number) => wasmBackend.direct(directJob(c, x, w, b, e, t, 'relaxed-dot-i8')) }] : []),
  { name: 'qdwconv-u8s8', depthwise: true, bits: [2, 8], run: (c, x, w, b, e, t) => wasmBackend.direct(directJob(c, x, w, b, e, t)) },
];

for (const f of FAMILIES) {
  test(`kernel family ${f.name}: every grid shape, output form and thread count equals the reference twin`, async () => {
    const r = rng(f.name.length * 7919);
    let cases = 0;
    for (const c of grid(!!f.depthwise)) {
      const bits = f.bits[cases % f.bits.length];
      const w = Int8Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.int(-127, 127));
      const x = Uint8Array.from({ length: c.N * c.C * c.H * c.W }, () => r.int(0, (1 << bits) - 1));
      const forms: Extra[] = [
        { bias: Int32Array.from({ length: c.O }, () => r.int(-300, 300)) },
        { bias: Float32Array.from({ length: c.O }, () => r.int(-300, 300) / 8) },
        { requantize: { scale: 1 / (64 + r.int(0, 512)), zeroPoint: r.int(0, 20), bits: 8 } },
      ];
      for (const extra of forms) {
        const ref = await conv2dDirect({ data: x, shape: [c.N, c.C, c.H, c.W] }, { data: w, shape: [c.O, c.C / c.groups, c.KH, c.KW] },
          { stride: c.stride, padding: c.padding, groups: c.groups, activationBits: bits, bias: extra.bias, requantize: extra.requantize, backend: 'js' });
        for (const threads of [1, 2]) {
          const y = await f.run(c, x, w, bits, extra, threads);
          const at = firstDiff(y, ref.data);
          assert.equal(at, -1, `${f.name} ${bits}-bit, ${extra.requantize ? 'u8 codes' : extra.bias instanceof Float32Array ? 'float bias' : 'int32'}, ${threads} thread(s), at ${at}: ${JSON.stringify(c)}`);
        }
      }
      cases++;
    }
    assert.ok(cases >= 72, `${cases} grid shapes`);
  });
}

test('the same PCILT job through pciltConv2d and through the kernel family by name agree (the grid calls the kernels as the API does)', async () => {
  const c: Case = { N: 1, C: 9, H: 5, W: 17, O: 13, KH: 3, KW: 3, groups: 1, stride: [1, 1], dilation: [1, 1], padding: [1, 1, 1, 1] };
  const r = rng(3);
  const w = Int8Array.from({ length: 13 * 9 * 9 }, () => r.int(-127, 127));
  const x = Uint8Array.from({ length: 9 * 5 * 17 }, () => r.int(0, 3));
  const direct = await wasmBackend.pcilt(pciltJob(c, x, w, 2, {}, 2, { bitSerial: true, groupSize: 8 }));
  const api = await pciltConv2d({ data: x, shape: [1, 9, 5, 17] }, buildPcilt({ data: w, shape: [13, 9, 3, 3] }, { activationBits: 2 }), { padding: 1, backend: 'wasm' });
  assert.equal(firstDiff(direct, api.data), -1);
});

test('kernel pack/quantize_weights: per-channel int8 weights equal their JS twin bit for bit, halves and zero channels included', async () => {
  const { quantizePerChannel, quantizePerChannelWasm } = await import(new URL('../../dist/kernels/wasm/int-conv.js', import.meta.url).href);
  const e = await getEngine();
  const r = rng(808);
  for (const [O, K, top] of [[1, 1, 127], [3, 7, 127], [16, 9, 127], [64, 288, 127], [5, 100, 7], [8, 33, 1]]) {
    const data = Float32Array.from({ length: O * K }, () => (r.next() - 0.5) * 2 ** r.int(-6, 6));
    // Exact halves of the scale: channel 0's largest weight is top * 2^-3, others on the half grid.
    for (let k = 0; k < K; k++) data[k] = (r.int(-2 * top, 2 * top) / 2) * 2 ** -3;
    data[0] = top * 2 ** -3;
    if (O > 2) data.fill(0, K, 2 * K); // an all-zero channel: scale 1
    const a = quantizePerChannel(data, O, top), b = quantizePerChannelWasm(e, data, O, top);
    assert.equal(firstDiff(b.q, a.q), -1, `q, O ${O} K ${K}`);
    assert.deepEqual([...b.scales], [...a.scales]);
    assert.deepEqual([...b.sums], [...a.sums]);
    assert.equal(b.maxAbsSum, a.maxAbsSum);
  }
});

test('kernel pcilt/pcilt_grouped_rows: channel-grouped table rows laid out from int8 weights equal their JS twin', async () => {
  const { layRows } = await import(new URL('../../dist/backends/wasm/backend.js', import.meta.url).href);
  const e = await getEngine();
  const r = rng(4242);
  const shapes: [number, number, number, number, number, number, number][] = [
    // O, Cg, KH, KW, groups, bits (bit-serial, or grouped codes when negative), weight magnitude
    [8, 8, 3, 3, 1, 1, 127], [13, 16, 1, 1, 1, 2, 127], [24, 4, 3, 3, 2, 1, 127], [5, 32, 3, 1, 1, 4, 127],
    [16, 8, 3, 3, 1, -2, 127], [6, 12, 1, 3, 3, -1, 100], [9, 8, 1, 1, 1, -4, 60], [128, 3136, 1, 1, 1, 1, 127],
  ];
  let grouped = 0;
  for (const [O, Cg, KH, KW, groups, bits, top] of shapes) {
    const w = { data: Int8Array.from({ length: O * Cg * KH * KW }, () => r.int(-top, top)), shape: [O, Cg, KH, KW] as [number, number, number, number] };
    const t = bits > 0 ? buildPcilt(w, { activationBits: bits, bitSerial: true, groupSize: 4 }) : buildPcilt(w, { activationBits: -bits, groupSize: Math.max(1, 4 / -bits) });
    const a = layRows(e, t, groups, 'js'), b = layRows(e, t, groups, 'wasm');
    try {
      const what = `O ${O} Cg ${Cg} ${KH}x${KW} groups ${groups} bits ${bits}`;
      assert.equal(b.grouped, a.grouped, what);
      grouped += Number(b.grouped);
      assert.deepEqual([b.chunk, b.bytes, b.OgPad, b.segBytes], [a.chunk, a.bytes, a.OgPad, a.segBytes], what);
      assert.equal(firstDiff(b.offset, a.offset), -1, what);
      assert.equal(firstDiff(new Int16Array(e.memory.buffer, b.ptr, b.bytes / 2), new Int16Array(e.memory.buffer, a.ptr, a.bytes / 2)), -1, what);
    } finally {
      e.heap.release(a.ptr);
      e.heap.release(b.ptr);
    }
  }
  assert.ok(grouped >= 6, `${grouped} layouts regrouped`);
});

test('kernel pack/layout_direct_weights: direct kernels\' weight layouts equal their JS twin bit for bit, with the same largest |w|', async () => {
  const { layWeights } = await import(new URL('../../dist/backends/wasm/backend.js', import.meta.url).href);
  const e = await getEngine();
  const r = rng(515);
  // O, Cg, KH, KW, groups, source type, taps (0: the depthwise form, taps = Kp), layout bytes
  const cases: [number, number, number, number, number, 8 | 16 | 32, number, 1 | 2][] = [
    [1, 1, 1, 1, 1, 8, 4, 1], [13, 9, 3, 3, 1, 8, 4, 1], [13, 9, 3, 3, 1, 8, 2, 2], [24, 5, 1, 3, 3, 16, 2, 2], [7, 1, 3, 3, 7, 8, 0, 2],
    [32, 1, 5, 5, 32, 16, 0, 2], [10, 128, 1, 1, 1, 32, 2, 2], [128, 3136, 1, 1, 1, 8, 4, 1], [6, 4, 3, 3, 2, 32, 4, 1], [9, 3, 7, 7, 1, 16, 2, 2],
  ];
  for (const [O, Cg, KH, KW, groups, type, taps0, bytes] of cases) {
    const top = bytes === 1 ? 127 : type === 8 ? 127 : 32767;
    const values = Array.from({ length: O * Cg * KH * KW }, () => r.int(-top, top));
    const weight = type === 8 ? Int8Array.from(values) : type === 16 ? Int16Array.from(values) : Int32Array.from(values);
    const g = convGeometry([1, Cg * groups, KH + 2, KW + 2], [O, Cg, KH, KW], { groups });
    const K = Cg * KH * KW, taps = taps0 || K + (K & 1), Kp = Math.ceil(K / taps) * taps, OgPad = taps0 ? Math.ceil(g.Og / 8) * 8 : 1;
    const what = `O ${O} Cg ${Cg} ${KH}x${KW} groups ${groups} int${type} taps ${taps} bytes ${bytes}`;
    const a = layWeights(e, weight, g, Kp, OgPad, taps, bytes, 'js'), b = layWeights(e, weight, g, Kp, OgPad, taps, bytes, 'wasm');
    try {
      assert.equal(b.maxAbs, a.maxAbs, what);
      const n = groups * Kp * OgPad * bytes;
      assert.equal(firstDiff(new Uint8Array(e.memory.buffer, b.ptr, n), new Uint8Array(e.memory.buffer, a.ptr, n)), -1, what);
    } finally {
      e.heap.release(a.ptr);
      e.heap.release(b.ptr);
    }
  }
});

test('kernel x32-hash-fnv4: the fingerprint of 32-bit words equals its JS twin at every length, tails included', async () => {
  const { fnv4Start, fnv4Words, fnv4WordsJs, fnv4End } = await import(new URL('../../dist/kernels/wasm/hash.js', import.meta.url).href);
  const e = await getEngine();
  const r = rng(97);
  for (const n of [0, 1, 3, 4, 7, 1023, 1024, 1025, 1026, 1027, 4099, 100_003]) {
    const words = Int32Array.from({ length: n }, () => r.int(-(2 ** 31), 2 ** 31 - 1));
    const a = fnv4Start(), b = fnv4Start();
    fnv4WordsJs(a, words);
    // Large arrays go through the wasm kernel: called here directly too, so that the test does not rest on the size rule.
    fnv4Words(b, words);
    assert.deepEqual([...b], [...a], `${n} words`);
    const c = fnv4Start(), src = e.heap.alloc(n * 4 + 4), state = e.heap.alloc(16);
    new Int32Array(e.memory.buffer, src, n).set(words);
    new Int32Array(e.memory.buffer, state, 4).set(c);
    e.kernels.hash_fnv4_x32(src, n, state);
    assert.deepEqual([...new Int32Array(e.memory.buffer, state, 4)], [...a], `${n} words, kernel`);
    e.heap.release(src);
    e.heap.release(state);
    if (n > 4) {
      // One bit changed anywhere changes the result.
      const d = fnv4Start();
      words[r.int(0, n - 1)] ^= 1 << r.int(0, 31);
      fnv4Words(d, words);
      assert.notEqual(fnv4End(d), fnv4End(a), `${n} words, one bit flipped`);
    }
  }
});

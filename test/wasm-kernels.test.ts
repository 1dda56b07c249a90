import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ArgumentError, BackendUnavailableError, KernelError, autoChoices, autoDecision, buildPcilt, checkRequantize, conv2dDirect, convGeometry, pciltConv2d, requantizeSums, type PciltOptions,
} from 'faster-cnn';
import { describeCase, firstDiff, options, randomCase, randomCodes, randomIntWeights, rng } from './helpers.js';

const tableVariants: ((bits: number, r: ReturnType<typeof rng>) => Omit<PciltOptions, 'activationBits'>)[] = [
  () => ({ groupSize: 1 }),
  () => ({ groupSize: 'auto' }),
  (_b, r) => ({ bitSerial: true, groupSize: r.int(1, 8) }),
  (bits, r) => ({ share: true, groupSize: r.int(1, Math.max(1, Math.floor(8 / bits))) }),
];

test('wasm PCILT equals the reference bit for bit: every bit width, table variant, 1 and 2 threads', async () => {
  const r = rng(4242);
  for (let bits = 1; bits <= 8; bits++) {
    for (const variant of tableVariants) {
      for (let rep = 0; rep < 3; rep++) {
        const c = randomCase(r, 300_000);
        const w = { data: randomIntWeights(r, c, r.int(2, 8)), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
        const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
        const bias = r.next() < 0.5 ? Int32Array.from({ length: c.O }, () => r.int(-500, 500)) : undefined;
        const t = buildPcilt(w, { activationBits: bits, ...variant(bits, r) });
        const ref = await pciltConv2d(x, t, { ...options(c), bias, backend: 'js' });
        for (const threads of [1, 2]) {
          const y = await pciltConv2d(x, t, { ...options(c), bias, backend: 'wasm', threads });
          const at = firstDiff(y.data, ref.data);
          assert.equal(at, -1, `bits=${bits} ${t.variant} g=${t.groupSize} threads=${threads} at ${at}: ${describeCase(c)}`);
        }
      }
    }
  }
});

test('wasm PCILT on wide layers (57-160 output channels per group: several channel blocks) equals the reference', async () => {
  const r = rng(5151);
  for (let rep = 0; rep < 12; rep++) {
    const groups = r.int(1, 2), Og = r.int(57, 160), Cg = r.int(1, 6), bits = r.int(1, 4);
    const c = { N: r.int(1, 2), C: Cg * groups, H: r.int(3, 20), W: r.int(3, 37), O: Og * groups, KH: 3, KW: 3, groups, stride: [1, r.int(1, 2)] as [number, number], dilation: [1, 1] as [number, number], padding: [1, 1, 1, 1] as [number, number, number, number] };
    const w = { data: randomIntWeights(r, c, 8), shape: [c.O, Cg, 3, 3] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const t = buildPcilt(w, { activationBits: bits, bitSerial: r.next() < 0.5 });
    const ref = await pciltConv2d(x, t, { ...options(c), backend: 'js' });
    for (const threads of [1, 2]) {
      const y = await pciltConv2d(x, t, { ...options(c), backend: 'wasm', threads });
      const at = firstDiff(y.data, ref.data);
      assert.equal(at, -1, `Og=${Og} bits=${bits} threads=${threads} at ${at}: ${describeCase(c)}`);
    }
  }
});

test('wasm PCILT stays exact where its centred int16 sums need several flushes (extreme weights, long reductions)', async () => {
  // The rows hold each segment's entries less their midpoint (added back through the bias); with
  // weights at the int8 extremes and 128 channels x 3 x 3, a plane's sums need 2-3 flushes to int32.
  const r = rng(7373);
  const kinds = [{ bits: 1, bitSerial: false, G: 8 }, { bits: 2, bitSerial: true, G: 8 }, { bits: 3, bitSerial: false, G: 2 }, { bits: 4, bitSerial: true, groupSize: 5 }];
  for (const [i, k] of kinds.entries()) {
    const c = { N: 1, C: 128, H: r.int(3, 9), W: r.int(3, 21), O: r.int(3, 19), KH: 3, KW: 3, groups: 1, stride: [1, 1] as [number, number], dilation: [1, 1] as [number, number], padding: [1, 1, 1, 1] as [number, number, number, number] };
    // All one sign in half the cases (the entries' range then lies on one side of 0), mixed in the others.
    const w = { data: Int8Array.from({ length: c.O * c.C * 9 }, () => (i % 2 ? r.pick([-128, -127]) : r.pick([-128, 127, -127, 126]))), shape: [c.O, c.C, 3, 3] };
    const x = { data: randomCodes(r, c, k.bits), shape: [c.N, c.C, c.H, c.W] };
    const bias = i < 2 ? Int32Array.from({ length: c.O }, () => r.int(-1000, 1000)) : undefined;
    const t = buildPcilt(w, { activationBits: k.bits, bitSerial: k.bitSerial, groupSize: k.G ?? k.groupSize });
    const ref = await pciltConv2d(x, t, { ...options(c), bias, backend: 'js' });
    for (const threads of [1, 2]) {
      const y = await pciltConv2d(x, t, { ...options(c), bias, backend: 'wasm', threads });
      const at = firstDiff(y.data, ref.data);
      assert.equal(at, -1, `${JSON.stringify(k)} threads=${threads} at ${at}: ${describeCase(c)}`);
    }
  }
});

test('channel-grouped PCILT layouts (channels per group a multiple of the index group) equal the reference', async () => {
  // The wasm backend regroups such tables to pack one tap of G channels per index (pre-packed input).
  const r = rng(6262);
  const kinds = [
    { bits: 1, bitSerial: false, G: 8 }, { bits: 2, bitSerial: false, G: 4 }, { bits: 4, bitSerial: false, G: 2 },
    { bits: 3, bitSerial: true, G: 8 }, { bits: 5, bitSerial: true, G: 4 }, { bits: 8, bitSerial: true, G: 2 },
  ];
  for (let rep = 0; rep < 24; rep++) {
    const { bits, bitSerial, G } = kinds[rep % kinds.length];
    // Every sixth case is large enough that the input is packed on both threads.
    const big = rep % 6 === 5;
    const groups = r.int(1, 2), Cg = G * (big ? 16 / G : r.int(1, 3)), Og = r.int(1, 20);
    const c = {
      N: r.int(1, 2), C: Cg * groups, H: big ? 120 : r.int(1, 30), W: big ? 130 : r.int(1, 40), O: Og * groups,
      KH: r.pick([1, 3, 5]), KW: r.pick([1, 2, 3]), groups,
      stride: [r.int(1, 2), r.int(1, 3)] as [number, number], dilation: [r.int(1, 2), r.int(1, 2)] as [number, number],
      padding: [r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2)] as [number, number, number, number],
    };
    if (c.H + c.padding[0] + c.padding[2] < c.dilation[0] * (c.KH - 1) + 1 || c.W + c.padding[1] + c.padding[3] < c.dilation[1] * (c.KW - 1) + 1) continue;
    const w = { data: randomIntWeights(r, c, r.int(2, 8)), shape: [c.O, Cg, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const t = buildPcilt(w, { activationBits: bits, bitSerial, groupSize: G });
    assert.equal(t.groupSize, G);
    const ref = await pciltConv2d(x, t, { ...options(c), backend: 'js' });
    for (const threads of [1, 2]) {
      const y = await pciltConv2d(x, t, { ...options(c), backend: 'wasm', threads });
      const at = firstDiff(y.data, ref.data);
      assert.equal(at, -1, `bits=${bits} bitSerial=${bitSerial} G=${G} threads=${threads} at ${at}: ${describeCase(c)}`);
    }
  }
});

test('wasm direct equals the reference: int8 and int16 weights, bias, 1 and 2 threads', async () => {
  const r = rng(777);
  for (let rep = 0; rep < 40; rep++) {
    const c = randomCase(r, 300_000);
    const bits = r.int(1, 8);
    const n = c.O * (c.C / c.groups) * c.KH * c.KW;
    const data = rep % 2 ? randomIntWeights(r, c, 8) : Int16Array.from({ length: n }, () => r.int(-30000, 30000));
    const w = { data, shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const bias = rep % 3 ? Int32Array.from({ length: c.O }, () => r.int(-500, 500)) : undefined;
    const ref = await conv2dDirect(x, w, { ...options(c), bias, backend: 'js' });
    for (const threads of [1, 2]) {
      const z = await conv2dDirect(x, w, { ...options(c), bias, backend: 'wasm', threads });
      assert.equal(firstDiff(z.data, ref.data), -1, `threads=${threads} ${describeCase(c)}`);
    }
    // The kernel keeps its layout of the weights between calls: a change in place must show.
    data[r.int(0, n - 1)] += data[0] > 0 ? -1 : 1;
    const ref2 = await conv2dDirect(x, w, { ...options(c), bias, backend: 'js' });
    const z2 = await conv2dDirect(x, w, { ...options(c), bias, backend: 'wasm' });
    assert.equal(firstDiff(z2.data, ref2.data), -1, `after an in-place change ${describeCase(c)}`);
  }
});

test('both direct kernels equal the reference on int8 weights and codes below 128 (where relaxed SIMD runs)', async (t) => {
  const { getEngine } = await import(new URL('../../dist/backends/wasm/engine.js', import.meta.url).href);
  const { wasmBackend } = await import(new URL('../../dist/backends/wasm/backend.js', import.meta.url).href);
  const { convGeometry } = await import('faster-cnn');
  if (!(await getEngine()).features.relaxedSimd) return t.skip('relaxed SIMD is not available here');
  const r = rng(31);
  for (let rep = 0; rep < 20; rep++) {
    const c = randomCase(r, 300_000);
    const bits = r.int(1, 7);
    const w = { data: randomIntWeights(r, c, 8), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const ref = await conv2dDirect(x, w, { ...options(c), backend: 'js' });
    const geometry = convGeometry(x.shape as never, w.shape as never, options(c));
    const job = { input: x.data, weight: w.data, geometry, activationBits: bits, integer: true, threads: r.int(1, 2) };
    assert.deepEqual(wasmBackend.directKernels(job), ['relaxed-dot-i8', 'dot-i16']);
    for (const kernel of ['relaxed-dot-i8', 'dot-i16']) {
      const y = await wasmBackend.direct({ ...job, kernel });
      assert.equal(firstDiff(y, ref.data), -1, `${kernel} ${describeCase(c)}`);
    }
    // Each kernel keeps its own layout of the same weights: a change in place shows in both, in either order.
    w.data[r.int(0, w.data.length - 1)] += w.data[0] > 0 ? -1 : 1;
    const ref2 = await conv2dDirect(x, w, { ...options(c), backend: 'js' });
    for (const kernel of rep % 2 ? ['dot-i16', 'relaxed-dot-i8', 'dot-i16'] : ['relaxed-dot-i8', 'dot-i16', 'relaxed-dot-i8']) {
      const y = await wasmBackend.direct({ ...job, kernel });
      assert.equal(firstDiff(y, ref2.data), -1, `${kernel} after an in-place change ${describeCase(c)}`);
    }
  }
});

test('the relaxed-SIMD direct kernel stays exact at the int16 bound (extreme weights and codes)', async (t) => {
  const { getEngine } = await import(new URL('../../dist/backends/wasm/engine.js', import.meta.url).href);
  const { wasmBackend } = await import(new URL('../../dist/backends/wasm/backend.js', import.meta.url).href);
  const { convGeometry } = await import('faster-cnn');
  if (!(await getEngine()).features.relaxedSimd) return t.skip('relaxed SIMD is not available here');
  // K = 41 * 9 = 369 taps (93 steps of 4, a partial last one): every int16 chunk is filled up to its
  // bound, so a chunk one step too long overflows and shows here.
  for (const bits of [1, 4, 7]) {
    for (const wv of [-128, 127]) {
      const w = { data: new Int8Array(9 * 41 * 9).fill(wv), shape: [9, 41, 3, 3] };
      const x = { data: new Uint8Array(41 * 6 * 9).fill(2 ** bits - 1), shape: [1, 41, 6, 9] };
      const opts = { padding: [1, 1, 1, 1] as [number, number, number, number] };
      const ref = await conv2dDirect(x, w, { ...opts, backend: 'js' });
      const geometry = convGeometry(x.shape as never, w.shape as never, opts);
      const job = { input: x.data, weight: w.data, geometry, activationBits: bits, integer: true, threads: 1, kernel: 'relaxed-dot-i8' };
      const y = await wasmBackend.direct(job);
      assert.equal(firstDiff(y, ref.data), -1, `bits ${bits}, weights ${wv}`);
    }
  }
});

test('requantized outputs (uint8 codes) of every wasm kernel equal the reference requantization', async () => {
  const r = rng(9090);
  for (let rep = 0; rep < 30; rep++) {
    const c = randomCase(r, 300_000);
    const bits = r.int(1, 8);
    const w = { data: randomIntWeights(r, c, r.int(2, 8)), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
    const bias = r.next() < 0.5 ? Int32Array.from({ length: c.O }, () => r.int(-500, 500)) : undefined;
    // Scales that spread the sums over the code range and past both ends; some halves exact (0.5).
    const outBits = r.int(1, 8), top = 2 ** outBits - 1;
    const wide = (c.C / c.groups) * c.KH * c.KW * (2 ** bits - 1) * 8;
    const scale = r.next() < 0.3 ? 0.5 : Float32Array.from({ length: c.O }, () => (top / wide) * (0.2 + 4 * r.next()));
    const requantize = { scale, zeroPoint: r.int(0, top), bits: outBits };
    const sums = await conv2dDirect(x, w, { ...options(c), bias, activationBits: bits, backend: 'js' });
    const geometry = convGeometry(x.shape as never, w.shape as never, options(c));
    const want = requantizeSums(sums.data, geometry, checkRequantize(requantize, c.O, true)!);
    const t = buildPcilt(w, { activationBits: bits, bitSerial: bits > 2 });
    for (const threads of [1, 2]) {
      const tag = `threads=${threads} bits=${bits} ${JSON.stringify(requantize.scale === 0.5 ? requantize : { ...requantize, scale: 'per channel' })} ${describeCase(c)}`;
      const y = await pciltConv2d(x, t, { ...options(c), bias, requantize, backend: 'wasm', threads });
      assert.ok(y.data instanceof Uint8Array);
      assert.equal(firstDiff(y.data, want), -1, `pcilt ${tag}`);
      const z = await conv2dDirect(x, w, { ...options(c), bias, requantize, activationBits: bits, backend: 'wasm', threads, out: new Uint8Array(want.length) });
      assert.equal(firstDiff(z.data, want), -1, `direct ${tag}`);
    }
    const js = await pciltConv2d(x, t, { ...options(c), bias, requantize, backend: 'js' });
    assert.equal(firstDiff(js.data, want), -1, `js ${describeCase(c)}`);
  }
});

test('first calls in fresh processes are exact too', () => {
  const script = fileURLToPath(new URL('./wasm-first-call.js', import.meta.url));
  for (let seed = 1; seed <= 6; seed++) {
    const out = JSON.parse(execFileSync(process.execPath, [script, String(seed)], { encoding: 'utf8' }));
    assert.equal(out.pcilt, -1, `pcilt first call differs: ${JSON.stringify(out)}`);
    assert.equal(out.direct, -1, `direct first call differs: ${JSON.stringify(out)}`);
    assert.equal(out.relaxed, -1, `relaxed direct first call differs: ${JSON.stringify(out)}`);
    assert.equal(out.pciltCodes, -1, `requantized pcilt call differs: ${JSON.stringify(out)}`);
    assert.equal(out.directCodes, -1, `requantized direct call differs: ${JSON.stringify(out)}`);
  }
});

test("'auto' measures its candidates once per kind of job and stays exact", async () => {
  const r = rng(5);
  const w = { data: Int8Array.from({ length: 32 * 16 * 9 }, () => r.int(-127, 127)), shape: [32, 16, 3, 3] };
  const x = { data: Uint8Array.from({ length: 2 * 16 * 20 * 20 }, () => r.int(0, 3)), shape: [2, 16, 20, 20] };
  const t = buildPcilt(w, { activationBits: 2 });
  const ref = await pciltConv2d(x, t, { padding: 1, backend: 'js' });
  for (let i = 0; i < 3; i++) {
    const y = await pciltConv2d(x, t, { padding: 1 });
    assert.equal(firstDiff(y.data, ref.data), -1);
  }
  const mine = autoChoices().filter((c) => c.key.startsWith('pcilt|2,16,20,20,32'));
  assert.equal(mine.length, 1);
  const measured = Object.keys(mine[0].ms).sort();
  assert.ok(measured.includes('wasm-direct') && measured.includes('wasm-pcilt'), measured.join());
  // The winner has the lowest median, or ties with it (then it is the first tied candidate listed).
  const lowest = Object.keys(mine[0].ms).reduce((a, b) => (mine[0].ms[b] < mine[0].ms[a] ? b : a));
  assert.ok(mine[0].winner === lowest || mine[0].tiedWith.includes(lowest), JSON.stringify(mine[0]));
  assert.ok(mine[0].rounds >= 3);
});

test('float tables: wasm says why it is unavailable, auto falls back to the reference', async () => {
  const w = { data: Float32Array.from({ length: 4 * 2 * 9 }, (_, i) => i / 10 - 3), shape: [4, 2, 3, 3] };
  const x = { data: new Uint8Array(2 * 6 * 6).fill(1), shape: [1, 2, 6, 6] };
  const t = buildPcilt(w, { activationBits: 1 });
  await assert.rejects(() => pciltConv2d(x, t, { backend: 'wasm' }), (e: unknown) => {
    assert.ok(e instanceof BackendUnavailableError);
    assert.match(e.message, /backend 'wasm' is unavailable: the tables hold float entries/);
    return true;
  });
  const y = await pciltConv2d(x, t);
  assert.ok(y.data instanceof Float32Array);
});

test('a worker that throws or dies rejects the call clearly, and the next call works', async () => {
  const { getEngine } = await import(new URL('../../dist/backends/wasm/engine.js', import.meta.url).href);
  const engine = await getEngine();
  const w = { data: Int8Array.from({ length: 64 * 32 * 9 }, (_, i) => (i % 15) - 7), shape: [64, 32, 3, 3] };
  const x = { data: new Uint8Array(2 * 32 * 64 * 64).fill(1), shape: [2, 32, 64, 64] };
  const t = buildPcilt(w, { activationBits: 1 });
  const good = await pciltConv2d(x, t, { padding: 1, backend: 'wasm', threads: 2 });
  const size = engine.pool.size;

  // A kernel that traps (its parameters point past the memory), on whichever thread takes it. The calling
  // thread holds its first task until the worker has taken the other, so that the worker gets one.
  const { QUEUE } = await import(new URL('../../dist/backends/wasm/pool.js', import.meta.url).href);
  const table = () => new Int32Array((engine.pool as unknown as { queue: SharedArrayBuffer }).queue);
  const bothTaken = () => {
    const t0 = performance.now();
    while ((Atomics.load(table(), QUEUE.RUN) & 255) < 2 && performance.now() - t0 < 2000);
  };
  const kernels = engine.kernels as Record<string, (...a: number[]) => void>;
  const trap = [{ fn: 'pcilt_rows', args: [0x7ffffff0, 0, 1, 0] }, { fn: 'pcilt_rows', args: [0x7ffffff0, 0, 1, 0] }];
  await assert.rejects(() => engine.pool.run(trap, (t: { fn: string; args: number[] }) => {
    bothTaken();
    kernels[t.fn](...t.args);
  }), (e: unknown) => e instanceof KernelError && /wasm kernel failed (in worker \d+: RuntimeError: |on the calling thread: )memory access out of bounds/.test(e.message));
  // Only the worker's task traps: the call names the worker.
  await assert.rejects(() => engine.pool.run(trap, bothTaken), (e: unknown) => e instanceof KernelError && /wasm kernel failed in worker \d+: RuntimeError/.test(e.message));

  // A worker that dies in the middle of its task: the call fails naming it once the tasks still running are done.
  const M = 256, K = 1024, N = 1024;
  const a = engine.heap.alloc(M * K * 4), b = engine.heap.alloc(K * N * 4), c = engine.heap.alloc(M * N * 4);
  const gemm = [0, 1].map((h) => ({ fn: 'sgemm', args: [a, b, c, M, N, K, 0, h * 128, (h + 1) * 128] }));
  await assert.rejects(() => engine.pool.run(gemm, (t: { fn: string; args: number[] }) => {
    bothTaken();
    engine.pool.killWorker(0);
    for (let r = 0; r < 20; r++) kernels[t.fn](...t.args);
  }), (e: unknown) => e instanceof KernelError && /wasm worker \d+ exited/.test(e.message));
  // One that dies before it takes anything leaves its share to the calling thread: the call succeeds.
  engine.pool.killWorker(0);
  await new Promise((r) => setTimeout(r, 100));
  await engine.pool.run(gemm, (t: { fn: string; args: number[] }) => kernels[t.fn](...t.args));
  for (const p of [a, b, c]) engine.heap.release(p);

  const again = await pciltConv2d(x, t, { padding: 1, backend: 'wasm', threads: 2 });
  assert.equal(firstDiff(again.data, good.data), -1);
  assert.equal(engine.pool.size, size, 'the dead workers were replaced');
});

test('concurrent calls (PCILT, direct, whole graph layers) give the same results as one at a time', async () => {
  const { Model, lowerLegacy } = await import('faster-cnn');
  const r = rng(41);
  const jobs = Array.from({ length: 6 }, () => {
    const c = randomCase(r, 60_000);
    const x = { data: Uint8Array.from({ length: c.N * c.C * c.H * c.W }, () => r.int(0, 3)), shape: [c.N, c.C, c.H, c.W] };
    const w = { data: Int8Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.int(-127, 127)), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
    const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, threads: 2 };
    return { x, w, opts, t: buildPcilt(w, { activationBits: 2 }) };
  });
  const graph = (j: typeof jobs[number]) => new Model(null, {}, lowerLegacy({
    input: { name: 'x', shape: j.x.shape, layout: 'nchw' }, output: 'y',
    nodes: [{ op: 'conv', name: 'c', inputs: ['x', 'w'], output: 'y', attrs: { stride: j.opts.stride, dilation: j.opts.dilation, pad: j.opts.padding, group: j.opts.groups, act: 'relu' } }],
    consts: new Map([['w', { shape: j.w.shape, data: Float32Array.from(j.w.data, (v) => v / 127) }]]),
  }));
  const fx = (j: typeof jobs[number]) => ({ data: Float32Array.from(j.x.data, (v) => v - 1.5), shape: j.x.shape });
  const one: { data: ArrayLike<number> }[][] = [];
  for (const j of jobs) {
    one.push([
      await pciltConv2d(j.x, j.t, { ...j.opts, backend: 'wasm' }),
      await conv2dDirect(j.x, j.w, { ...j.opts, activationBits: 2, backend: 'wasm' }),
      await graph(j).predict(fx(j), { activationBits: 4, threads: 2 }),
    ]);
  }
  const all = await Promise.all(jobs.map((j) => Promise.all([
    pciltConv2d(j.x, j.t, { ...j.opts, backend: 'wasm' }),
    conv2dDirect(j.x, j.w, { ...j.opts, activationBits: 2, backend: 'wasm' }),
    graph(j).predict(fx(j), { activationBits: 4, threads: 2 }),
  ])));
  all.forEach((outs, i) => outs.forEach((o, k) => assert.deepEqual(o.data, one[i][k].data, `job ${i} output ${k}`)));
});

test("'auto' decides by medians, and on a tie within the noise keeps the candidate listed first", () => {
  // Separated: b's fastest run is slower than a's median.
  const sep = autoDecision({ a: [10, 11, 10.5, 12], b: [11.2, 11.5, 11.4, 20] });
  assert.deepEqual([sep.winner, sep.tiedWith, sep.separated], ['a', [], true]);
  assert.equal(sep.ms.a, 10.75);
  // Later in the list and faster, clearly: it wins.
  assert.equal(autoDecision({ pcilt: [30, 31, 29], direct: [20, 21, 22] }).winner, 'direct');
  // Overlapping runs: calibration is not separated yet; a 14% lower median still wins.
  const mixed = autoDecision({ pcilt: [20.5, 25, 24], direct: [20.9, 21, 22] });
  assert.deepEqual([mixed.winner, mixed.separated], ['direct', false]);
  // Medians within 5%: a tie, which the first listed wins.
  const tie = autoDecision({ pcilt: [21.5, 21.8, 21.2], direct: [20.9, 21, 22] });
  assert.deepEqual([tie.winner, tie.tiedWith], ['pcilt', ['direct']]);
});

test('wasm checks every code of rows narrower than a vector, and nothing past them', async () => {
  const w = { data: Int8Array.from({ length: 4 * 3 * 9 }, (_, i) => (i % 7) - 3), shape: [4, 3, 3, 3] };
  // Dirty the heap with 8-bit codes first: bytes past a later, smaller input must not count.
  const big = { data: new Uint8Array(2 * 3 * 40 * 40).fill(255), shape: [2, 3, 40, 40] };
  await conv2dDirect(big, w, { padding: 1, backend: 'wasm' });
  for (const W of [1, 5, 14, 15, 17, 31]) {
    const x = { data: Uint8Array.from({ length: 3 * 6 * W }, (_, i) => i % 2), shape: [1, 3, 6, W] };
    const ref = await conv2dDirect(x, w, { padding: 1, activationBits: 1, backend: 'js' });
    const y = await pciltConv2d(x, buildPcilt(w, { activationBits: 1 }), { padding: 1, backend: 'wasm' });
    assert.equal(firstDiff(y.data, ref.data), -1, `W ${W}`);
    // A bad code as the last of a row, and as the very last byte.
    for (const at of [W - 1, x.data.length - 1]) {
      const bad = { data: x.data.slice(), shape: x.shape };
      bad.data[at] = 2;
      await assert.rejects(() => pciltConv2d(bad, buildPcilt(w, { activationBits: 1 }), { padding: 1, backend: 'wasm' }),
        (e: unknown) => e instanceof ArgumentError && e.message.includes(`input.data[${at}]`), `W ${W} at ${at}`);
    }
  }
});

test("'auto' measures a job kind again when the thread count changes, and keeps each choice apart", async () => {
  const r = rng(91);
  const w = { data: Int8Array.from({ length: 24 * 12 * 9 }, () => r.int(-127, 127)), shape: [24, 12, 3, 3] };
  const x = { data: Uint8Array.from({ length: 12 * 23 * 23 }, () => r.int(0, 1)), shape: [1, 12, 23, 23] };
  const t = buildPcilt(w, { activationBits: 1 });
  const ref = await pciltConv2d(x, t, { padding: 1, backend: 'js' });
  for (const threads of [1, 2, undefined]) {
    const y = await pciltConv2d(x, t, { padding: 1, threads });
    assert.equal(firstDiff(y.data, ref.data), -1, `threads ${threads}`);
  }
  const mine = autoChoices().filter((c) => c.key.startsWith('pcilt|1,12,23,23,24'));
  assert.deepEqual(mine.map((c) => c.key.slice(c.key.lastIndexOf('|') + 1)).sort(), ['t1', 't2', 'tdefault']);
  // Left open on a small layer, the calling thread alone is a candidate too.
  assert.ok(Object.keys(mine.find((c) => c.key.endsWith('tdefault'))!.ms).some((l) => l.endsWith('-1t')));
  for (const c of mine) assert.ok(c.rounds >= 3, `${c.key}: ${c.rounds} rounds`);
});

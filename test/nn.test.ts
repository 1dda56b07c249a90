import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AvgPool2d, BatchNorm2d, Dropout, PCILTConv2d, PCILTLinear, Residual, Sequential,
  Conv2d, DataFormatError, FasterCnnError, Flatten, Linear, LogSoftmax, MaxPool2d, Model, ModelFormatError, QuantReLU, ReLU,
  decodeFcnn, encodeFcnn, loadMnist, loadModel, mnistNet, readIdx, train, type Layer, type Tensor,
} from 'faster-cnn';
import { rng } from './helpers.js';


/** Checks backward against central differences of L = sum(r * forward(x)) for x and every parameter. */
async function gradCheck(layer: Layer, shape: number[], seed: number, opts: { eps?: number; avoidKinks?: (v: number) => boolean; training?: boolean } = {}) {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const x: Tensor = { data: Float32Array.from({ length: n }, () => r.next() * 2 - 1), shape };
  if (opts.avoidKinks) for (let i = 0; i < n; i++) while (opts.avoidKinks(x.data[i])) x.data[i] = r.next() * 2 - 1;
  const y0 = await layer.forward(x, true);
  const w = Float32Array.from({ length: y0.data.length }, () => r.next() - 0.5);
  for (const p of layer.params()) p.grad.fill(0);
  const dx = await layer.backward({ data: w, shape: y0.shape });
  const loss = async () => {
    const y = await layer.forward(x, opts.training ?? false);
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += w[i] * y.data[i];
    return s;
  };
  const eps = opts.eps ?? 1e-2;
  const check = async (values: Float32Array, grads: Float32Array, what: string) => {
    for (let t = 0; t < Math.min(12, values.length); t++) {
      const i = r.int(0, values.length - 1);
      const keep = values[i];
      values[i] = keep + eps;
      const up = await loss();
      values[i] = keep - eps;
      const down = await loss();
      values[i] = keep;
      const num = (up - down) / (2 * eps);
      assert.ok(Math.abs(num - grads[i]) <= 2e-2 * Math.max(1, Math.abs(num)), `${layer.type} d${what}[${i}]: numeric ${num}, backward ${grads[i]}`);
    }
  };
  await check(x.data, dx.data, 'x');
  for (const p of layer.params()) await check(p.value, p.grad, p.name);
}

test('every layer backward pass matches finite differences', async () => {
  await gradCheck(new Conv2d(3, 4, 3, 1, 1), [2, 3, 5, 6], 1);
  await gradCheck(new Conv2d(2, 3, 3, 2, 0), [1, 2, 7, 7], 2);
  await gradCheck(new Linear(7, 5), [3, 7], 3);
  await gradCheck(new ReLU(), [4, 6], 4, { avoidKinks: (v) => Math.abs(v) < 0.05 });
  await gradCheck(new QuantReLU(undefined, 0.6), [4, 6], 5, { avoidKinks: (v) => Math.abs(v) < 0.05 || Math.abs(v - 0.6) < 0.05 });
  await gradCheck(new MaxPool2d(2), [2, 2, 4, 6], 6, { eps: 1e-3 });
  await gradCheck(new Flatten(), [2, 3, 2, 2], 7);
  await gradCheck(new LogSoftmax(), [3, 5], 8);
  await gradCheck(new AvgPool2d(2), [2, 3, 4, 6], 9);
  await gradCheck(new BatchNorm2d(3), [4, 3, 2, 3], 10, { training: true });
  await gradCheck(new Residual([new Linear(5, 5), new ReLU()]), [3, 5], 11);
});

test('quantized layers pass gradients straight through their weight quantizer', async () => {
  const r = rng(12);
  const q = new PCILTConv2d(2, 3, 3, 1, 1, 4);
  const f = new Conv2d(2, 3, 3, 1, 1);
  f.weight.value.set(q.effectiveWeight());
  f.bias.value.set(q.bias.value);
  const x = { data: Float32Array.from({ length: 2 * 2 * 5 * 5 }, () => r.next() - 0.5), shape: [2, 2, 5, 5] };
  const yq = await q.forward(x, true), yf = await f.forward(x, true);
  assert.deepEqual(yq.data, yf.data);
  const dy = { data: Float32Array.from(yq.data, () => r.next() - 0.5), shape: yq.shape };
  assert.deepEqual((await q.backward(dy)).data, (await f.backward(dy)).data);
  assert.deepEqual(q.weight.grad, f.weight.grad);
  // The quantized weights take at most 2^(4-1)-1 = 7 steps each way per channel.
  const levels = new Set(q.effectiveWeight().slice(0, 18).map((v) => Math.round(v / (Math.max(...q.effectiveWeight().slice(0, 18).map(Math.abs)) / 7))));
  assert.ok(levels.size <= 15);
});

test('dropout drops a share p in training, scales the rest, and is the identity at inference', async () => {
  const d = new Dropout(0.25, 7);
  const x = { data: new Float32Array(20000).fill(1), shape: [20000] };
  const y = await d.forward(x, true);
  const zeros = y.data.filter((v) => v === 0).length;
  assert.ok(Math.abs(zeros / 20000 - 0.25) < 0.02, `${zeros}`);
  assert.ok(y.data.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
  const g = await d.backward({ data: new Float32Array(20000).fill(1), shape: [20000] });
  assert.deepEqual(g.data, y.data);
  assert.equal(await d.forward(x, false), x);
});

test('integer inference folds BatchNorm, keeps residual and average-pool blocks, and files keep them', async () => {
  const r = rng(44);
  const net = new Sequential([
    new PCILTConv2d(1, 4, 3, 1, 1, 8), new BatchNorm2d(4), new QuantReLU(4, 2),
    new Residual([new PCILTConv2d(4, 4, 3, 1, 1, 8), new QuantReLU(4, 2)]),
    new QuantReLU(4, 3), new AvgPool2d(2), new QuantReLU(4, 2), new Dropout(0.5), new Flatten(), new PCILTLinear(4 * 4 * 4, 10, 8), new LogSoftmax(),
  ]);
  // Some batch statistics, then inference mode.
  for (let i = 0; i < 3; i++) await net.forward({ data: Float32Array.from({ length: 8 * 64 }, () => r.next()), shape: [8, 1, 8, 8] }, true);
  const x = { data: Float32Array.from({ length: 6 * 64 }, () => Math.round(r.next() * 255) / 255), shape: [6, 1, 8, 8] };
  const float = await net.forward(x, false);
  const int = await new Model(net).predict(x, { kernel: 'pcilt' });
  const direct = await new Model(net).predict(x, { kernel: 'direct' });
  assert.deepEqual(int.data, direct.data);
  // The integer path rounds where the float one does not: close, not equal.
  let maxDiff = 0;
  for (let i = 0; i < float.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(float.data[i] - int.data[i]));
  assert.ok(maxDiff < 0.5, `${maxDiff}`);
  const back = decodeFcnn(encodeFcnn(net)).model;
  assert.deepEqual((await new Model(back).predict(x, { kernel: 'pcilt' })).data, int.data);
  assert.equal(back.layers[3].type, 'Residual');
  // Run in float (activationBits 0), the graph computes the network's own forward pass (its fake
  // quantization). Without the average pool, whose means of codes fall on rounding ties that float32
  // and float64 break differently, they agree everywhere.
  const plain = new Sequential([...net.layers.slice(0, 5), new MaxPool2d(2), new Flatten(), net.layers[9], new LogSoftmax()]);
  const [fake, want] = [await new Model(plain).predict(x, { activationBits: 0 }), await plain.forward(x, false)];
  for (let i = 0; i < want.data.length; i++) assert.ok(Math.abs(fake.data[i] - want.data[i]) < 1e-4, `float graph [${i}]: ${fake.data[i]} vs ${want.data[i]}`);
  // The graph integer inference runs drops QuantizeLinear/DequantizeLinear where only layers on codes read
  // them (they quantize to the same codes): outputs equal to the graph with the pairs written out.
  for (const bits of [1, 2, 4]) {
    const mnist = new Model(mnistNet({ activationBits: bits, seed: bits }));
    const img = { data: Float32Array.from({ length: 3 * 784 }, () => r.next()), shape: [3, 1, 28, 28] };
    const [integer, written] = [await mnist.lower('integer'), await mnist.lower('float')];
    const count = (g: typeof integer.graph) => g.nodes.filter((n) => n.op === 'QuantizeLinear').length;
    assert.equal(count(integer.graph), 0);
    assert.equal(count(written.graph), 3);
    for (const kernel of ['pcilt', 'direct'] as const) {
      const want = await written.session.run({ pixels: { dtype: 'float32', ...img } }, { quant: { layers: written.layers, kernel } });
      assert.deepEqual((await mnist.predict(img, { kernel })).data, want.log_probabilities.data, `${bits}-bit ${kernel}`);
    }
  }
  // A layer on codes after a plain ReLU has no codes to read.
  const noCodes = new Sequential([new QuantReLU(2), new PCILTConv2d(1, 1, 1, 1, 0, 8), new ReLU(), new PCILTConv2d(1, 1, 1, 1, 0, 8)]);
  await assert.rejects(new Model(noCodes).predict({ data: new Float32Array(4), shape: [1, 1, 2, 2] }), /the input of 3\.PCILTConv2d must be activation codes/);
});

test('quantized ReLU: codes, scale, and the straight-through clip gradient', async () => {
  const q = new QuantReLU(2, 3);
  assert.equal(q.scale, 1);
  assert.deepEqual([...q.codes(Float32Array.from([-1, 0.4, 0.6, 2.2, 9]))], [0, 0, 1, 2, 3]);
  const y = await q.forward({ data: Float32Array.from([-1, 0.6, 5]), shape: [3] }, true);
  assert.deepEqual([...y.data], [0, 1, 3]);
  const dx = await q.backward({ data: Float32Array.from([1, 1, 1]), shape: [3] });
  assert.deepEqual([...dx.data], [0, 1, 0]);
  assert.ok(q.alpha.grad[0] > 0.9, 'inputs above the clip push it up');
});

test('MNIST IDX files are validated', () => {
  const test10k = loadMnist('test');
  assert.equal(test10k.count, 10000);
  assert.equal(test10k.rows, 28);
  assert.throws(() => readIdx(Uint8Array.from([0, 0, 9, 1, 0, 0, 0, 1, 7]), 'x', 1), DataFormatError);
  assert.throws(() => readIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 5, 7]), 'x', 1), /header says 5 bytes of data, the file holds 1/);
  assert.throws(() => readIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), 'x', 1), /IDX rank 3, expected 1/);
});

test('a short quantization-aware run reaches >= 95% on MNIST; PCILT and direct agree on every image; save/load round trip', async () => {
  const net = mnistNet({ activationBits: 4, seed: 3 });
  await train(net, loadMnist('train'), { epochs: 1, limit: 300 * 64, seed: 3 });
  const model = new Model(net);
  const testSet = loadMnist('test');
  const n = 1000;
  const x = { data: Float32Array.from(testSet.images.subarray(0, n * 784), (v) => v / 255), shape: [n, 1, 28, 28] };
  const y = await model.predict(x);
  const yd = await model.predict(x, { kernel: 'direct' });
  let correct = 0, agree = 0;
  for (let i = 0; i < n; i++) {
    const a = argmax(y.data, i), b = argmax(yd.data, i);
    if (a === testSet.labels[i]) correct++;
    if (a === b) agree++;
  }
  assert.equal(agree, n, 'PCILT and direct integer inference must agree on every image');
  assert.ok(correct / n >= 0.95, `accuracy ${correct / n}`);

  const again = await loadModel(encodeFcnn(net, { note: 'test' }));
  assert.equal(again.meta.note, 'test');
  const y2 = await again.predict(x);
  assert.deepEqual(y2.data, y.data);
});

function argmax(d: Float32Array, i: number): number {
  let best = 0;
  for (let k = 1; k < 10; k++) if (d[i * 10 + k] > d[i * 10 + best]) best = k;
  return best;
}

test('corrupted, truncated and foreign model files give typed errors, never a crash or a huge allocation', async () => {
  const good = encodeFcnn(mnistNet({ activationBits: 2, seed: 9 }));
  assert.ok(decodeFcnn(good).model.layers.length > 5);
  const expectBad = (bytes: Uint8Array, re: RegExp) => assert.throws(() => decodeFcnn(bytes), (e: unknown) => e instanceof ModelFormatError && re.test(e.message));
  expectBad(good.subarray(0, good.length - 100), /past the .* of data \(truncated\?\)/);
  expectBad(good.subarray(0, 9), /does not start with "FCNN"/);
  expectBad(new TextEncoder().encode('{"format":"onnx"}'), /does not start with "FCNN"/);
  const v4 = good.slice(); v4[4] = 4;
  expectBad(v4, /format version 4; this faster-cnn reads versions 1 to 3/);
  const v3 = good.slice(); v3[4] = 3;
  await assert.rejects(loadModel(v3), (e: unknown) => e instanceof ModelFormatError && /graph header is incomplete/.test(e.message));
  const v2 = good.slice(); v2[4] = 2;
  expectBad(v2, /format version 2 holds an imported graph/);
  await assert.rejects(loadModel(v2), (e: unknown) => e instanceof ModelFormatError && /graph header is incomplete/.test(e.message));
  const longHeader = good.slice(); new DataView(longHeader.buffer).setUint32(8, 0xfffffff0, true);
  expectBad(longHeader, /the header claims 4\.29 GB/);
  // A header that claims a 10 GB tensor is refused before anything is allocated.
  const hlen = new DataView(good.buffer).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(good.subarray(12, 12 + hlen)));
  header.layers[0].params[0].length = 10e9;
  const forged = new TextEncoder().encode(JSON.stringify(header));
  // And a config that implies more weights than the file holds.
  const huge = JSON.parse(JSON.stringify(header));
  huge.layers[0].config.outChannels = 1e9;
  const hb = new TextEncoder().encode(JSON.stringify(huge));
  const h = new Uint8Array(12 + Math.ceil(hb.length / 4) * 4 + 16);
  h.set(good.subarray(0, 8)); new DataView(h.buffer).setUint32(8, hb.length, true); h.set(hb, 12);
  expectBad(h, /layer 0 \(Conv2d\) would hold 36\.00 GB of weights/);
  const blob = good.subarray(12 + Math.ceil(hlen / 4) * 4);
  const start = 12 + Math.ceil(forged.length / 4) * 4;
  const f = new Uint8Array(start + blob.length);
  f.set(good.subarray(0, 8)); new DataView(f.buffer).setUint32(8, forged.length, true); f.set(forged, 12); f.set(blob, start);
  expectBad(f, /holds 10\.00 GB, its shape needs/);
  // Random mutations: only typed errors, or a model that loads.
  const r = rng(12);
  for (let i = 0; i < 300; i++) {
    const m = good.slice(0, r.int(0, 1) ? good.length : r.int(0, good.length));
    for (let j = 0; j < r.int(1, 8); j++) m[r.int(0, Math.min(m.length - 1, 12 + hlen + 16))] = r.int(0, 255);
    try {
      decodeFcnn(m);
    } catch (e) {
      assert.ok(e instanceof FasterCnnError, `mutation ${i} threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
  }
});

/**
 * A layer's output is linear in each of its parameters (table layers): one finite difference must equal
 * the gradient backward accumulated for loss sum(w * y), up to float rounding.
 */
async function checkLinearGrads(t: Layer, x: Tensor, y: Tensor, w: Float32Array, r: ReturnType<typeof rng>, what: string) {
  for (const p of t.params()) {
    for (let trial = 0; trial < 6; trial++) {
      const i = r.int(0, p.value.length - 1);
      const keep = p.value[i];
      p.value[i] = keep + 0.5;
      const up = await t.forward(x, false);
      p.value[i] = keep;
      let num = 0;
      for (let j = 0; j < w.length; j++) num += (w[j] * (up.data[j] - y.data[j])) / 0.5;
      assert.ok(Math.abs(num - p.grad[i]) < 1e-3, `${what} ${p.name}[${i}]: ${num} vs ${p.grad[i]}`);
    }
  }
}

test('tables trained as weights: gradients per range, start equal to the layer they replace, round trip', async () => {
  const { TableLinear, TABLE_RANGES, Sequential, Model } = await import('faster-cnn');
  const r = rng(21);
  const lin = new Linear(6, 3, 8);
  const quant = new QuantReLU(2, 3); // scale 1: codes 0..3
  const x = { data: Float32Array.from({ length: 4 * 6 }, () => r.int(0, 3)), shape: [4, 6] };
  const ref = await lin.forward(x, false);
  for (const range of TABLE_RANGES) {
    const t = TableLinear.fromLinear(lin, quant, range);
    const y = await t.forward(x, true);
    y.data.forEach((v, i) => assert.ok(Math.abs(v - ref.data[i]) < 1e-4, `${range}: ${v} vs ${ref.data[i]}`));
    const w = Float32Array.from(y.data, () => r.next() - 0.5);
    for (const p of t.params()) p.grad.fill(0);
    await t.backward({ data: w, shape: y.shape });
    await checkLinearGrads(t, x, y, w, r, range);
  }
  // Integer inference from trained entries, and the model file keeps them.
  const t = TableLinear.fromLinear(lin, quant, 'entry');
  t.table.value[5] += 0.75;
  const net = new Sequential([new Conv2d(1, 6, 1, 1, 0, 8), quant, new Flatten(), t]);
  const img = { data: Float32Array.from({ length: 2 * 1 * 1 * 1 }, () => r.next()), shape: [2, 1, 1, 1] };
  const a = await new Model(net).predict(img);
  const b = await new Model(decodeFcnn(encodeFcnn(net)).model).predict(img);
  assert.deepEqual(a.data, b.data);
});

test('convolution tables trained as weights: start equal to the convolution, gradients, a naive twin, integer inference, files', async () => {
  const { TableConv2d, TableLinear, TABLE_RANGES, ArgumentError } = await import('faster-cnn');
  const r = rng(22);
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
    assert.equal(a.length, b.length, what);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  };
  const quant = new QuantReLU(2, 3); // scale 1: codes 0..3
  for (const [C, O, k, stride, pad, H, W] of [[3, 4, 3, 1, 1, 5, 6], [2, 3, 3, 2, 0, 7, 5], [2, 2, 1, 1, 0, 3, 4], [1, 3, 2, 2, 1, 4, 3]]) {
    const conv = new Conv2d(C, O, k, stride, pad, 8);
    conv.bias.value.forEach((_, i) => (conv.bias.value[i] = r.next() - 0.5));
    const x = { data: Float32Array.from({ length: 2 * C * H * W }, () => r.int(0, 3)), shape: [2, C, H, W] };
    const ref = await conv.forward(x, true);
    const w = Float32Array.from(ref.data, () => r.next() - 0.5);
    const refDx = await conv.backward({ data: w, shape: ref.shape });
    for (const range of TABLE_RANGES) {
      const t = TableConv2d.fromConv(conv, quant, range);
      const what = `${range} ${C}x${H}x${W} -> ${O}, k ${k}, stride ${stride}, pad ${pad}`;
      const y = await t.forward(x, true);
      assert.deepEqual(y.shape, ref.shape);
      close(y.data, ref.data, 1e-4, what);
      for (const p of t.params()) p.grad.fill(0);
      const dx = await t.backward({ data: w, shape: y.shape });
      // At range 'table' the tables are the weights times the code: the input's gradient is the convolution's.
      if (range === 'table') close(dx.data, refDx.data, 1e-4, `${what} dx`);
      await checkLinearGrads(t, x, y, w, r, what);
    }
  }

  // Free entries against a naive loop: padding reads code 0, inputs are codes times inScale.
  {
    const [N, C, O, k, stride, pad, H, W, L, s] = [2, 2, 3, 3, 2, 1, 6, 5, 4, 0.5];
    const K = C * k * k;
    const base = Float32Array.from({ length: O * K * L }, () => r.next() * 2 - 1);
    const bias = Float32Array.from({ length: O }, () => r.next());
    const t = new TableConv2d(C, O, k, stride, pad, 2, s, 'entry', { base, bias, weights: new Float32Array(0) });
    const codes = Uint8Array.from({ length: N * C * H * W }, () => r.int(0, L - 1));
    const y = await t.forward({ data: Float32Array.from(codes, (c) => c * s), shape: [N, C, H, W] }, false);
    const OH = Math.floor((H + 2 * pad - k) / stride) + 1, OW = Math.floor((W + 2 * pad - k) / stride) + 1;
    assert.deepEqual(y.shape, [N, O, OH, OW]);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      let sum = bias[o];
      for (let c = 0; c < C; c++) for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) {
        const ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
        const a = ih >= 0 && ih < H && iw >= 0 && iw < W ? codes[((n * C + c) * H + ih) * W + iw] : 0;
        sum += base[(o * K + (c * k + kh) * k + kw) * L + a];
      }
      const got = y.data[((n * O + o) * OH + oh) * OW + ow];
      assert.ok(Math.abs(got - sum) < 1e-5, `naive twin at ${n},${o},${oh},${ow}: ${got} vs ${sum}`);
    }
    // The first trained layer's input is frozen: no gradient is computed for it.
    t.inputGradient = false;
    await t.forward({ data: Float32Array.from(codes, (c) => c * s), shape: [N, C, H, W] }, true);
    const dx = await t.backward({ data: new Float32Array(y.data.length).fill(1), shape: y.shape });
    assert.ok(dx.data.every((v) => v === 0));
  }

  // Tables with 12-bit entries: integer inference (wasm and js) gives the float forward's outputs; files keep them.
  const pix = new QuantReLU(8, 255); // 8-bit pixel codes, scale 1: what a quantized network's first layer reads, as values / 255
  const tc = TableConv2d.fromConv(new Conv2d(1, 3, 3, 2, 1, 8), pix, 'entry', 12);
  for (let i = 0; i < tc.table.value.length; i += 7) tc.table.value[i] += r.next() - 0.5;
  const tl = TableLinear.fromLinear(new Linear(36, 5, 8), pix, 'entry', 12);
  const img = { data: Float32Array.from({ length: 2 * 36 }, () => r.int(0, 255) / 255), shape: [2, 1, 6, 6] };
  for (const net of [new Sequential([tc]), new Sequential([new Flatten(), tl])]) {
    // The float layers read values in units of their inScale (1 here); the runtime reads the pixels' 8-bit codes.
    const f = await net.forward({ data: img.data.map((v) => Math.round(v * 255)), shape: img.shape }, false);
    const js = await new Model(net).predict(img, { backend: 'js' });
    const wasm = await new Model(net).predict(img, { backend: 'wasm' });
    assert.deepEqual(wasm.data, js.data);
    const m = f.data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    close(js.data, f.data, 1e-5 * m, `${net.layers.at(-1)!.type} integer vs float`);
    const again = await new Model(decodeFcnn(encodeFcnn(net)).model).predict(img, { backend: 'wasm' });
    assert.deepEqual(again.data, wasm.data);
  }
  assert.throws(() => new TableConv2d(2, 3, 3, 1, 1, 2, 1, 'entry', undefined, 1), ArgumentError);
  await assert.rejects(tc.forward({ data: new Float32Array(2 * 2 * 6 * 6), shape: [2, 2, 6, 6] }, false), ArgumentError);
});

test('fine-tuning the tables of a trained MNIST network: convolutions and fully connected layers, integer inference agrees', async () => {
  const { fineTuneTables, TableConv2d, TableLinear } = await import('faster-cnn');
  const model = await loadModel('models/mnist-a2.fcnn');
  const before = model.net.layers.map((l) => l.type);
  const lines: string[] = [];
  const tuned = await fineTuneTables(model.net, loadMnist('train'), { range: 'entry', epochs: 1, limit: 300, onProgress: (m) => lines.push(m) });
  assert.deepEqual(model.net.layers.map((l) => l.type), before, 'the original network is left as it was');
  assert.deepEqual(tuned.layers.map((l) => l.type),
    ['Conv2d', 'QuantReLU', 'MaxPool2d', 'TableConv2d', 'QuantReLU', 'MaxPool2d', 'Flatten', 'TableLinear', 'QuantReLU', 'TableLinear', 'LogSoftmax']);
  assert.match(lines.at(-1)!, /epoch 1\/1: loss [\d.]+, train accuracy/);
  const tables = tuned.layers.filter((l): l is InstanceType<typeof TableConv2d> | InstanceType<typeof TableLinear> => l instanceof TableConv2d || l instanceof TableLinear);
  for (const t of tables) assert.equal(t.entryBits, 12);
  // Trained: the conv tables moved away from w * a * s.
  const start = TableConv2d.fromConv(model.net.layers[3] as Conv2d, model.net.layers[1] as QuantReLU, 'entry', 12);
  assert.ok(tables[0].rawTables().some((v, i) => Math.abs(v - start.rawTables()[i]) > 1e-4));
  const testSet = loadMnist('test');
  const n = 500;
  const x = { data: Float32Array.from(testSet.images.subarray(0, n * 784), (v) => v / 255), shape: [n, 1, 28, 28] };
  const integer = await new Model(tuned).predict(x);
  const float = await tuned.forward(x, false);
  let correct = 0, agree = 0;
  for (let i = 0; i < n; i++) {
    if (argmax(integer.data, i) === testSet.labels[i]) correct++;
    if (argmax(integer.data, i) === argmax(float.data, i)) agree++;
  }
  assert.ok(correct / n >= 0.97, `accuracy ${correct / n}`);
  assert.ok(agree / n >= 0.99, `integer and float predictions agree on ${agree} of ${n}`);
});

test('a trained network changed in place is lowered again: the next run uses the new weights', async () => {
  const model = await loadModel('models/mnist-a4.fcnn');
  const img = { data: Float32Array.from(loadMnist('test').images.subarray(0, 2 * 784), (v) => v / 255), shape: [2, 1, 28, 28] };
  const before = await model.predict(img);
  assert.deepEqual((await model.predict(img)).data, before.data, 'unchanged weights: the same outputs');
  // One parameter of the first convolution, edited in place (as training steps do).
  const w = model.net.layers[0].params()[0].value;
  for (let i = 0; i < w.length; i += 7) w[i] += 0.25;
  const after = await model.predict(img);
  assert.notDeepEqual(after.data, before.data);
  assert.deepEqual(after.data, (await new Model(model.net).predict(img)).data, 'as a model made from the edited network');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Model, autoChoices, calibrateMachine, convGeometry, costModel, fromNumbers, setCostModel,
  type CostModel, type NodeProfile, type RuntimeGraph,
} from 'faster-cnn';
import { rng } from './helpers.js';

const dist = (p: string) => import(new URL(`../../dist/${p}`, import.meta.url).href);

test('cost lines: a power law is recovered from its points; predictions need every family, this thread count and work not far above the calibration', async () => {
  const { fitLine, lineMs, predict, familyOf } = await dist('backends/cost-model.js');
  const law = (u: number) => 0.3 * (u / 1e6) ** 0.8;
  const line = fitLine([1e5, 2e6, 3e7].map((units) => ({ units, ms: law(units) })));
  assert.ok(Math.abs(line.exponent - 0.8) < 1e-9 && Math.abs(line.msAtMillion - 0.3) < 1e-9, JSON.stringify(line));
  assert.ok(Math.abs(lineMs(line, 5e6) - law(5e6)) < 1e-9);
  // Noise that makes time fall with work is not believed: the exponent stays at least 0.
  assert.ok(fitLine([{ units: 1e6, ms: 2 }, { units: 4e6, ms: 1 }]).exponent >= 0);

  const g = convGeometry([1, 32, 28, 28], [64, 32, 3, 3], { padding: 1 });
  const dw = convGeometry([1, 32, 28, 28], [32, 1, 3, 3], { padding: 1, groups: 32 });
  const pw = convGeometry([1, 32, 28, 28], [64, 32, 1, 1]);
  assert.equal(familyOf('wasm-direct-1t', g, 8).family, 'wasm-direct|1t|conv|b8');
  assert.equal(familyOf('wasm-direct', dw, 4).family, 'wasm-direct|mt|dw|low');
  assert.equal(familyOf('wasm-pcilt', pw, 2).family, 'wasm-pcilt|mt|pw');
  assert.equal(familyOf('wasm-pcilt', pw, 2).units, 2 * familyOf('wasm-direct', pw, 2).units, 'look-ups cost per bit plane');
  assert.equal(familyOf('js-direct', g, 8), null);

  const macs = 64 * 28 * 28 * 32 * 9;
  const mk = (ms: number): CostModel['lines'][string] => ({ msAtMillion: ms, exponent: 1, minUnits: macs / 2, maxUnits: macs * 2 });
  const before = costModel();
  try {
    setCostModel({ machine: 'test', version: 2, threads: 2, calibrationMs: 0, lines: { 'wasm-direct|mt|conv|b8': mk(0.01), 'wasm-direct|1t|conv|b8': mk(0.02) } });
    const p = predict(['wasm-direct', 'wasm-direct-1t'], g, 8, undefined);
    assert.ok(p && Math.abs(p['wasm-direct'] - 0.01 * macs / 1e6) < 1e-9 && p['wasm-direct-1t'] > p['wasm-direct']);
    assert.equal(predict(['wasm-direct', 'wasm-pcilt'], g, 8, undefined), null, 'a family without a line');
    assert.equal(predict(['wasm-direct'], g, 8, 3), null, 'another thread count than calibrated');
    assert.ok(predict(['wasm-direct'], g, 8, 2), 'the calibrated thread count, named');
    const huge = convGeometry([1, 64, 224, 224], [128, 64, 3, 3], { padding: 1 });
    assert.equal(predict(['wasm-direct'], huge, 8, undefined), null, 'far beyond the calibrated work');
    // Within 8x below it, the line as fitted; far below, a layer is predicted what the lowest trusted work costs
    // (the fixed costs it still pays).
    const below = convGeometry([1, 32, 14, 14], [64, 32, 3, 3], { padding: 1 });
    assert.ok(Math.abs(predict(['wasm-direct'], below, 8, undefined)!['wasm-direct'] - 0.01 * (macs / 4) / 1e6) < 1e-9);
    const tiny = convGeometry([1, 8, 4, 4], [4, 8, 3, 3], { padding: 1 });
    const small = predict(['wasm-direct', 'wasm-direct-1t'], tiny, 8, undefined);
    assert.ok(small && Math.abs(small['wasm-direct'] - 0.01 * (macs / 16) / 1e6) < 1e-9 && Math.abs(small['wasm-direct-1t'] - 0.02 * (macs / 16) / 1e6) < 1e-9, JSON.stringify(small));
  } finally {
    setCostModel(before ?? undefined);
  }
});

test("predicted choices: the first call runs the predicted winner alone; a close runner-up is measured over later calls and can win", async () => {
  const { autoRun, knownWinner, predictChoice, probing } = await dist('backends/auto.js');
  const spin = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end); };
  const runs: string[] = [];
  const candidate = (label: string, ms: number) => ({ label, run: () => { runs.push(label); spin(ms); return new Int32Array([7]); } });
  // Predicted: 'slow' a little faster than 'fast'; measured, 'fast' is 10x faster. 'far' is predicted 3x slower.
  const cands = [candidate('slow', 2), candidate('fast', 0.2), candidate('far', 0.1)];
  const predicted = { slow: 1, fast: 1.1, far: 3 };
  const key = `test|probe|${Math.random()}`;
  assert.equal(knownWinner(key), undefined);
  assert.equal(predictChoice(key, cands.map((c) => c.label), predicted), 'slow');
  assert.equal(probing('test|probe|'), 1);
  assert.equal(predictChoice(key, cands.map((c) => c.label), predicted), undefined, 'no second prediction while measuring');
  let calls = 1;
  while (knownWinner(key) === undefined && calls < 40) {
    const before = runs.length;
    assert.deepEqual([...(await autoRun(key, cands) as Int32Array)], [7]);
    assert.equal(runs.length - before, 1, 'one candidate run a call');
    calls++;
  }
  assert.equal(knownWinner(key), 'fast', 'the measured winner replaces the predicted one');
  assert.ok(!runs.includes('far'), 'a candidate predicted far slower never runs');
  assert.ok(calls <= 1 + 3 + 2 * 6 + 1, `${calls} calls`);
  const c = autoChoices().find((x) => x.key === key)!;
  assert.deepEqual(Object.keys(c.ms).sort(), ['fast', 'slow']);
  assert.equal(c.probing, false);
  assert.deepEqual(c.predicted, predicted);

  // A clear prediction: nothing is measured, the first listed of a predicted tie wins.
  const key2 = `test|clear|${Math.random()}`;
  assert.equal(predictChoice(key2, ['a', 'b', 'c'], { a: 1.04, b: 1, c: 2 }), 'a');
  assert.equal(knownWinner(key2), undefined, "a and b are close: measured over later calls");
  const key3 = `test|clear|${Math.random()}`;
  assert.equal(predictChoice(key3, ['a', 'b'], { a: 2, b: 1 }), 'b');
  assert.equal(knownWinner(key3), 'b');
  assert.equal(predictChoice(`test|none|${Math.random()}`, ['a', 'b'], { a: 1 }), undefined, 'a candidate without a prediction: measure');
});

/** A one-layer model whose layer shape no other test uses. */
function oneLayer(seed: number, C: number, O: number, H: number) {
  const r = rng(seed);
  const w = fromNumbers('float32', [O, C, 3, 3], Array.from({ length: O * C * 9 }, () => r.next() * 2 - 1));
  const graph: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, C, H, H] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
    nodes: [{ op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } }], consts: new Map([['w', w]]),
  };
  const x = fromNumbers('float32', [1, C, H, H], Array.from({ length: C * H * H }, () => r.next()));
  return { graph, x };
}

test("machine calibration: kept per machine for later processes; a model's first run then times no candidate, and every run is exact", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-cost-'));
  const before = costModel();
  process.env.FASTER_CNN_CACHE = dir;
  try {
    const m = await calibrateMachine();
    const file = JSON.parse(readFileSync(join(dir, 'cost-model.json'), 'utf8'));
    assert.deepEqual(file[m.machine].lines, m.lines);
    for (const f of ['wasm-direct|mt|conv|b8', 'wasm-direct|1t|dw|low', 'wasm-pcilt|mt|pw', 'wasm-pcilt|1t|conv', 'wasm-direct|mt|pw|low']) {
      assert.ok(m.lines[f] && m.lines[f].msAtMillion > 0 && m.lines[f].exponent >= 0, `${f}: ${JSON.stringify(m.lines[f])}`);
    }
    // Another process finds it and does not calibrate again.
    const script = `import('faster-cnn').then(async (f) => { const m = await f.ensureCostModel(); console.log(JSON.stringify(m)); process.exit(0); })`;
    const other = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, FASTER_CNN_CACHE: dir }, cwd: new URL('.', import.meta.url).pathname, encoding: 'utf8' }));
    assert.equal(other.calibrationMs, m.calibrationMs);

    for (const bits of [2, 8]) {
      const { graph, x } = oneLayer(90 + bits, 9, 20, 17);
      const model = new Model(null, { activationBits: bits }, graph);
      const profile: NodeProfile[] = [];
      const y = await model.run({ x }, { profile });
      assert.equal(profile[0].candidates, undefined, 'no candidate timed on the first call');
      assert.ok(profile[0].predicted && Object.keys(profile[0].predicted).length >= 2, JSON.stringify(profile[0]));
      assert.ok(Object.keys(profile[0].predicted!).includes(profile[0].kernel!));
      const direct = await model.run({ x }, { kernel: 'direct' });
      assert.deepEqual(y.y.data, direct.y.data, 'the predicted kernel computes what direct multiplication does');
      // Until the close candidates are measured, and after, every call is the same.
      for (let i = 0; i < 20; i++) assert.deepEqual((await model.run({ x })).y.data, y.y.data);
      const key = autoChoices().find((c) => c.key.startsWith('layer|1,9,17,17,20,') && c.key.includes(`|${bits}b|`))!;
      assert.equal(key.probing ?? false, false, 'measured within 20 calls');
    }
  } finally {
    delete process.env.FASTER_CNN_CACHE;
    setCostModel(before ?? undefined);
  }
});

test('a model prepares as it loads (workers started, weights quantized), and a process that only loads it still exits', () => {
  const model = new URL('../../models/mnist-a4.fcnn', import.meta.url).pathname;
  const script = `import('faster-cnn').then(async (f) => { const m = await f.loadModel(${JSON.stringify(model)}); console.log(m.quantized); })`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('.', import.meta.url).pathname, encoding: 'utf8', timeout: 30_000 });
  assert.equal(out.trim(), 'true');
});

test("a dense layer whose predicted kernel is the look-up one gets its tables as the model loads; one predicted to multiply does not", async () => {
  const { prepareLayers, weightsOf, layerCandidates } = await dist('kernels/wasm/int-conv.js');
  const { familyOf } = await dist('backends/cost-model.js');
  // The candidates' list depends on what the engine can run: wait for it.
  await (await dist('backends/wasm/engine.js')).engineUnavailableReason();
  const before = costModel();
  try {
    for (const [seed, cheap] of [[1, 'wasm-pcilt'], [2, 'wasm-direct']] as const) {
      const r = rng(70 + seed);
      const O = 24, K = 200 + seed;
      const w = fromNumbers('float32', [O, K], Array.from({ length: O * K }, () => r.next() * 2 - 1));
      const graph: RuntimeGraph = {
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, K] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
        nodes: [{ op: 'Gemm', name: 'fc', inputs: ['x', 'w'], outputs: ['y'], attrs: { transB: 1 } }], consts: new Map([['w', w]]),
      };
      // Every family this layer's candidates fall into, the `cheap` one 4x faster than the rest.
      const g = convGeometry([1, K, 1, 1], [O, K, 1, 1]);
      const labels: string[] = layerCandidates(new Int8Array(O * K), () => { throw new Error('not built'); }, 2, g, undefined, { x: new Float32Array(0), quant: () => { throw new Error('not run'); } }, () => {}).map((c: { label: string }) => c.label);
      const lines: CostModel['lines'] = {};
      for (const l of labels) lines[familyOf(l, g, 2).family] = { msAtMillion: l.replace(/-1t$/, '') === cheap ? 0.25 : 1, exponent: 1, minUnits: 1, maxUnits: 1e9 };
      setCostModel({ machine: 'test', version: 2, threads: 2, calibrationMs: 0, lines });
      await prepareLayers(graph, { bits: 2 });
      assert.equal(weightsOf(w, true, 8).tables.has(2), cheap === 'wasm-pcilt', `predicted ${cheap}: ${labels.join(', ')}`);
      // Whatever was prepared, the layer computes what direct multiplication computes.
      const x = fromNumbers('float32', [1, K], Array.from({ length: K }, () => r.next()));
      const model = new Model(null, { activationBits: 2 }, graph);
      assert.deepEqual((await model.run({ x })).y.data, (await model.run({ x }, { kernel: 'direct' })).y.data);
    }
  } finally {
    setCostModel(before ?? undefined);
  }
});

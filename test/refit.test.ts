import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError, Model, REFIT_ALPHA, loadModel, saveModel, type RuntimeGraph, type RuntimeTensor } from 'faster-cnn';
import { rng } from './helpers.js';

/**
 * A small CNN: a 3 x 3 stem, two 1 x 1 layers (the first with a fused ReLU, the second without activation), global
 * pooling and a dense head, random weights. The 1 x 1 layers are the ones a refit may change.
 */
function net(seed: number): RuntimeGraph {
  const r = rng(seed);
  const t = (shape: number[], scale: number): RuntimeTensor => ({ dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r.next() * 2 - 1) * scale) });
  return {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 12, 12] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
    nodes: [
      { op: 'Conv', name: 'stem', inputs: ['x', 'w0', 'b0'], outputs: ['a0'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'r0', inputs: ['a0'], outputs: ['h0'], attrs: {} },
      { op: 'Conv', name: 'expand', inputs: ['h0', 'w1', 'b1'], outputs: ['h1'], attrs: { _act: 'relu' } },
      { op: 'Conv', name: 'project', inputs: ['h1', 'w2'], outputs: ['h2'], attrs: {} },
      { op: 'GlobalAveragePool', name: 'pool', inputs: ['h2'], outputs: ['p'], attrs: {} },
      { op: 'Flatten', name: 'flat', inputs: ['p'], outputs: ['f'], attrs: {} },
      { op: 'Gemm', name: 'head', inputs: ['f', 'w3', 'b3'], outputs: ['y'], attrs: { transB: 1 } },
    ],
    consts: new Map([
      ['w0', t([16, 3, 3, 3], 0.5)], ['b0', t([16], 0.1)], ['w1', t([24, 16, 1, 1], 0.4)], ['b1', t([24], 0.1)],
      ['w2', t([12, 24, 1, 1], 0.4)], ['w3', t([5, 12], 0.5)], ['b3', t([5], 0.1)],
    ]),
  };
}

function inputs(seed: number, n: number) {
  const r = rng(seed);
  return Array.from({ length: n }, () => ({ shape: [1, 3, 12, 12], data: Float32Array.from({ length: 3 * 144 }, () => r.next() * 2 - 1) }));
}

/** Solves M z = v (n x n, dense) by Gaussian elimination with partial pivoting: the test's own solver. */
function gauss(M: number[][], v: number[]): number[] {
  const n = v.length, a = M.map((row, i) => [...row, v[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    [a[c], a[p]] = [a[p], a[c]];
    for (let r = c + 1; r < n; r++) {
      const f = a[r][c] / a[c][c];
      for (let k = c; k <= n; k++) a[r][k] -= f * a[c][k];
    }
  }
  const z = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = a[r][n];
    for (let k = r + 1; k < n; k++) s -= a[r][k] * z[k];
    z[r] = s / a[r][r];
  }
  return z;
}

/** Rounds w (one output channel) to the kernels' grid: symmetric 8-bit integers at scale max |w| / 127. */
function grid(w: ArrayLike<number>): { q: number[]; scale: number } {
  let m = 0;
  for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(Math.fround(w[i])));
  const scale = m > 0 ? m / 127 : 1;
  return { q: Array.from(w, (v) => Math.max(-127, Math.min(127, Math.round(Math.fround(v) / scale)))), scale };
}

/**
 * What a refit of 1 x 1 layer `name` is fitted to, computed here from the models' own values: the layer's input in
 * the refitted model (the layers before it refitted) on 3-bit codes of its calibrated range (quantized here:
 * clamp(round(x / s) + z) with s = (hi - lo) / 7, 0 exact); the float layer's output before its activation
 * (computed here from the float model's input to it) as the target, where a fused ReLU zeroes it only kept below 0
 * (the layer's quantized output before the refit where that is below 0 too, else 0); the ridge towards the float
 * weights. Returns the ridge solution (unrounded), the bias that zeroes the mean error of given weights, and the
 * ridge objective's value for given weights and bias.
 */
async function refitProblem(refitted: Model, plain: Model, float: Model, g: RuntimeGraph, name: string, fit: ReturnType<typeof inputs>) {
  const n = g.nodes.find((x) => x.name === name)!, relu = n.attrs._act === 'relu';
  const w = g.consts.get(n.inputs[1])!.data as Float32Array, b = n.inputs[2] ? (g.consts.get(n.inputs[2])!.data as Float32Array) : undefined;
  const O = g.consts.get(n.inputs[1])!.shape[0], C = w.length / O, n1 = C + 1;
  const [lo0, hi0] = refitted.meta.ranges![n.inputs[0]], lo = Math.min(lo0, 0), hi = Math.max(hi0, 0), L = 7;
  const s = Math.fround((hi - lo) / L), z = Math.round(-lo / s);
  const rows: number[][] = [], targets: number[][] = [];
  const corr = plain.meta.biasCorrection?.[name], rounded = Array.from({ length: O }, (_, o) => grid(w.subarray(o * C, (o + 1) * C)));
  for (const x of fit) {
    const xq = (await refitted.run({ x }, { keep: [n.inputs[0]] }))[n.inputs[0]].data as Float32Array;
    const xf = (await float.run({ x }, { keep: [n.inputs[0]] }))[n.inputs[0]].data as Float32Array;
    const P = xq.length / C;
    for (let p = 0; p < P; p++) {
      const row = Array.from({ length: C }, (_, c) => (Math.min(L, Math.max(0, Math.round(Math.fround(xq[c * P + p] / s)) + z)) - z) * s);
      const target = Array.from({ length: O }, (_, o) => {
        let y = b ? b[o] : 0;
        for (let c = 0; c < C; c++) y += w[o * C + c] * xf[c * P + p];
        if (!relu || y > 0) return y;
        let pred = (b ? b[o] : 0) - (corr ? corr[o] : 0);
        for (let c = 0; c < C; c++) pred += rounded[o].q[c] * rounded[o].scale * row[c];
        return Math.min(pred, 0);
      });
      rows.push(row);
      targets.push(target);
    }
  }
  const A = Array.from({ length: n1 }, () => new Array<number>(n1).fill(0)), R = Array.from({ length: n1 }, () => new Array<number>(O).fill(0));
  rows.forEach((row0, p) => {
    const row = [...row0, 1];
    for (let i = 0; i < n1; i++) {
      for (let j = 0; j < n1; j++) A[i][j] += row[i] * row[j];
      for (let o = 0; o < O; o++) R[i][o] += row[i] * targets[p][o];
    }
  });
  let trace = 0;
  for (let i = 0; i < C; i++) trace += A[i][i];
  const lambda = (REFIT_ALPHA * trace) / C;
  const M = A.map((row, i) => row.map((v, j) => v + (i === j && i < C ? lambda : 0)));
  const theta = Array.from({ length: O }, (_, o) => gauss(M, R.map((r, i) => r[o] + (i < C ? lambda * w[o * C + i] : 0))).slice(0, C));
  const biasFor = (weights: number[][]) => weights.map((wo, o) => (R[C][o] - wo.reduce((a, v, c) => a + v * A[C][c], 0)) / A[C][C]);
  // The squared error on the fitted inputs plus the ridge's pull towards the float weights.
  const objective = (weights: number[][], bias: number[]) => {
    let e = 0;
    rows.forEach((row, p) => weights.forEach((wo, o) => {
      e += (targets[p][o] - bias[o] - wo.reduce((a, v, c) => a + v * row[c], 0)) ** 2;
    }));
    weights.forEach((wo, o) => wo.forEach((v, c) => (e += lambda * (v - w[o * C + c]) ** 2)));
    return e;
  };
  return { O, C, theta, biasFor, objective };
}

test('refit: each 1 x 1 layer gets integer weights near the ridge fit a plain twin computes, closer to it than plain rounding; deterministic, kept through .fcnn', async () => {
  const g = net(7), float = new Model(null, {}, g);
  const calib = inputs(1, 4), fit = inputs(2, 24), held = inputs(3, 4);
  const plain = new Model(null, { activationBits: 3 }, g);
  await plain.calibrate(calib, { method: 'mse' });
  const refitted = new Model(null, { activationBits: 3 }, g);
  await refitted.calibrate(calib, { method: 'mse', refit: fit });
  // The edges (stem, head) stay at 8 bits; both 1 x 1 layers are refitted and lose their bias correction.
  assert.deepEqual(refitted.meta.calibration?.refit, { inputs: 24, layers: 2 });
  assert.equal(refitted.meta.layers?.stem?.weight, undefined);
  assert.equal(refitted.meta.ranges!.h1.join(), plain.meta.ranges!.h1.join(), 'the refit leaves the ranges as calibrated');
  for (const name of ['expand', 'project']) {
    const l = refitted.meta.layers?.[name];
    assert.ok(l?.weight && l.bias, `${name}: ${JSON.stringify(l)}`);
    assert.equal(refitted.meta.biasCorrection?.[name], undefined);
    const { O, C, theta, biasFor, objective } = await refitProblem(refitted, plain, float, g, name, fit);
    const wd = g.consts.get(l.weight)!.data as Float32Array, bd = g.consts.get(l.bias)!.data as Float32Array;
    const got = Array.from({ length: O }, (_, o) => Array.from(wd.subarray(o * C, (o + 1) * C)));
    let dist = 0, norm = 0;
    got.forEach((wo, o) => {
      // On the kernels' grid already (they round them to the same integers), each channel reaching +-127.
      const { q, scale } = grid(wo);
      wo.forEach((v, c) => assert.ok(Math.abs(v - q[c] * scale) <= 1e-6 * scale * 127, `${name} [${o}, ${c}]: ${v} is not on its grid`));
      wo.forEach((v, c) => {
        dist += (v - theta[o][c]) ** 2;
        norm += theta[o][c] ** 2;
      });
    });
    assert.ok(Math.sqrt(dist / norm) < 0.15, `${name}: weights ${Math.sqrt(dist / norm).toFixed(3)} (relative) from the ridge fit`);
    const want = biasFor(got);
    want.forEach((v, o) => assert.ok(Math.abs(bd[o] - v) <= 1e-4 * (1 + Math.abs(v)), `${name} bias ${o}: ${bd[o]} vs ${v}`));
    // Rounding with compensation comes closer to the fit's optimum than rounding each weight to its nearest step.
    const nearest = theta.map((wo) => {
      const { q, scale } = grid(wo);
      return q.map((v) => v * scale);
    });
    const [mine, naive, exact] = [objective(got, want), objective(nearest, biasFor(nearest)), objective(theta, biasFor(theta))];
    assert.ok(exact <= mine && mine < naive, `${name}: ridge objective ${mine.toFixed(3)}, rounded to nearest ${naive.toFixed(3)}, unrounded ${exact.toFixed(3)}`);
  }

  // The same inputs give the same weights.
  const again = new Model(null, { activationBits: 3 }, g);
  await again.calibrate(calib, { method: 'mse', refit: fit });
  for (const name of ['expand', 'project']) {
    assert.notEqual(again.meta.layers![name].weight, refitted.meta.layers![name].weight, 'new constants of their own');
    assert.deepEqual(g.consts.get(again.meta.layers![name].weight!)!.data, g.consts.get(refitted.meta.layers![name].weight!)!.data);
  }

  // Saved and loaded: the refitted weights travel as constants, outputs identical.
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-refit-'));
  try {
    await saveModel(refitted, join(dir, 'm.fcnn'));
    const loaded = await loadModel(join(dir, 'm.fcnn'));
    for (const x of held) assert.deepEqual((await loaded.predict(x)).data, (await refitted.predict(x)).data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refit: bad input is refused with the argument named', async () => {
  const g = net(8);
  const m = new Model(null, { activationBits: 4 }, g);
  await assert.rejects(m.calibrate(inputs(1, 2), { refit: [] }), (e: Error) => e instanceof ArgumentError && /calibration refit/.test(e.message) && /at least one input/.test(e.message));
  // A layer naming refitted weights the graph lacks.
  const bad = new Model(null, { activationBits: 4, layers: { expand: { bits: 4, weight: 'nowhere' } } }, g);
  await assert.rejects(bad.predict(inputs(1, 1)[0]), (e: Error) => e instanceof ArgumentError && /quant.layers\['expand'\].weight/.test(e.message) && /nowhere/.test(e.message));
});

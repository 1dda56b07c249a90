import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError, Model, REFIT_ALPHA, loadModel, saveModel, type RuntimeGraph } from 'faster-cnn';
import { refitNet as net, rng } from './helpers.js';

const REFITTED = ['expand', 'depthwise', 'grouped', 'project'];

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

/** For each output pixel of a 2-D convolution, each kernel tap's input offset (h * W + w), or -1 in the padding. */
function taps(H: number, W: number, KH: number, KW: number, stride: number[], pads: number[]): number[][] {
  const OH = Math.floor((H + pads[0] + pads[2] - KH) / stride[0]) + 1, OW = Math.floor((W + pads[1] + pads[3] - KW) / stride[1]) + 1;
  const out: number[][] = [];
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      const cells: number[] = [];
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          const h = oh * stride[0] - pads[0] + kh, w = ow * stride[1] - pads[1] + kw;
          cells.push(h >= 0 && h < H && w >= 0 && w < W ? h * W + w : -1);
        }
      }
      out.push(cells);
    }
  }
  return out;
}

/**
 * What a refit of layer `name` is fitted to, computed here from the models' own values: for each group of the
 * layer, each output pixel's window of the layer's input in the refitted model (the layers before it refitted) on
 * 3-bit codes of its calibrated range (quantized here: clamp(round(x / s) + z) with s = (hi - lo) / 7, 0 exact;
 * padding 0); the float layer's output before its activation (computed here from the float model's input to it) as
 * the target, where a fused ReLU or clip takes it beyond a bound only kept beyond it (the layer's quantized output
 * before the refit where that is beyond it too, else the bound); the ridge towards the float weights. Returns, per
 * output channel, the ridge solution (unrounded), the bias that zeroes the mean error of given weights, and the
 * ridge objective's value for given weights and bias.
 */
async function refitProblem(refitted: Model, plain: Model, float: Model, g: RuntimeGraph, name: string, fit: ReturnType<typeof inputs>) {
  const n = g.nodes.find((x) => x.name === name)!, L = 7;
  // A tensor's 3-bit codes: step s, zero point z (the code of 0).
  const codes = (t: string) => {
    const [lo0, hi0] = refitted.meta.ranges![t], s = Math.fround((Math.max(hi0, 0) - Math.min(lo0, 0)) / L);
    return { s, z: Math.round(-Math.min(lo0, 0) / s) };
  };
  const [lo, hi] = n.attrs._act === 'relu' ? [0, Infinity] : n.attrs._act === 'clip' ? [n.attrs._min as number, n.attrs._max as number] : [-Infinity, Infinity];
  const wt = g.consts.get(n.inputs[1])!, w = wt.data as Float32Array, b = n.inputs[2] ? (g.consts.get(n.inputs[2])!.data as Float32Array) : undefined;
  const [O, Cg, KH, KW] = wt.shape, K = KH * KW, CK = Cg * K, n1 = CK + 1, G = (n.attrs.group as number | undefined) ?? 1, Og = O / G;
  const { s, z } = codes(n.inputs[0]);
  const q = (v: number) => (Math.min(L, Math.max(0, Math.round(Math.fround(v / s)) + z)) - z) * s;
  const corr = plain.meta.biasCorrection?.[name], rounded = Array.from({ length: O }, (_, o) => grid(w.subarray(o * CK, (o + 1) * CK)));
  // rows[group][sample], targets[group][sample][output of the group]
  const rows: number[][][] = Array.from({ length: G }, () => []), targets: number[][][] = Array.from({ length: G }, () => []);
  for (const x of fit) {
    const xqT = (await refitted.run({ x }, { keep: [n.inputs[0]] }))[n.inputs[0]], xq = xqT.data as Float32Array;
    const xf = (await float.run({ x }, { keep: [n.inputs[0]] }))[n.inputs[0]].data as Float32Array;
    const [, , H, W] = xqT.shape as number[];
    for (const cells of taps(H, W, KH, KW, (n.attrs.strides as number[] | undefined) ?? [1, 1], (n.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0])) {
      for (let gi = 0; gi < G; gi++) {
        const at = (d: Float32Array, i: number) => (cells[i % K] < 0 ? 0 : d[(gi * Cg + Math.floor(i / K)) * H * W + cells[i % K]]);
        const row = Array.from({ length: CK }, (_, i) => q(at(xq, i)));
        targets[gi].push(Array.from({ length: Og }, (_, oo) => {
          const o = gi * Og + oo;
          let y = b ? b[o] : 0;
          for (let i = 0; i < CK; i++) y += w[o * CK + i] * at(xf, i);
          if (y > lo && y < hi) return y;
          let pred = (b ? b[o] : 0) - (corr ? corr[o] : 0);
          for (let i = 0; i < CK; i++) pred += rounded[o].q[i] * rounded[o].scale * row[i];
          return y <= lo ? Math.min(pred, lo) : Math.max(pred, hi);
        }));
        rows[gi].push(row);
      }
    }
  }
  const theta: number[][] = [], biasOf: ((wg: number[][]) => number[])[] = [], objectives: ((wg: number[][], bg: number[]) => number)[] = [];
  for (let gi = 0; gi < G; gi++) {
    const A = Array.from({ length: n1 }, () => new Array<number>(n1).fill(0)), R = Array.from({ length: n1 }, () => new Array<number>(Og).fill(0));
    rows[gi].forEach((row0, p) => {
      const row = [...row0, 1];
      for (let i = 0; i < n1; i++) {
        for (let j = 0; j < n1; j++) A[i][j] += row[i] * row[j];
        for (let o = 0; o < Og; o++) R[i][o] += row[i] * targets[gi][p][o];
      }
    });
    let trace = 0;
    for (let i = 0; i < CK; i++) trace += A[i][i];
    const lambda = (REFIT_ALPHA * trace) / CK, wOf = (oo: number, i: number) => w[(gi * Og + oo) * CK + i];
    const M = A.map((row, i) => row.map((v, j) => v + (i === j && i < CK ? lambda : 0)));
    for (let oo = 0; oo < Og; oo++) theta.push(gauss(M, R.map((r, i) => r[oo] + (i < CK ? lambda * wOf(oo, i) : 0))).slice(0, CK));
    biasOf.push((wg) => wg.map((wo, o) => (R[CK][o] - wo.reduce((a, v, c) => a + v * A[CK][c], 0)) / A[CK][CK]));
    // The squared error on the fitted inputs plus the ridge's pull towards the float weights.
    objectives.push((wg, bg) => {
      let e = 0;
      rows[gi].forEach((row, p) => wg.forEach((wo, o) => {
        e += (targets[gi][p][o] - bg[o] - wo.reduce((a, v, c) => a + v * row[c], 0)) ** 2;
      }));
      wg.forEach((wo, o) => wo.forEach((v, c) => (e += lambda * (v - wOf(o, c)) ** 2)));
      return e;
    });
  }
  const split = <T>(v: T[], gi: number) => v.slice(gi * Og, (gi + 1) * Og);
  const biasFor = (weights: number[][]) => biasOf.flatMap((f, gi) => f(split(weights, gi)));
  const objective = (weights: number[][], bias: number[]) => objectives.reduce((e, f, gi) => e + f(split(weights, gi), split(bias, gi)), 0);
  return { O, C: CK, theta, biasFor, objective };
}

test('refit: each layer on codes (1 x 1, depthwise, grouped) gets integer weights near the ridge fit a plain twin computes, closer to it than plain rounding; deterministic, kept through .fcnn', async () => {
  const g = net(7), float = new Model(null, {}, g);
  const calib = inputs(1, 4), fit = inputs(2, 24), held = inputs(3, 4);
  const plain = new Model(null, { activationBits: 3 }, g);
  await plain.calibrate(calib, { method: 'mse' });
  const refitted = new Model(null, { activationBits: 3 }, g);
  await refitted.calibrate(calib, { method: 'mse', refit: fit, refitLayers: 'all' });
  // The edges (stem, head) stay at 8 bits; the layers between them are refitted and lose their bias correction.
  assert.deepEqual(refitted.meta.calibration?.refit, { inputs: 24, layers: REFITTED.length });
  assert.equal(refitted.meta.layers?.stem?.weight, undefined);
  assert.equal(refitted.meta.ranges!.h1.join(), plain.meta.ranges!.h1.join(), 'the refit leaves the ranges as calibrated');
  for (const name of REFITTED) {
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
  await again.calibrate(calib, { method: 'mse', refit: fit, refitLayers: 'all' });
  for (const name of REFITTED) {
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

test('refit: by default only the 1 x 1 layers are refitted, with the same weights as when every layer is', async () => {
  const g = net(9), calib = inputs(1, 3), fit = inputs(2, 12);
  const pointwise = new Model(null, { activationBits: 3 }, g), all = new Model(null, { activationBits: 3 }, g);
  await pointwise.calibrate(calib, { method: 'mse', refit: fit });
  await all.calibrate(calib, { method: 'mse', refit: fit, refitLayers: 'all' });
  const refitted = (m: Model) => Object.entries(m.meta.layers ?? {}).filter(([, l]) => l.weight).map(([k]) => k);
  assert.deepEqual(refitted(pointwise).sort(), ['expand', 'project']);
  assert.deepEqual(refitted(all).sort(), [...REFITTED].sort());
  // The first refitted layer sees the same input either way.
  assert.deepEqual(g.consts.get(pointwise.meta.layers!.expand.weight!)!.data, g.consts.get(all.meta.layers!.expand.weight!)!.data);
});

test('refit: bad input is refused with the argument named', async () => {
  const g = net(8);
  const m = new Model(null, { activationBits: 4 }, g);
  await assert.rejects(m.calibrate(inputs(1, 2), { refit: [] }), (e: Error) => e instanceof ArgumentError && /calibration refit/.test(e.message) && /at least one input/.test(e.message));
  await assert.rejects(m.calibrate(inputs(1, 2), { refit: inputs(2, 2), refitLayers: 'some' as 'all' }), (e: Error) => e instanceof ArgumentError && /refitLayers/.test(e.message) && /some/.test(e.message) && /'pointwise' or 'all'/.test(e.message));
  // A layer naming refitted weights the graph lacks.
  const bad = new Model(null, { activationBits: 4, layers: { expand: { bits: 4, weight: 'nowhere' } } }, g);
  await assert.rejects(bad.predict(inputs(1, 1)[0]), (e: Error) => e instanceof ArgumentError && /quant.layers\['expand'\].weight/.test(e.message) && /nowhere/.test(e.message));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  Model, OpError, Session, conformance, fromNumbers, importModel, opDef, ONNX_TESTDATA,
  type RuntimeGraph, type RuntimeNode, type RuntimeTensor, type NodeProfile,
} from 'faster-cnn';
import { CASES, close, familyOf, randomTensor } from './op-cases.js';
import { refitNet, rng, webgpuSkip, type Rng } from './helpers.js';

const { gpuKernelsFor, gpuOps, GpuRun } = await import(new URL('../../dist/kernels/webgpu/gpu.js', import.meta.url).href);
const { getGpu } = await import(new URL('../../dist/backends/webgpu/device.js', import.meta.url).href);
const skip = await webgpuSkip();

const GPU_UNARY = ['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Erf', 'Sin', 'Cos', 'Reciprocal', 'Softplus', 'Softsign', 'HardSwish', 'Mish', '_SiLU',
  'Abs', 'Neg', 'Floor', 'Ceil', 'Round', 'Sign', 'LeakyRelu', 'Elu', 'Selu', 'HardSigmoid', 'ThresholdedRelu', 'Gelu'];
const GPU_BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Pow', 'PRelu'];
const GPU_REDUCE = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp'];
let gpuUnaryTurn = 0, gpuBinaryTurn = 0, gpuReduceTurn = 0;

/** Cases for WebGPU kernels the CPU cases do not reach (float Pad modes, Split, Expand, aliases, Shape, Softmax, Concat). */
const GPU_CASES: Record<string, (r: Rng) => { node: Omit<RuntimeNode, 'name' | 'outputs'>; ins: RuntimeTensor[]; outputs?: number; tol?: number; opset?: number }> = {
  Pad: (r) => {
    const s = Array.from({ length: r.int(1, 4) }, () => r.int(2, 5));
    const pads = [...s.map(() => r.int(0, 2)), ...s.map(() => r.int(0, 2))];
    const mode = r.pick(['constant', 'edge', 'reflect', 'wrap']);
    return { node: { op: 'Pad', inputs: ['x', 'p', 'v'], attrs: { mode } }, ins: [randomTensor(r, 'float32', s), fromNumbers('int64', [pads.length], pads), fromNumbers('float32', [], [r.next()])], tol: 0 };
  },
  Split: (r) => {
    const s = Array.from({ length: r.int(1, 4) }, () => r.int(1, 6)), axis = r.int(0, s.length - 1);
    const a = r.int(0, s[axis]);
    return { node: { op: 'Split', inputs: ['x', 's'], attrs: { axis } }, ins: [randomTensor(r, 'float32', s), fromNumbers('int64', [2], [a, s[axis] - a])], outputs: 2, tol: 0 };
  },
  Expand: (r) => {
    const s = Array.from({ length: r.int(1, 3) }, () => r.pick([1, r.int(1, 4)]));
    const to = [...(r.next() < 0.5 ? [r.int(1, 3)] : []), ...s.map((d) => (d === 1 ? r.int(1, 4) : d))];
    return { node: { op: 'Expand', inputs: ['x', 's'], attrs: {} }, ins: [randomTensor(r, 'float32', s), fromNumbers('int64', [to.length], to)], tol: 0 };
  },
  alias: (r) => {
    const s = [r.int(1, 3), r.int(1, 4), r.int(1, 4)];
    const op = r.pick(['Reshape', 'Flatten', 'Unsqueeze', 'Identity']);
    const ins = [randomTensor(r, 'float32', s)];
    if (op === 'Reshape') ins.push(fromNumbers('int64', [2], [s[0], -1]));
    if (op === 'Unsqueeze') ins.push(fromNumbers('int64', [1], [r.int(0, 3)]));
    return { node: { op, inputs: ins.map((_, i) => `i${i}`), attrs: (op === 'Flatten' ? { axis: r.int(0, 3) } : {}) as RuntimeNode['attrs'] }, ins, tol: 0 };
  },
  Softmax: (r) => {
    const s = Array.from({ length: r.int(1, 4) }, () => r.int(1, 7));
    return { node: { op: r.pick(['Softmax', 'LogSoftmax']), inputs: ['x'], attrs: { axis: r.int(-s.length, s.length - 1) } }, ins: [randomTensor(r, 'float32', s)] };
  },
  Concat: (r) => {
    const s = Array.from({ length: r.int(1, 4) }, () => r.int(1, 5)), axis = r.int(0, s.length - 1);
    const ins = Array.from({ length: r.int(1, 4) }, () => randomTensor(r, 'float32', s.map((d, i) => (i === axis ? r.int(1, 4) : d))));
    return { node: { op: 'Concat', inputs: ins.map((_, i) => `i${i}`), attrs: { axis } }, ins, tol: 0 };
  },
  /** Several 64 x 64 tiles and K steps, with groups, strides and padding. */
  bigConv: (r) => {
    const g = r.pick([1, 2]), C = g * r.int(5, 12), O = g * r.int(33, 45), k = r.pick([1, 3]);
    const ins = [randomTensor(r, 'float32', [r.int(1, 2), C, r.int(9, 20), r.int(9, 20)]), randomTensor(r, 'float32', [O, C / g, k, k]), randomTensor(r, 'float32', [O])];
    return { node: { op: 'Conv', inputs: ['x', 'w', 'b'], attrs: { group: g, pads: [k >> 1, k >> 1, k >> 1, k >> 1], strides: [r.int(1, 2), 1], _act: 'relu' } }, ins, tol: 1e-3 };
  },
  reduce: (r) => {
    const op = GPU_REDUCE[gpuReduceTurn++ % GPU_REDUCE.length];
    const s = Array.from({ length: r.int(1, 4) }, () => r.int(1, 5)), axes = s.map((_, i) => i).filter(() => r.next() < 0.5);
    const x = randomTensor(r, 'float32', s);
    if (op === 'ReduceLogSum' || op === 'ReduceProd') (x.data as Float32Array).forEach((v, i, a) => (a[i] = Math.abs(v) * 0.5 + 0.5));
    return { node: { op, inputs: ['x', 'axes'], attrs: { keepdims: r.int(0, 1) } }, ins: [x, fromNumbers('int64', [axes.length], axes)], tol: 1e-4 };
  },
  depthSpace: (r) => {
    const b = r.int(1, 3), d2s = r.next() < 0.5;
    const x = randomTensor(r, 'float32', d2s ? [r.int(1, 2), b * b * r.int(1, 3), r.int(1, 4), r.int(1, 4)] : [r.int(1, 2), r.int(1, 3), b * r.int(1, 3), b * r.int(1, 3)]);
    return { node: { op: d2s ? 'DepthToSpace' : 'SpaceToDepth', inputs: ['x'], attrs: { blocksize: b, ...(d2s ? { mode: r.pick(['DCR', 'CRD']) } : {}) } }, ins: [x], tol: 0 };
  },
  InstanceNormalization: (r) => {
    const C = r.int(1, 5);
    return { node: { op: 'InstanceNormalization', inputs: ['x', 's', 'b'], attrs: { epsilon: 1e-5 } }, ins: [randomTensor(r, 'float32', [r.int(1, 2), C, r.int(1, 6), r.int(1, 6)]), randomTensor(r, 'float32', [C]), randomTensor(r, 'float32', [C])] };
  },
  GlobalMaxPool: (r) => ({ node: { op: 'GlobalMaxPool', inputs: ['x'], attrs: {} }, ins: [randomTensor(r, 'float32', [r.int(1, 2), r.int(1, 5), r.int(1, 9), r.int(1, 9)])], tol: 0 }),
  unary: (r) => {
    const op = GPU_UNARY[gpuUnaryTurn++ % GPU_UNARY.length];
    const x = randomTensor(r, 'float32', [r.int(1, 3), r.int(1, 40)]);
    if (op === 'Sqrt' || op === 'Log') (x.data as Float32Array).forEach((v, i, a) => (a[i] = Math.abs(v) + 0.1));
    return { node: { op, inputs: ['x'], attrs: {} }, ins: [x] };
  },
  binary: (r) => {
    const op = GPU_BINARY[gpuBinaryTurn++ % GPU_BINARY.length];
    const s = Array.from({ length: r.int(1, 5) }, () => r.int(1, 4)), t = s.map((d) => (r.next() < 0.4 ? 1 : d)).slice(r.int(0, s.length - 1));
    const a = randomTensor(r, 'float32', s), b = randomTensor(r, 'float32', t);
    // Pow: positive bases, and negative ones with integer exponents.
    if (op === 'Pow') (b.data as Float32Array).forEach((v, i, q) => (q[i] = Math.round(v)));
    return { node: { op, inputs: ['a', 'b'], attrs: {} }, ins: r.next() < 0.5 || op === 'PRelu' ? [a, b] : [b, a] };
  },
};

/** One node as a graph: inputs given either as graph inputs (uploaded per call) or as constants (uploaded once). */
async function runNode(node: Omit<RuntimeNode, 'name' | 'outputs'>, ins: RuntimeTensor[], outputs: number, asConst: boolean[], opset = 18) {
  const outs = Array.from({ length: outputs }, (_, i) => `y${i}`);
  const n: RuntimeNode = { ...node, inputs: node.inputs.map((name, i) => (ins[i] ? name : '')), name: 'n', outputs: outs };
  const consts = new Map<string, RuntimeTensor>();
  const inputs: { name: string; dtype: RuntimeTensor['dtype']; shape: number[] }[] = [];
  const feeds: Record<string, RuntimeTensor> = {};
  n.inputs.forEach((name, i) => {
    if (!name || !ins[i]) return;
    // Scalars after the first input (Clip's bounds) are constants, as in real models.
    if (asConst[i] || ins[i].dtype !== 'float32' || (i > 0 && ins[i].data.length === 1)) consts.set(name, ins[i]);
    else {
      inputs.push({ name, dtype: ins[i].dtype, shape: ins[i].shape });
      feeds[name] = ins[i];
    }
  });
  // A node with only constant inputs still needs a graph input: an unused one.
  if (!inputs.length) {
    inputs.push({ name: 'unused', dtype: 'float32', shape: [1] });
    feeds.unused = fromNumbers('float32', [1], [0]);
  }
  const session = new Session({ inputs, outputs: outs.map((name) => ({ name, dtype: 'float32', shape: null })), nodes: [n], consts, opset });
  const profile: NodeProfile[] = [];
  const first = await session.run(feeds, { backend: 'webgpu', profile });
  const again = await session.run(feeds, { backend: 'webgpu' });
  return { first: outs.map((o) => first[o]), again: outs.map((o) => again[o]), kernel: profile[0].kernel };
}

test('every WebGPU kernel equals its reference twin on generated cases, first call and after, inputs uploaded or constant', { skip }, async () => {
  const r = rng(91);
  const hit = new Set<string>();
  const families = [...Object.keys(CASES).map((f) => ['cpu', f]), ...Object.keys(GPU_CASES).map((f) => ['gpu', f])];
  for (let i = 0; i < 30 * families.length; i++) {
    const [where, fam] = families[i % families.length];
    const c = where === 'cpu' ? { outputs: 1, ...CASES[fam](r) } : GPU_CASES[fam](r);
    const outputs = c.outputs ?? 1;
    const n: RuntimeNode = { ...c.node, name: 'n', outputs: Array.from({ length: outputs }, (_, j) => `y${j}`) };
    let ref: RuntimeTensor[];
    try {
      ref = await opDef(n.op)!.run(c.ins, n, { opset: c.opset ?? 18 });
    } catch (e) {
      if (e instanceof OpError) continue;
      throw e;
    }
    const got = await runNode(c.node, c.ins, outputs, c.ins.map(() => r.next() < 0.4), c.opset);
    hit.add(`${n.op}:${got.kernel}`);
    const at = `${fam} ${n.op} ${JSON.stringify(n.attrs)} [${c.ins.map((t) => t?.shape.join('x') ?? '-').join(', ')}] via ${got.kernel}`;
    ref.slice(0, outputs).forEach((want, j) => {
      close(got.first[j], want, `${at} output ${j}`, c.tol === 0 ? 0 : 2e-4);
      close(got.again[j], want, `${at} output ${j} (again)`, c.tol === 0 ? 0 : 2e-4);
    });
  }
  // Each WebGPU kernel ran at least once (a kernel that stops applying fails here).
  const ops: string[] = gpuOps();
  assert.ok(ops.length >= 40, `${ops.length} ops with WebGPU kernels`);
  for (const op of ops) {
    if (op === 'Shape' || op === 'Dropout' || op === 'Squeeze') continue; // covered by the model tests below
    // Layers on codes have a test of their own (below).
    for (const k of (gpuKernelsFor(op) as { variant: string }[]).filter((q) => !q.variant.startsWith('codes-'))) {
      assert.ok(hit.has(`${op}:webgpu:${k.variant}`), `${op} webgpu:${k.variant} never ran (family ${familyOf(op)}; ran: ${[...hit].filter((h) => h.startsWith(`${op}:`)).join(', ') || 'nothing'})`);
    }
  }
});

const { nsfwjsModelPath } = await import(new URL('../../dist/bench/models.js', import.meta.url).href);
const NSFWJS: string | null = (() => {
  try {
    return nsfwjsModelPath('mobilenet_v2');
  } catch {
    return null;
  }
})();

test('a whole imported model runs on WebGPU: every node on the device, outputs equal to the wasm run, plans reused', { skip: skip || (NSFWJS ? false : 'nsfwjs is not installed') }, async () => {
  const m = await importModel(NSFWJS!);
  const shape = m.inputShape(1), n = shape.reduce((a, b) => a * b, 1);
  const r = rng(5);
  const x = { data: Float32Array.from({ length: n }, () => r.next()), shape };
  const want = (await m.run(x))[m.outputs[0].name].data as Float32Array;
  const profile: NodeProfile[] = [];
  const gpu: { crossedBytes?: number; dispatches?: number } = {};
  for (let round = 0; round < 2; round++) {
    const got = (await m.run(x, { backend: 'webgpu', profile: round ? undefined : profile, gpu }))[m.outputs[0].name].data as Float32Array;
    const big = Math.max(...Array.from(want, Math.abs));
    want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 1e-4 * big, `round ${round} [${i}] ${got[i]} vs ${v}`));
  }
  assert.deepEqual(profile.filter((p) => !p.kernel.startsWith('webgpu:')).map((p) => `${p.op} ${p.kernel}`), [], 'nodes off the device');
  assert.equal(gpu.crossedBytes, 0);
  assert.ok((gpu.dispatches ?? 0) >= 50, `${gpu.dispatches} dispatches`);
});

test('on WebGPU, ops without a GPU kernel run on the CPU: results exact, crossings counted per node; sizes bind per call', { skip }, async () => {
  // Add on the device, Shape from the shape alone, Tile and Greater on the CPU, then Mul back on the device.
  const graph: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32' as const, shape: ['n', 3, 'h'] }],
    outputs: [{ name: 'y', dtype: 'float32' as const, shape: null }, { name: 's', dtype: 'int64' as const, shape: null }, { name: 'pos', dtype: 'bool' as const, shape: null }],
    nodes: [
      { name: 'add', op: 'Add', inputs: ['x', 'one'], outputs: ['a'], attrs: {} },
      { name: 'shape', op: 'Shape', inputs: ['a'], outputs: ['s'], attrs: {} },
      { name: 'max', op: 'Tile', inputs: ['a', 'reps'], outputs: ['m'], attrs: {} },
      { name: 'mul', op: 'Mul', inputs: ['a', 'm'], outputs: ['y'], attrs: {} },
      { name: 'gt', op: 'Greater', inputs: ['y', 'one'], outputs: ['pos'], attrs: {} },
    ],
    consts: new Map([['one', fromNumbers('float32', [], [1])], ['reps', fromNumbers('int64', [3], [1, 1, 1])]]),
    opset: 13,
  };
  const s = new Session(graph);
  for (const [N, H] of [[1, 4], [2, 7], [1, 4]]) {
    const x = fromNumbers('float32', [N, 3, H], Array.from({ length: N * 3 * H }, (_, i) => (i % 5) - 2));
    const want = await s.run({ x }, { backend: 'ref' });
    const profile: NodeProfile[] = [];
    const got = await s.run({ x }, { backend: 'webgpu', profile });
    for (const k of ['y', 's', 'pos']) close(got[k], want[k], `${k} [${N},3,${H}]`, 0);
    const by = Object.fromEntries(profile.map((p) => [p.node, p]));
    assert.match(by.add.kernel, /^webgpu:/);
    assert.match(by.shape.kernel, /^webgpu:host/);
    assert.doesNotMatch(by.max.kernel, /^webgpu:/);
    // Tile read the sum from the device; Mul's CPU input went up.
    assert.equal(by.max.crossedBytes, N * 3 * H * 4);
    assert.equal(by.mul.crossedBytes, N * 3 * H * 4);
  }
});

test('on WebGPU, a node whose output would exceed the largest storage binding runs on the CPU, in that call and the next: results exact', { skip }, async () => {
  // Expand makes 34M floats (134 MB) from one row: over the 128 MiB binding of lavapipe and many GPUs.
  const graph: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32' as const, shape: [1, 8200] }],
    outputs: [{ name: 'y', dtype: 'float32' as const, shape: null }],
    nodes: [
      { name: 'add', op: 'Add', inputs: ['x', 'one'], outputs: ['a'], attrs: {} },
      { name: 'expand', op: 'Expand', inputs: ['a', 'to'], outputs: ['e'], attrs: {} },
      { name: 'sum', op: 'ReduceSum', inputs: ['e', 'axes'], outputs: ['y'], attrs: { keepdims: 0 } },
    ],
    consts: new Map([['one', fromNumbers('float32', [], [1])], ['to', fromNumbers('int64', [2], [4100, 8200])], ['axes', fromNumbers('int64', [1], [1])]]),
    opset: 13,
  };
  const s = new Session(graph);
  const x = fromNumbers('float32', [1, 8200], Array.from({ length: 8200 }, (_, i) => (i % 7) - 3));
  const want = await s.run({ x }, { backend: 'ref' });
  for (const round of ['first call', 'second call']) {
    const profile: NodeProfile[] = [];
    const got = await s.run({ x }, { backend: 'webgpu', profile });
    close(got.y, want.y, round, 0);
    const by = Object.fromEntries(profile.map((p) => [p.node, p]));
    assert.match(by.add.kernel, /^webgpu:/, round);
    assert.doesNotMatch(by.expand.kernel, /^webgpu:/, round);
  }
});

test('ONNX conformance on WebGPU: the same tests pass as on the CPU kernels', { skip: skip || (existsSync(ONNX_TESTDATA) ? false : `ONNX's backend test data is not installed at ${ONNX_TESTDATA}`) }, async () => {
  const cpu = await conformance(ONNX_TESTDATA, { backend: 'auto' });
  const gpu = await conformance(ONNX_TESTDATA, { backend: 'webgpu' });
  const passed = (cs: typeof cpu) => new Set(cs.filter((c) => c.status === 'pass').map((c) => `${c.suite}/${c.name}`));
  const a = passed(cpu), b = passed(gpu);
  assert.ok(b.size >= 500, `${b.size} pass on WebGPU`);
  assert.deepEqual([...a].filter((c) => !b.has(c)), [], 'pass on the CPU, fail on WebGPU');
  assert.deepEqual([...b].filter((c) => !a.has(c)), [], 'pass on WebGPU, fail on the CPU');
});

test('bench-webgpu-models: the plain WebGPU call of a model, checked against wasm, with its placement counted', { skip: skip || (NSFWJS ? false : 'nsfwjs is not installed') }, async () => {
  const { benchWebgpuModels, webgpuModelsReport } = await import(new URL('../../dist/bench/webgpu-models.js', import.meta.url).href);
  const rows = await benchWebgpuModels([NSFWJS!], [1], 1, () => {}, [0, 8]);
  assert.deepEqual(rows.map((r: { bits: number }) => r.bits), [0, 8]);
  for (const r of rows) assert.ok(r.ms > 0 && r.relError < 1e-4 && r.offDevice === 0 && r.nodes > 50, JSON.stringify(r));
  const md: string = webgpuModelsReport(rows, 'test adapter', [{ model: 'mobilenet_v2', impl: 'torch-float16-channels-last', batch: 1, medianMs: rows[0].ms / 2 }], 'cmd');
  assert.match(md, /\| mobilenet_v2 \| float32 \| 1 \| [\d.]+ \| - \| [\d.]+ \| 2\.0x \|/);
  assert.match(md, /\| mobilenet_v2 \| 8-bit codes \| 1 \|/);
});

/** One Conv or Gemm layer as a graph with its weights (and bias) as constants. */
function layerGraph(r: Rng, dense: boolean): { graph: RuntimeGraph; x: RuntimeTensor } {
  const C = r.int(1, 40), O = r.int(1, 70), g = dense ? 1 : r.pick([1, 1, 2]);
  const Cg = dense ? C : C - (C % g) || g, Og = O - (O % g) || g;
  const k = dense ? 1 : r.pick([1, 3]);
  const w = randomTensor(r, 'float32', dense ? [Og, Cg] : [Og, Cg / g, k, k]);
  const b = randomTensor(r, 'float32', [Og]);
  const xs = dense ? [r.int(1, 3), Cg] : [r.int(1, 2), Cg, r.int(3, 12), r.int(3, 12)];
  const x = randomTensor(r, 'float32', xs);
  const attrs: RuntimeNode['attrs'] = dense ? { transB: 1 } : { group: g, pads: [k >> 1, k >> 1, k >> 1, k >> 1], strides: [r.int(1, 2), r.int(1, 2)] };
  if (r.next() < 0.5) Object.assign(attrs, { _act: 'clip', _min: 0, _max: 6 });
  const graph: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: xs }], outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    nodes: [{ name: 'layer', op: dense ? 'Gemm' : 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs }],
    consts: new Map([['w', w], ['b', b]]), opset: 13,
  };
  return { graph, x };
}

test('layers on activation codes on WebGPU, every variant (int32 GEMM, dot4U8Packed, PCILT look-ups): calibrated ranges give the CPU layer bit for bit, measured ranges within a code step', { skip }, async () => {
  const gpu = await getGpu();
  const r = rng(23), variants = new Set<string>();
  for (let i = 0; i < 24; i++) {
    const dense = i % 3 === 2, bits = r.pick([1, 2, 2, 4, 8]);
    const { graph, x } = layerGraph(r, dense);
    const s = new Session(graph);
    const stat = i % 2 === 0;
    const xd = x.data as Float32Array;
    let lo = Infinity, hi = -Infinity;
    for (const v of xd) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    // A static range that clips a little (as calibration does), or none: measured per input.
    const range: [number, number] = [lo * 0.8, hi * 0.9];
    const quant = { bits, ...(stat ? { ranges: { x: range } } : {}) };
    if (stat) {
      // A third of the values on or next to a rounding tie of x / scale (scale as activationQuant forms it).
      const L = 2 ** bits - 1, scale = Math.fround((Math.max(range[1], 0) - Math.min(range[0], 0)) / L);
      xd.forEach((v, j) => {
        if (j % 3 === 0) xd[j] = Math.fround((Math.round(v / scale) + 0.5) * scale) * (j % 2 ? 1 : 1 + 2 ** -23);
      });
    }
    const want = (await s.run({ x }, { quant })).y.data as Float32Array;
    const profile: NodeProfile[] = [];
    // Through the session (the faster variant, measured), and each variant on its own.
    const runs: [string, Float32Array][] = [['session', (await s.run({ x }, { backend: 'webgpu', quant, profile })).y.data as Float32Array]];
    assert.match(profile[0].kernel, /^webgpu:codes-(i32-gemm-tiled|dot4-gemm-tiled|pcilt)$/);
    const node = graph.nodes[0], ctx = { opset: 13, quant, constant: (t: RuntimeTensor) => t === graph.consts.get('w') || t === graph.consts.get('b'), device: { dot4: gpu.dot4 } };
    const ins = [x, graph.consts.get('w'), graph.consts.get('b')];
    for (const k of gpuKernelsFor(node.op).filter((q: { variant: string }) => q.variant.startsWith('codes-'))) {
      if (!k.supports(ins, node, ctx)) continue;
      const run = new GpuRun(gpu, ctx.constant);
      const [y] = await run.download(k.run(ins, node, ctx, run));
      runs.push([k.variant, y.data as Float32Array]);
    }
    for (const [v] of runs) variants.add(v);
    const big = Math.max(...Array.from(want, Math.abs), 1e-6);
    for (const [variant, got] of runs) {
      const at = `case ${i}: ${node.op} ${JSON.stringify(node.attrs)} x [${x.shape}] ${bits} bits ${stat ? 'static' : 'measured'} via ${variant}`;
      want.forEach((v, j) => {
        if (stat) assert.equal(got[j], v, `${at} [${j}]`);
        else assert.ok(Math.abs(got[j] - v) <= 0.02 * big, `${at} [${j}] ${got[j]} vs ${v}`);
      });
    }
  }
  assert.deepEqual([...variants].sort(), ['codes-i32-gemm-tiled', 'codes-pcilt', ...(gpu.dot4 ? ['codes-dot4-gemm-tiled'] : []), 'session'].sort());
});

test('a calibrated 4-bit model on WebGPU: every layer on codes on the device, outputs equal to the CPU run', { skip: skip || (NSFWJS ? false : 'nsfwjs is not installed') }, async () => {
  const m = await importModel(NSFWJS!, { activationBits: 4 });
  const shape = m.inputShape(1), n = shape.reduce((a, b) => a * b, 1);
  const r = rng(8);
  const input = () => ({ data: Float32Array.from({ length: n }, () => r.next()), shape });
  await m.calibrate([input(), input()], { method: 'minmax' });
  const x = input();
  const want = (await m.run(x))[m.outputs[0].name].data as Float32Array;
  const profile: NodeProfile[] = [];
  const got = (await m.run(x, { backend: 'webgpu', profile }))[m.outputs[0].name].data as Float32Array;
  assert.deepEqual(profile.filter((p) => !p.kernel.startsWith('webgpu:')).map((p) => `${p.op} ${p.kernel}`), []);
  assert.ok(profile.filter((p) => /^webgpu:codes-/.test(p.kernel) && p.candidates && Object.keys(p.candidates).length >= 2).length >= 50);
  want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 1e-5, `[${i}] ${got[i]} vs ${v}`));
});

test('a refitted 3-bit model on WebGPU: refitted 1 x 1, depthwise and grouped weights run on the device, outputs equal to the CPU run', { skip }, async () => {
  const m = new Model(null, { activationBits: 3 }, refitNet(10));
  const r = rng(9);
  const input = () => ({ data: Float32Array.from({ length: 3 * 144 }, () => r.next() * 2 - 1), shape: [1, 3, 12, 12] });
  await m.calibrate([input(), input()], { method: 'mse', refit: Array.from({ length: 8 }, input), refitLayers: 'all' });
  assert.deepEqual(Object.entries(m.meta.layers ?? {}).filter(([, l]) => l.weight).map(([k]) => k).sort(), ['depthwise', 'expand', 'grouped', 'project']);
  for (let i = 0; i < 3; i++) {
    const x = input();
    const want = (await m.run(x)).y.data as Float32Array;
    const profile: NodeProfile[] = [];
    const got = (await m.run(x, { backend: 'webgpu', profile })).y.data as Float32Array;
    assert.deepEqual(profile.filter((p) => !p.kernel.startsWith('webgpu:')).map((p) => `${p.op} ${p.kernel}`), []);
    assert.ok(profile.filter((p) => /^webgpu:codes-/.test(p.kernel)).length >= 4, profile.map((p) => p.kernel).join());
    want.forEach((v, j) => assert.ok(Math.abs(got[j] - v) <= 1e-5, `run ${i} [${j}] ${got[j]} vs ${v}`));
  }
});

test('a device lost during a whole-model run gives a clear error, and the next run gets a new device and the same outputs', { skip: skip || (NSFWJS ? false : 'nsfwjs is not installed') }, async () => {
  const { KernelError } = await import('faster-cnn');
  const m = await importModel(NSFWJS!);
  const shape = m.inputShape(1), n = shape.reduce((a, b) => a * b, 1);
  const x = { data: Float32Array.from({ length: n }, (_, i) => (i % 97) / 97), shape };
  const name = m.outputs[0].name;
  const good = (await m.run(x, { backend: 'webgpu' }))[name].data as Float32Array;
  const before = await getGpu();
  // Lose the device while the run waits for its result (lavapipe takes ~0.5 s for this model).
  const pending = m.run(x, { backend: 'webgpu' });
  setTimeout(() => before.device.destroy(), 30);
  const outcome = await pending.then(() => null, (e: unknown) => e);
  if (outcome !== null) assert.ok(outcome instanceof KernelError && /WebGPU device was (destroyed|lost)/.test((outcome as Error).message), String(outcome));
  const again = (await m.run(x, { backend: 'webgpu' }))[name].data as Float32Array;
  assert.notEqual(await getGpu(), before);
  assert.deepEqual(Array.from(again), Array.from(good));
});

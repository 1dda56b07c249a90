import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import {
  ArgumentError, FLOAT, OpError, ONNX_DT as DT, Session, getEngine, opDef, writeOnnx, encodeOnnx, fromNumbers, importModel, kernelsFor, onnxTensor as tensor, registeredOps, saveModel, loadModel,
  type RuntimeGraph, type RuntimeNode, type RuntimeTensor, type DType, type NodeProfile,
} from 'faster-cnn';
import { conformance, ONNX_TESTDATA } from 'faster-cnn';
import { rng } from './helpers.js';
import { CASES, close, familyOf, randomTensor } from './op-cases.js';

const require = createRequire(import.meta.url);

/**
 * A node run by the reference op and by every registered fast kernel that says it applies,
 * each kernel called twice (its first call and a later one).
 */
async function everyKernel(node: Omit<RuntimeNode, 'name' | 'outputs'>, ins: RuntimeTensor[], opset = 18, outputs = 1) {
  const n: RuntimeNode = { ...node, name: 'n', outputs: Array.from({ length: outputs }, (_, j) => `y${j}`) };
  const ctx = { opset };
  let ref: RuntimeTensor[];
  try {
    ref = await opDef(n.op)!.run(ins, n, ctx);
  } catch (e) {
    // A generated shape the op refuses (a window larger than the input): no case.
    if (e instanceof OpError) return null;
    throw e;
  }
  const runs: { kernel: string; first: RuntimeTensor[]; again: RuntimeTensor[] }[] = [];
  for (const k of kernelsFor(n.op).filter((q) => q.variant !== 'int-pcilt-or-direct')) {
    if (!k.supports(ins, n, ctx)) continue;
    const first = (await k.run(ins, n, ctx)).map((t) => ({ ...t, data: t.data.slice() }));
    const again = await k.run(ins, n, ctx);
    runs.push({ kernel: `${k.backend}:${k.variant}`, first, again });
  }
  return { ref, runs };
}

test('every fast kernel equals its reference twin on generated cases, first call and after', async () => {
  const ops = registeredOps().filter((op) => kernelsFor(op).some((k) => k.variant !== 'int-pcilt-or-direct'));
  assert.ok(ops.length >= 25, `${ops.length} ops with fast kernels`);
  await getEngine();
  const r = rng(77);
  const hit = new Set<string>();
  for (let i = 0; i < 700; i++) {
    const fam = Object.keys(CASES)[i % Object.keys(CASES).length];
    const c = CASES[fam](r);
    const all = await everyKernel(c.node, c.ins, c.opset, c.outputs);
    if (!all) continue;
    for (const { kernel, first, again } of all.runs) {
      hit.add(`${c.node.op}:${kernel}`);
      const at = `${fam} ${c.node.op} ${JSON.stringify(c.node.attrs)} [${c.ins.map((t) => t?.shape.join('x') ?? '-').join(', ')}] via ${kernel}`;
      assert.equal(first.length, all.ref.length, at);
      all.ref.forEach((want, j) => {
        close(first[j], want, `${at} output ${j}`, c.tol ?? 1e-4);
        close(again[j], want, `${at} output ${j} (again)`, c.tol ?? 1e-4);
      });
    }
  }
  // Each fast kernel ran at least once on these cases (a kernel that stops applying fails here).
  for (const op of ops) {
    for (const k of kernelsFor(op).filter((q) => q.variant !== 'int-pcilt-or-direct')) {
      assert.ok(CASES[familyOf(op)], `no generated cases for ${op}`);
      assert.ok(hit.has(`${op}:${k.backend}:${k.variant}`), `${op} ${k.backend}:${k.variant} never ran (ran: ${[...hit].filter((h) => h.startsWith(`${op}:`)).join(', ')})`);
    }
  }
});

const conformanceSkip = existsSync(ONNX_TESTDATA) ? false : process.env.FASTER_CNN_REQUIRE_MODELS ? false
  : `ONNX's backend test data is not installed (apt-get install libonnx-testdata) at ${ONNX_TESTDATA}`;

test('ONNX backend conformance: at least 95% of the vision-op tests pass, through the fast kernels and the reference', { skip: conformanceSkip }, async () => {
  for (const backend of ['auto', 'ref'] as const) {
    const cases = await conformance(ONNX_TESTDATA, { backend });
    const run = cases.filter((c) => c.status !== 'skip'), pass = run.filter((c) => c.status === 'pass');
    assert.ok(run.length >= 500, `${run.length} tests counted`);
    assert.ok(pass.length >= 0.95 * run.length, `${backend}: ${pass.length}/${run.length}: ${run.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.why}`).slice(0, 10).join('\n')}`);
  }
});

/** A model with two inputs (one with a named batch size) and outputs of three dtypes, written with our ONNX writer. */
function multiModel(): Uint8Array {
  return encodeOnnx({
    name: 'multi',
    inputs: [{ name: 'image', dataType: DT.FLOAT, dims: ['batch', 2, 'h', 'w'] }, { name: 'offset', dataType: DT.FLOAT, dims: ['batch', 2, 1, 1] }],
    outputs: [{ name: 'sum', dataType: DT.FLOAT, dims: ['batch', 2, 'h', 'w'] }, { name: 'size', dataType: DT.INT64, dims: [4] }, { name: 'positive', dataType: 9, dims: ['batch', 2, 'h', 'w'] }],
    initializers: [tensor('zero', DT.FLOAT, [], Float32Array.of(0))],
    nodes: [
      { op: 'Add', inputs: ['image', 'offset'], outputs: ['sum'] },
      { op: 'Shape', inputs: ['sum'], outputs: ['size'] },
      { op: 'Greater', inputs: ['sum', 'zero'], outputs: ['positive'] },
    ],
  });
}

test('models with several inputs and outputs: run() takes and returns them by name; named sizes bind per call; bad feeds are typed errors', async () => {
  const m = await importModel(multiModel());
  assert.deepEqual(m.inputs.map((i) => [i.name, i.dtype, i.shape]), [['image', 'float32', ['batch', 2, 'h', 'w']], ['offset', 'float32', ['batch', 2, 1, 1]]]);
  assert.deepEqual(m.outputs.map((o) => o.name), ['sum', 'size', 'positive']);
  for (const [N, H, W] of [[1, 3, 4], [2, 5, 1], [1, 3, 4]]) {
    const image = { data: Float32Array.from({ length: N * 2 * H * W }, (_, i) => i - 5), shape: [N, 2, H, W] };
    const offset = { data: Float32Array.from({ length: N * 2 }, (_, i) => i), shape: [N, 2, 1, 1] };
    const y = await m.run({ image, offset });
    assert.equal(y.size.dtype, 'int64');
    assert.deepEqual(Array.from(y.size.data as BigInt64Array, Number), [N, 2, H, W]);
    assert.equal(y.positive.dtype, 'bool');
    for (let i = 0; i < image.data.length; i++) {
      const v = image.data[i] + offset.data[Math.floor(i / (H * W))];
      assert.equal((y.sum.data as Float32Array)[i], v);
      assert.equal((y.positive.data as Uint8Array)[i], v > 0 ? 1 : 0);
    }
  }
  const ok = { image: { data: new Float32Array(12), shape: [1, 2, 2, 3] }, offset: { data: new Float32Array(2), shape: [1, 2, 1, 1] } };
  const bad = [
    [{ image: ok.image }, /feeds\["offset"\]/],
    [{ ...ok, image: { data: new Float32Array(12), shape: [1, 2, 6] } }, /feeds\["image"\]\.shape .* \[batch,2,h,w\]/],
    [{ ...ok, image: { data: new Float32Array(12), shape: [1, 3, 2, 2] } }, /feeds\["image"\]\.shape/],
    [{ ...ok, offset: { data: new Float32Array(4), shape: [2, 2, 1, 1] } }, /batch = 1 as in the other inputs/],
    [{ ...ok, image: { data: new Int32Array(12), shape: [1, 2, 2, 3] } }, /feeds\["image"\]\.dtype .* float32/],
    [{ ...ok, image: { data: new Float32Array(5), shape: [1, 2, 2, 3] } }, /feeds\["image"\]/],
    [{ ...ok, extra: ok.image }, /only the model's inputs/],
  ] as const;
  for (const [feeds, re] of bad) await assert.rejects(m.run(feeds as never), (e: unknown) => e instanceof ArgumentError && re.test(e.message), JSON.stringify(Object.keys(feeds)));
  await assert.rejects(m.predict({ data: new Float32Array(12), shape: [1, 2, 2, 3] }), /use run\(feeds\)/);
});

const onnxPython = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

/** The bytes of the ONNX model (opset 13) the onnx Python package builds from graph `g` made by `lines` (h: onnx.helper, T: TensorProto, v: a value info). */
function onnxFromPython(lines: string[]): Uint8Array {
  const script = [
    'import sys', 'from onnx import helper as h, TensorProto as T', 'v = lambda n, t, s: h.make_tensor_value_info(n, t, s)', ...lines,
    "sys.stdout.buffer.write(h.make_model(g, opset_imports=[h.make_opsetid('', 13)]).SerializeToString())",
  ].join('\n');
  const py = spawnSync('/usr/bin/python3', ['-c', script]);
  assert.equal(py.status, 0, String(py.stderr));
  return new Uint8Array(py.stdout);
}

/**
 * ONNX If whose branches read outer values (a computed one and a graph input), built with the onnx
 * Python package: onnxruntime-node is the oracle, the condition flipping between calls of one model;
 * a model with a sub-graph does not save to .fcnn (a typed error).
 */
test('ONNX If: the branch the condition picks runs with the outer values it reads, as onnxruntime runs it', { skip: onnxPython || process.env.FASTER_CNN_REQUIRE_MODELS ? false : 'no onnx Python package (apt-get install python3-onnx)' }, async () => {
  const bytes = onnxFromPython([
    "then = h.make_graph([h.make_node('Add', ['sq', 'x'], ['t'])], 'then', [], [v('t', T.FLOAT, [2, 3])])",
    "other = h.make_graph([h.make_node('Relu', ['x'], ['r']), h.make_node('Sub', ['r', 'sq'], ['e'])], 'else', [], [v('e', T.FLOAT, [2, 3])])",
    "g = h.make_graph([h.make_node('Mul', ['x', 'x'], ['sq']), h.make_node('If', ['c'], ['y'], then_branch=then, else_branch=other)], 'g', [v('x', T.FLOAT, [2, 3]), v('c', T.BOOL, [])], [v('y', T.FLOAT, [2, 3])])",
  ]);
  const ort = require('onnxruntime-node');
  const peer = await ort.InferenceSession.create(bytes);
  const m = await importModel(bytes);
  const x = Float32Array.from([1, -2, 3, -0.5, 0, 2.5]);
  for (const c of [true, false, false, true]) {
    const feeds = { x: { dtype: 'float32', shape: [2, 3], data: x }, c: { dtype: 'bool', shape: [], data: Uint8Array.of(c ? 1 : 0) } } as const;
    const got = await m.run(feeds as never);
    const want = (await peer.run({ x: new ort.Tensor('float32', x, [2, 3]), c: new ort.Tensor('bool', Uint8Array.of(c ? 1 : 0), []) })).y;
    assert.deepEqual(Array.from(got.y.data as Float32Array), Array.from(want.data as Float32Array), `c = ${c}`);
  }
  const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-if-`);
  await assert.rejects(saveModel(m, `${dir}/m.fcnn`), /sub-graph/);
});

/**
 * ONNX Loop whose body reads outer values and gives a scan output, built with the onnx Python package:
 * onnxruntime-node is the oracle for trip counts that end the loop, conditions that end it, and no
 * iteration at all, in one model.
 */
test('ONNX Loop: trip count, condition, loop-carried values and scan outputs as onnxruntime runs them', { skip: onnxPython || process.env.FASTER_CNN_REQUIRE_MODELS ? false : 'no onnx Python package (apt-get install python3-onnx)' }, async () => {
  const bytes = onnxFromPython([
    "k = h.make_node('Constant', [], ['k'], value=h.make_tensor('kv', T.FLOAT, [], [1.5]))",
    "body = h.make_graph([k, h.make_node('Mul', ['v', 'k'], ['vk']), h.make_node('Add', ['vk', 'x'], ['v2']), h.make_node('ReduceSum', ['v2'], ['s'], keepdims=0),"
      + " h.make_node('Less', ['s', 'limit'], ['go']), h.make_node('Cast', ['i'], ['fi'], to=T.FLOAT), h.make_node('Add', ['v2', 'fi'], ['scan'])],"
      + " 'body', [v('i', T.INT64, []), v('c_in', T.BOOL, []), v('v', T.FLOAT, [2, 3])], [v('go', T.BOOL, []), v('v2', T.FLOAT, [2, 3]), v('scan', T.FLOAT, [2, 3])])",
    "g = h.make_graph([h.make_node('Loop', ['m', 'c', 'x'], ['y', 'scans'], body=body)], 'g', [v('x', T.FLOAT, [2, 3]), v('m', T.INT64, []), v('c', T.BOOL, []), v('limit', T.FLOAT, [])],"
      + " [v('y', T.FLOAT, [2, 3]), v('scans', T.FLOAT, None)])",
  ]);
  const ort = require('onnxruntime-node');
  const peer = await ort.InferenceSession.create(bytes);
  const m = await importModel(bytes);
  const x = Float32Array.from([1, -2, 3, -0.5, 0, 2.5]);
  // 5 trips; stopped by the condition after a few; no trip (m = 0); no trip (c false); 1 trip.
  for (const [trips, c, limit] of [[5, true, 1e9], [50, true, 100], [0, true, 1e9], [5, false, 1e9], [1, true, -1e9]] as const) {
    const at = `m ${trips}, c ${c}, limit ${limit}`;
    const got = await m.run({ x: { dtype: 'float32', shape: [2, 3], data: x }, m: { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(trips)) },
      c: { dtype: 'bool', shape: [], data: Uint8Array.of(c ? 1 : 0) }, limit: { dtype: 'float32', shape: [], data: Float32Array.of(limit) } } as never);
    const want = await peer.run({ x: new ort.Tensor('float32', x, [2, 3]), m: new ort.Tensor('int64', BigInt64Array.of(BigInt(trips)), []),
      c: new ort.Tensor('bool', Uint8Array.of(c ? 1 : 0), []), limit: new ort.Tensor('float32', Float32Array.of(limit), []) });
    for (const name of ['y', 'scans']) {
      assert.deepEqual(got[name].shape, Array.from(want[name].dims, Number), `${at}: ${name} shape`);
      assert.deepEqual(Array.from(got[name].data as Float32Array), Array.from(want[name].data as Float32Array), `${at}: ${name}`);
    }
  }
  const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-loop-`);
  await assert.rejects(saveModel(m, `${dir}/m.fcnn`), /sub-graph/);
});

test('a PyTorch export with dynamic batch, height and width runs every size and round-trips through .fcnn with identical outputs', { skip: existsSync('.cache/torchvision/models.json') || process.env.FASTER_CNN_REQUIRE_MODELS ? false : 'no torchvision exports (/usr/bin/python3 scripts/export-torchvision.py .cache/torchvision)' }, async () => {
  const ort = require('onnxruntime-node');
  const path = '.cache/torchvision/mobilenet_v3_small.onnx';
  const m = await importModel(path);
  const session = await ort.InferenceSession.create(path);
  const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-rt-`);
  await saveModel(m, `${dir}/m.fcnn`);
  const back = await loadModel(`${dir}/m.fcnn`);
  // The graph it runs (fused and folded), written back as ONNX, is the same network to onnxruntime.
  const again = await ort.InferenceSession.create(writeOnnx(m.graph!));
  for (const [N, H, W] of [[1, 224, 224], [2, 160, 96], [1, 97, 131]]) {
    const x = Float32Array.from({ length: N * 3 * H * W }, (_, i) => Math.sin(i * 0.01));
    const ref = (await session.run({ input: new ort.Tensor('float32', x, [N, 3, H, W]) })).logits.data as Float32Array;
    const y = (await m.run({ input: { data: x, shape: [N, 3, H, W] } })).logits;
    assert.deepEqual(y.shape, [N, 1000]);
    const max = Math.max(...Array.from(ref, Math.abs));
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs((y.data as Float32Array)[i] - ref[i]) <= 1e-4 * max, `${N}x${H}x${W} [${i}]`);
    assert.deepEqual((await back.run({ input: { data: x, shape: [N, 3, H, W] } })).logits.data, y.data);
    const z = (await again.run({ input: new ort.Tensor('float32', x, [N, 3, H, W]) })).logits.data as Float32Array;
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(z[i] - ref[i]) <= 1e-4 * max, `exported ${N}x${H}x${W} [${i}]`);
  }
});

test('shape arithmetic runs once per input-shape plan; a shape that depends on data is checked on every call', async () => {
  // NonMaxSuppression keeps a data-dependent number of boxes; Shape -> Gather -> Unsqueeze -> Concat -> ConstantOfShape
  // and a Reshape read it, and a second Shape reads the (fixed) input shape.
  const g: RuntimeGraph = {
    inputs: [{ name: 'boxes', dtype: 'float32', shape: [1, 4, 4] }, { name: 'scores', dtype: 'float32', shape: [1, 1, 4] }],
    outputs: [{ name: 'count', dtype: 'int64', shape: null }, { name: 'fill', dtype: 'float32', shape: null }, { name: 'flat', dtype: 'int64', shape: null }, { name: 'inShape', dtype: 'int64', shape: null }],
    nodes: [
      { op: 'NonMaxSuppression', name: 'nms', inputs: ['boxes', 'scores', 'max', 'iou'], outputs: ['sel'], attrs: {} },
      { op: 'Shape', name: 'shape', inputs: ['sel'], outputs: ['selShape'], attrs: {} },
      { op: 'Gather', name: 'gather', inputs: ['selShape', 'zero'], outputs: ['n'], attrs: { axis: 0 } },
      { op: 'Unsqueeze', name: 'unsqueeze', inputs: ['n', 'axes'], outputs: ['count'], attrs: {} },
      { op: 'Concat', name: 'concat', inputs: ['count', 'two'], outputs: ['fillShape'], attrs: { axis: 0 } },
      { op: 'ConstantOfShape', name: 'fill', inputs: ['fillShape'], outputs: ['fill'], attrs: { value: { dtype: 'float32', shape: [1], data: Float32Array.of(1.5) } } },
      { op: 'Reshape', name: 'reshape', inputs: ['sel', 'minusOne'], outputs: ['flat'], attrs: {} },
      { op: 'Shape', name: 'inShape', inputs: ['boxes'], outputs: ['inShape'], attrs: {} },
    ],
    consts: new Map<string, RuntimeTensor>([
      ['max', fromNumbers('int64', [1], [4])], ['iou', fromNumbers('float32', [1], [0.5])], ['zero', fromNumbers('int64', [], [0])],
      ['axes', fromNumbers('int64', [1], [0])], ['two', fromNumbers('int64', [1], [2])], ['minusOne', fromNumbers('int64', [1], [-1])],
    ]),
    opset: 13,
  };
  const scores = { dtype: 'float32' as const, shape: [1, 1, 4], data: Float32Array.of(0.9, 0.8, 0.7, 0.6) };
  const apart = { dtype: 'float32' as const, shape: [1, 4, 4], data: Float32Array.of(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7) };
  const overlapping = { dtype: 'float32' as const, shape: [1, 4, 4], data: Float32Array.of(0, 0, 1, 1, 0, 0, 1, 1.05, 4, 4, 5, 5, 0, 0.01, 1, 1) };
  const s = new Session(g);
  for (const [call, boxes] of [apart, apart, overlapping, overlapping, overlapping, apart].entries()) {
    const profile: NodeProfile[] = [];
    const got = await s.run({ boxes, scores }, { profile });
    // A new session each time: a plan of its own, nothing reused.
    const want = await new Session(g).run({ boxes, scores });
    for (const o of g.outputs) assert.deepEqual(Array.from(got[o.name].data as ArrayLike<unknown>), Array.from(want[o.name].data as ArrayLike<unknown>), `${o.name}, call ${call}`);
    assert.deepEqual(got.fill.shape, [boxes === apart ? 4 : 2, 2], `call ${call}`);
    const folded = profile.filter((p) => p.kernel === 'folded').map((p) => p.node);
    // Calls 1 and 4 find the count that the call before recorded: its shape arithmetic is reused. Calls 2 and 5 find
    // another count (the plan's recorded results go); call 3 records anew.
    if (call === 1 || call === 4) assert.deepEqual(folded, ['shape', 'gather', 'unsqueeze', 'concat', 'fill', 'inShape'], `call ${call}`);
    else if (call !== 0) assert.ok(!folded.includes('fill'), `call ${call}: ${folded}`);
    // Results are the caller's: changing one does not reach the next call.
    (got.fill.data as Float32Array).fill(-1);
    (got.inShape.data as BigInt64Array).fill(0n);
  }
});

test('a float convolution whose im2col panels would pass 32 MB packs them in runs of pixels: equal to the reference, first call and after', async () => {
  // 128 x 64 x 3 x 3 weights (295 KB: the GEMM path) on 128 x 127 pixels: 37.5 MB of panels, two runs, the last partial.
  const r = rng(808);
  const g: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 64, 128, 127] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: null }],
    nodes: [{ op: 'Conv', name: 'c', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1], _act: 'relu' } }],
    consts: new Map([['w', randomTensor(r, 'float32', [128, 64, 3, 3])], ['b', randomTensor(r, 'float32', [128])]]), opset: 13,
  };
  const s = new Session(g);
  const x = randomTensor(r, 'float32', [1, 64, 128, 127]);
  const want = await s.run({ x }, { backend: 'ref' });
  for (const call of ['first call', 'second call']) {
    const profile: NodeProfile[] = [];
    const got = await s.run({ x }, { profile });
    assert.match(profile[0].kernel, /^wasm:/, call);
    // Sums of 576 products in another order: float32 noise up to ~1e-4 of the terms' size.
    close(got.y, want.y, call, 1e-3);
  }
});

test('weights fed as inputs may change in place between calls: no layout of them is kept', async () => {
  const r = rng(5);
  const g: RuntimeGraph = {
    inputs: [
      { name: 'x', dtype: 'float32', shape: [1, 4, 6, 6] }, { name: 'w', dtype: 'float32', shape: [3, 4, 3, 3] },
      { name: 'a', dtype: 'float32', shape: [2, 5] }, { name: 'b', dtype: 'float32', shape: [5, 7] }, { name: 'wt', dtype: 'float32', shape: [4, 3, 3, 3] },
    ],
    outputs: ['conv', 'matmul', 'gemm', 'convT'].map((name) => ({ name, dtype: 'float32' as const, shape: null })),
    nodes: [
      { op: 'Conv', name: 'c', inputs: ['x', 'w'], outputs: ['conv'], attrs: {} },
      { op: 'MatMul', name: 'm', inputs: ['a', 'b'], outputs: ['matmul'], attrs: {} },
      { op: 'Gemm', name: 'g', inputs: ['a', 'b'], outputs: ['gemm'], attrs: { alpha: 0.5 } },
      { op: 'ConvTranspose', name: 't', inputs: ['x', 'wt'], outputs: ['convT'], attrs: {} },
    ],
    consts: new Map(), opset: 13,
  };
  const s = new Session(g);
  const feeds = { x: randomTensor(r, 'float32', [1, 4, 6, 6]), w: randomTensor(r, 'float32', [3, 4, 3, 3]), a: randomTensor(r, 'float32', [2, 5]), b: randomTensor(r, 'float32', [5, 7]), wt: randomTensor(r, 'float32', [4, 3, 3, 3]) };
  for (let call = 0; call < 3; call++) {
    (feeds.w.data as Float32Array).forEach((_, i, d) => (d[i] = r.next() * 2 - 1));
    (feeds.b.data as Float32Array).forEach((_, i, d) => (d[i] = r.next() * 2 - 1));
    (feeds.wt.data as Float32Array).forEach((_, i, d) => (d[i] = r.next() * 2 - 1));
    const got = await s.run(feeds), want = await s.run(feeds, { backend: 'ref' });
    for (const o of g.outputs) close(got[o.name], want[o.name], `${o.name} call ${call}`);
  }
});

test('a range per input channel: the wasm look-up and direct kernels equal the JS twin bit for bit and a naive integer twin, first call and later; bad ranges are typed errors; files keep them', async () => {
  const { Model } = await import('faster-cnn');
  const r = rng(57);
  // [C, O, H, kernel, groups, pad, bits]; H 0: a dense layer (Gemm) on [1, C].
  const CASES: number[][] = [[6, 8, 9, 3, 1, 1, 4], [8, 8, 7, 3, 8, 1, 2], [5, 7, 1, 1, 1, 0, 8], [12, 6, 10, 3, 3, 1, 3], [16, 4, 0, 1, 1, 0, 2], [3, 5, 6, 3, 1, 2, 1]];
  for (const [C, O, H, k, groups, pad, bits] of CASES) {
    const dense = H === 0, Cg = C / groups, KK = k * k, L = (1 << bits) - 1;
    const wd = Array.from({ length: O * Cg * KK }, () => r.next() * 2 - 1);
    const w = fromNumbers('float32', dense ? [O, C] : [O, Cg, k, k], wd);
    const graph: RuntimeGraph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: dense ? [1, C] : [1, C, H, H] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
      nodes: [dense ? { op: 'Gemm', name: 'l', inputs: ['x', 'w'], outputs: ['y'], attrs: { transB: 1 } }
        : { op: 'Conv', name: 'l', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [pad, pad, pad, pad], group: groups } }],
      consts: new Map([['w', w]]),
    };
    const P = dense ? 1 : H * H;
    // Channels of very different spreads, one of them always 0 (left out of the weights).
    const xd = Array.from({ length: C * P }, (_, i) => (Math.floor(i / P) === 1 ? 0 : (r.next() - 0.3) * (1 + 3 * Math.floor(i / P))));
    const x = fromNumbers('float32', dense ? [1, C] : [1, C, H, H], xd);
    const channelRanges = Array.from({ length: C }, (_, c) => {
      const v = xd.slice(c * P, (c + 1) * P);
      return [Math.min(...v) * 0.8, Math.max(...v) * 0.8] as [number, number];
    });
    const m = new Model(null, { activationBits: bits, layers: { l: { bits, channelRanges } } }, graph);
    const runs = [];
    for (const opts of [{}, {}, { kernel: 'pcilt' as const }, { kernel: 'direct' as const }, { backend: 'js' }]) runs.push((await m.run({ x }, opts)).y.data as Float32Array);
    for (const [i, y] of runs.entries()) assert.deepEqual(y, runs[4], `${[C, O, H, k, groups, pad, bits]}: run ${i} against the JS twin`);
    // Naive twin: codes per channel (ONNX rounding), weights times each channel's scale quantized per output channel, integer sums scaled back.
    const sc = channelRanges.map(([lo, hi]) => { const a = Math.min(lo, 0), b = Math.max(hi, 0); return b > a ? Math.fround((b - a) / L) : 1; });
    const zc = channelRanges.map(([lo], c) => Math.min(L, Math.max(0, Math.round(-Math.min(lo, 0) / sc[c]))));
    const live = channelRanges.map(([lo, hi]) => lo < 0 || hi > 0);
    const code = (c: number, v: number) => {
      const u = Math.fround(v / sc[c]), q = Math.round(u);
      return Math.min(L, Math.max(0, (q - u === 0.5 && q % 2 !== 0 ? q - 1 : q) + zc[c]));
    };
    const Og = O / groups, Ho = dense ? 1 : H + 2 * pad - k + 1;
    for (let o = 0; o < O; o++) {
      const ch = (cg: number) => Math.floor(o / Og) * Cg + cg;
      const f = (cg: number, t: number) => (live[ch(cg)] ? Math.fround(wd[(o * Cg + cg) * KK + t] * sc[ch(cg)]) : 0);
      let mx = 0;
      for (let cg = 0; cg < Cg; cg++) for (let t = 0; t < KK; t++) mx = Math.max(mx, Math.abs(f(cg, t)));
      const ws = mx > 0 ? mx / 127 : 1;
      for (let p = 0; p < Ho * Ho; p++) {
        let sum = 0;
        for (let cg = 0; cg < Cg; cg++) for (let t = 0; t < KK; t++) {
          const yy = Math.floor(p / Ho) + Math.floor(t / k) - pad, xx = (p % Ho) + (t % k) - pad;
          const inside = dense || (yy >= 0 && yy < H && xx >= 0 && xx < H);
          const q = inside ? code(ch(cg), xd[ch(cg) * P + (dense ? 0 : yy * H + xx)]) : zc[ch(cg)];
          sum += Math.max(-127, Math.min(127, Math.round(f(cg, t) / ws))) * (q - zc[ch(cg)]);
        }
        const got = runs[0][o * Ho * Ho + p];
        assert.ok(Math.abs(got - sum * Math.fround(ws)) <= 1e-5 * (1 + Math.abs(got)), `${[C, O, H, k, groups, pad, bits]} [${o}, ${p}]: ${got} vs ${sum * ws}`);
      }
    }
    // A file keeps the ranges.
    const file = `${(await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-channels-`)}/m.fcnn`;
    await saveModel(m, file);
    assert.deepEqual((await (await loadModel(file)).run({ x })).y.data, runs[0]);
  }
  const bad = new Model(null, { activationBits: 4, layers: { l: { bits: 4, channelRanges: [[0, 1]] } } }, {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2, 3, 3] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
    nodes: [{ op: 'Conv', name: 'l', inputs: ['x', 'w'], outputs: ['y'], attrs: {} }], consts: new Map([['w', fromNumbers('float32', [2, 2, 1, 1], [1, 2, 3, 4])]]),
  });
  await assert.rejects(bad.run({ x: fromNumbers('float32', [1, 2, 3, 3], new Array(18).fill(0.5)) }), (e: Error) => e instanceof ArgumentError && /channelRanges/.test(e.message));
});

test('non-uniform activation levels: PCILT on w * level tables, or on bit-serial tables with plane weights for additive levels, equals the multiply-by-level kernel bit for bit and a naive float twin; files keep them', async () => {
  const { Model } = await import('faster-cnn');
  const r = rng(91);
  // Levels on the grids the kernels use, so that they are exactly its integers: max |level| / 64, and for additive
  // levels (level(c) = level(0) + sum of c's bits' steps, run on the layer's bit-serial tables) their span / (2^(bits+2) - 1).
  const LEVELS: { levels: number[]; additive: boolean }[] = [
    { levels: [0, 0.75], additive: true },
    { levels: [-0.5, 0, 0.25, 1], additive: false },
    { levels: [-0.25, 0, 0.75, 1], additive: true },
    // A negative plane weight: look-ups only (the direct kernel's bytes are levels above code 0's).
    { levels: [0, 0.5, -0.25, 0.25], additive: true },
    { levels: [-0.75, -0.25, 0, 0.125, 0.25, 0.5, 0.625, 1], additive: false },
    { levels: [-4, 0, 5, 9, 14, 18, 23, 27].map((v) => v / 27), additive: true },
    { levels: Array.from({ length: 16 }, (_, c) => [3, 7, 15, 38].reduce((a, v, j) => a + ((c >> j) & 1) * v, 0) / 63), additive: true },
  ];
  for (let c = 0; c < 18; c++) {
    const { levels, additive } = LEVELS[c % LEVELS.length], bits = Math.log2(levels.length);
    const dense = c % 4 === 3;
    const C = r.int(1, 4), O = r.int(1, 5), K = dense ? 1 : r.pick([1, 3]), S = r.int(1, 2), P = K === 3 ? r.int(0, 1) : 0;
    // Rows of 16 values and more reach the wasm quantizer's vector loop.
    const xs = dense ? [r.int(1, 3), C] : [r.int(1, 2), C, r.int(3, 7), r.int(3, 20)];
    const w = randomTensor(r, 'float32', dense ? [O, C] : [O, C, K, K]), b = randomTensor(r, 'float32', [O]);
    const graph: RuntimeGraph = {
      inputs: [{ name: 'x', dtype: 'float32', shape: xs }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
      nodes: [dense ? { op: 'Gemm', name: 'n', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { transB: 1 } }
        : { op: 'Conv', name: 'n', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: { kernel_shape: [K, K], pads: [P, P, P, P], strides: [S, S] } }],
      consts: new Map([['w', w], ['b', b]]),
    };
    const m = new Model(null, { activationBits: bits, layers: { n: { bits, levels } } }, graph);
    const x = randomTensor(r, 'float32', xs);
    const at = `${bits}-bit ${dense ? 'dense' : `conv k${K} s${S} p${P}`} [${xs}] -> ${O}`;
    // The default call (additive levels: the wasm look-ups or the wasm direct kernel, as the cost model predicts or
    // the first call measures), the fused wasm layer, the JS steps around the PCILT kernel, and the multiply-by-level reference.
    const auto = await m.run({ x });
    const pcilt = await m.run({ x }, { kernel: 'pcilt' }), direct = await m.run({ x }, { kernel: 'direct' });
    const js = await m.run({ x }, { kernel: 'pcilt', backend: 'js' });
    const kernels = new Set<string>();
    for (const opts of [{ kernel: 'pcilt' as const }, { kernel: 'pcilt' as const, backend: 'js' }, { kernel: 'direct' as const }]) {
      const profile: import('faster-cnn').NodeProfile[] = [];
      await m.run({ x }, { ...opts, profile });
      kernels.add(profile[0].kernel.replace(/-1t$/, ''));
    }
    const kind = additive ? 'additive' : 'levels';
    assert.deepEqual([...kernels], [`wasm-pcilt-${kind}`, `pcilt-${kind}`, `direct-${kind}`], at);
    const profile: import('faster-cnn').NodeProfile[] = [];
    await m.run({ x }, { profile });
    const twoKernels = additive && Array.from({ length: bits }, (_, j) => levels[1 << j] - levels[0]).every((v) => v > 0);
    // Each on the caller's threads or, the layer being small, on one ('-1t').
    const ran = profile[0].kernel.replace(/-1t$/, '');
    assert.ok(twoKernels ? ['wasm-pcilt-additive', 'wasm-direct-additive'].includes(ran) : ran === `wasm-pcilt-${kind}`, `${at}: ${profile[0].kernel}`);
    assert.deepEqual(auto.y.data, direct.y.data, `${at}: the default call against direct`);
    assert.deepEqual(pcilt.y.data, direct.y.data, `${at}: PCILT (wasm) against direct`);
    assert.deepEqual(js.y.data, direct.y.data, `${at}: PCILT (JS steps) against direct`);
    // The naive twin: nearest level per input (ties to the lower one), int8 per-channel weights, padding as level 0.
    const xd = x.data as Float32Array, wd = w.data as Float32Array, bd = b.data as Float32Array;
    const sorted = [...levels].sort((p, q) => p - q);
    const code = (v: number) => sorted.reduce((best, l) => (Math.abs(v - l) < Math.abs(v - best) ? l : best), sorted[0]);
    const Kk = wd.length / O, wq = new Float64Array(wd.length);
    for (let o = 0; o < O; o++) {
      let mx = 0;
      for (let k = 0; k < Kk; k++) mx = Math.max(mx, Math.abs(wd[o * Kk + k]));
      for (let k = 0; k < Kk; k++) wq[o * Kk + k] = Math.round(wd[o * Kk + k] / (mx / 127)) * (mx / 127);
    }
    const [N, H, W] = dense ? [xs[0], 1, 1] : [xs[0], xs[2], xs[3]];
    const OH = dense ? 1 : Math.floor((H + 2 * P - K) / S) + 1, OW = dense ? 1 : Math.floor((W + 2 * P - K) / S) + 1;
    const got = pcilt.y.data as Float32Array;
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      let sum = bd[o];
      for (let ci = 0; ci < C; ci++) for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) {
        const ih = oh * S - P + kh, iw = ow * S - P + kw;
        const v = ih >= 0 && ih < H && iw >= 0 && iw < W ? code(xd[((n * C + ci) * H + ih) * W + iw]) : 0;
        sum += wq[((o * C + ci) * K + kh) * K + kw] * v;
      }
      const y = got[((n * O + o) * OH + oh) * OW + ow];
      assert.ok(Math.abs(y - sum) <= 1e-4 * (1 + Math.abs(sum)), `${at} at ${n},${o},${oh},${ow}: ${y} vs ${sum}`);
    }
    if (c === 0) {
      const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-levels-`);
      await saveModel(m, `${dir}/m.fcnn`);
      const back = await loadModel(`${dir}/m.fcnn`);
      assert.deepEqual((await back.run({ x }, { kernel: 'pcilt' })).y.data, pcilt.y.data);
    }
  }
  // QDQ has no form for them: the writer says so instead of writing uniform codes.
  const { writeQdq } = await import('faster-cnn');
  assert.throws(() => writeQdq({ inputs: [], outputs: [], nodes: [], consts: new Map(), opset: 13 }, { bits: 2, layers: { n: { bits: 2, levels: LEVELS[1].levels } } }), /QDQ has no form for non-uniform levels/);
  // Levels that do not fit the width, or without 0, are refused.
  const bad = new Model(null, { activationBits: 2, layers: { n: { bits: 2, levels: [0.1, 0.2, 0.3, 0.4] } } }, {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
    nodes: [{ op: 'Gemm', name: 'n', inputs: ['x', 'w'], outputs: ['y'], attrs: { transB: 1 } }], consts: new Map([['w', fromNumbers('float32', [1, 2], [1, 2])]]),
  });
  await assert.rejects(bad.run({ x: fromNumbers('float32', [1, 2], [1, 2]) }), /levels.*one of them 0/);
});

test("a saved model keeps what 'auto' chose per layer for this machine; on another machine it measures anew", async () => {
  const { Model, autoChoices, costModel, setCostModel } = await import('faster-cnn');
  // Measured choices (the cost model's predicted ones are tested in cost-model.test.ts).
  const before = costModel();
  setCostModel(null);
  const r = rng(77);
  // A shape no other test uses, so that this process has measured nothing for it yet.
  const w = fromNumbers('float32', [24, 7, 3, 3], Array.from({ length: 24 * 7 * 9 }, () => r.next() * 2 - 1));
  const graph: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 7, 19, 19] }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
    nodes: [{ op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } }], consts: new Map([['w', w]]),
  };
  const x = fromNumbers('float32', [1, 7, 19, 19], Array.from({ length: 7 * 19 * 19 }, () => r.next()));
  const m = new Model(null, { activationBits: 2 }, graph);
  const profile: NodeProfile[] = [];
  const y = await m.run({ x }, { profile });
  assert.ok(profile[0].candidates && Object.keys(profile[0].candidates).length >= 2, 'the first run timed the candidates');
  const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-auto-`);
  await saveModel(m, `${dir}/m.fcnn`);
  const raw = new Uint8Array((await import('node:fs')).readFileSync(`${dir}/m.fcnn`));
  const saved = (await loadModel(raw)).meta.autoChoices!;
  const mine = Object.entries(saved.choices).filter(([k]) => k.startsWith('layer|') && k.includes(',19,19,') && k.includes('|2b|'));
  assert.equal(mine.length, 1, JSON.stringify(saved));
  assert.equal(mine[0][1], profile[0].kernel);
  assert.match(saved.machine, / threads$/);
  // In a process that has not measured the layer (here: its choice forgotten), the saved one is taken as is.
  const { restoreChoices } = await import(new URL('../../dist/backends/auto.js', import.meta.url).href);
  const key = mine[0][0];
  assert.equal(restoreChoices({ machine: 'another CPU | simd | 64 threads', choices: { 'layer|elsewhere': 'wasm-pcilt' } }, saved.machine), 0, 'another machine: nothing taken');
  assert.equal(autoChoices().find((c) => c.key === 'layer|elsewhere'), undefined);
  assert.equal(restoreChoices(saved, saved.machine), 0, 'kinds measured in this process keep their measurement');
  assert.ok(autoChoices().some((c) => c.key === key && !c.restored));
  const back = await loadModel(raw);
  assert.deepEqual((await back.run({ x })).y.data, y.y.data);
  setCostModel(before ?? undefined);
});

test('tuning per-layer widths: deterministic with estimated latency, within its budget, and a tuned model round-trips through .fcnn', async () => {
  const { Model } = await import('faster-cnn');
  const r = rng(31);
  const rand = (shape: number[], scale: number) => fromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r.next() * 2 - 1) * scale));
  const g: RuntimeGraph = {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 12, 12] }], outputs: [{ name: 'p', dtype: 'float32', shape: null }], opset: 13,
    nodes: [
      { op: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['h1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'r1', inputs: ['h1'], outputs: ['a1'], attrs: {} },
      { op: 'Conv', name: 'c2', inputs: ['a1', 'w2', 'b2'], outputs: ['h2'], attrs: { pads: [1, 1, 1, 1], strides: [2, 2] } },
      { op: 'Relu', name: 'r2', inputs: ['h2'], outputs: ['a2'], attrs: {} },
      { op: 'Conv', name: 'dw', inputs: ['a2', 'wd', 'bd'], outputs: ['hd'], attrs: { pads: [1, 1, 1, 1], group: 12 } },
      { op: 'Relu', name: 'rd', inputs: ['hd'], outputs: ['ad'], attrs: {} },
      { op: 'Conv', name: 'c3', inputs: ['ad', 'w3'], outputs: ['h3'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'r3', inputs: ['h3'], outputs: ['a3'], attrs: {} },
      { op: 'GlobalAveragePool', name: 'gap', inputs: ['a3'], outputs: ['g'], attrs: {} },
      { op: 'Flatten', name: 'f', inputs: ['g'], outputs: ['v'], attrs: {} },
      { op: 'Gemm', name: 'fc', inputs: ['v', 'wf'], outputs: ['z'], attrs: { transB: 1 } },
      { op: 'Softmax', name: 's', inputs: ['z'], outputs: ['p'], attrs: { axis: 1 } },
    ],
    consts: new Map([['w1', rand([8, 3, 3, 3], 0.5)], ['b1', rand([8], 0.1)], ['w2', rand([12, 8, 3, 3], 0.3)], ['b2', rand([12], 0.1)], ['wd', rand([12, 1, 3, 3], 0.5)], ['bd', rand([12], 0.1)], ['w3', rand([16, 12, 3, 3], 0.3)], ['wf', rand([5, 16], 1)]]),
  };
  const xs = Array.from({ length: 6 }, () => ({ data: rand([1, 3, 12, 12], 1).data as Float32Array, shape: [1, 3, 12, 12] }));
  const opts = { widths: [8, 4, 2], budget: 0.05, agreement: 0, latency: 'estimated' as const };
  const a = new Model(null, { activationBits: 8 }, g), b = new Model(null, { activationBits: 8 }, g);
  const ra = await a.tune(xs, opts), rb = await b.tune(xs, opts);
  assert.deepEqual(ra.chosen.widths, rb.chosen.widths, 'the same plan from the same calibration set');
  assert.deepEqual(ra.meta, rb.meta);
  assert.deepEqual(ra.tried.map((p) => p.widths), rb.tried.map((p) => p.widths));
  assert.ok(ra.tried.length >= 2 && ra.references.length === 4, `${ra.tried.length} plans, ${ra.references.length} references`);
  assert.ok(ra.chosen.meanAbsDiff <= 0.05, `chosen mean |dp| ${ra.chosen.meanAbsDiff}`);
  assert.ok(Object.values(ra.chosen.widths).some((w) => w > 0 && w < 8), `some layer narrower than 8 bits: ${JSON.stringify(ra.chosen.widths)}`);
  // The depthwise layer is cheaper in float32 than on codes (the estimate's costs): the search starts it there, and the model runs it so.
  assert.equal(ra.tried[1].widths.a2, FLOAT);
  assert.ok(ra.tried.slice(1).every((p) => p.widths.a2 === FLOAT || p.widths.a2 < 8), 'from float32 a group only goes narrower');
  assert.deepEqual(ra.meta.layers.dw, { bits: 0 });
  assert.equal(ra.meta.ranges.a2, undefined);
  const profile: NodeProfile[] = [];
  await a.run({ x: { data: xs[0].data, shape: xs[0].shape } }, { profile });
  assert.ok(!/int|codes|pcilt|direct/.test(profile.find((p) => p.node === 'dw')!.kernel), `dw ran ${profile.find((p) => p.node === 'dw')!.kernel}`);
  // The model now runs the chosen plan; the file keeps it.
  const y = (await a.run({ x: { data: xs[0].data, shape: xs[0].shape } })).p.data;
  const dir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/fcnn-tune-`);
  await saveModel(a, `${dir}/t.fcnn`);
  const back = await loadModel(`${dir}/t.fcnn`);
  assert.deepEqual(back.meta.layers, ra.meta.layers);
  assert.deepEqual((await back.run({ x: { data: xs[0].data, shape: xs[0].shape } })).p.data, y);
  await assert.rejects(a.tune(xs, { widths: [4, 2] }), /widths must be integers 1\.\.8, 8 among them/);
  await assert.rejects(a.tune(xs, { budget: 0 }), /budget must be a positive mean/);
});

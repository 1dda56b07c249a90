import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  FasterCnnError, Model, UnsupportedModelError, decodeAny, decodeWeights, encodeIr, exportOnnx, importModel, loadMnist, loadModel, lowerLegacy,
  optimizeGraph, readOnnx, writeOnnx, Session, type Graph, type GraphNode, type PredictOptions, type Range, type RuntimeGraph, type RuntimeTensor,
} from 'faster-cnn';
import { ONNX_DT as DT, encodeOnnx as encodeModel, onnxTensor as tensor, type OnnxNode, type OnnxTensor } from 'faster-cnn';
import { randomCase, rng } from './helpers.js';

const require = createRequire(import.meta.url);

/** Independent float64 convolution: straight loops over output and kernel. */
function naiveConvF(x: Float32Array, w: Float32Array, xs: number[], ws: number[], a: { stride: number[]; dilation: number[]; pad: number[]; group: number }) {
  const [N, C, H, W] = xs, [O, Cg, KH, KW] = ws;
  const Og = O / a.group;
  const OH = Math.floor((H + a.pad[0] + a.pad[2] - a.dilation[0] * (KH - 1) - 1) / a.stride[0]) + 1;
  const OW = Math.floor((W + a.pad[1] + a.pad[3] - a.dilation[1] * (KW - 1) - 1) / a.stride[1]) + 1;
  const out = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let y = 0; y < OH; y++) for (let xo = 0; xo < OW; xo++) {
    let s = 0;
    const g = Math.floor(o / Og);
    for (let c = 0; c < Cg; c++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const iy = y * a.stride[0] + i * a.dilation[0] - a.pad[0], ix = xo * a.stride[1] + j * a.dilation[1] - a.pad[1];
      if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += x[((n * C + g * Cg + c) * H + iy) * W + ix] * w[((o * Cg + c) * KH + i) * KW + j];
    }
    out[((n * O + o) * OH + y) * OW + xo] = s;
  }
  return { data: out, shape: [N, O, OH, OW] };
}

/** Runs a graph in the importers' NCHW form through the runtime, as importModel does for TF.js models. */
function graphRunner(g: Graph) {
  const m = new Model(null, {}, lowerLegacy(g));
  return {
    run: (x: { data: Float32Array; shape: number[] }, o: PredictOptions & { ranges?: Record<string, Range> } = {}) => {
      m.meta.ranges = o.ranges;
      return m.predict(x, { ...o, activationBits: o.activationBits ?? 0 });
    },
  };
}

function convGraph(c: ReturnType<typeof randomCase>, w: Float32Array, extra: GraphNode[] = [], bias?: Float32Array, act = 'none'): Graph {
  const attrs = { stride: c.stride, dilation: c.dilation, pad: c.padding, group: c.groups, act };
  const consts = new Map([['w', { shape: [c.O, c.C / c.groups, c.KH, c.KW], data: w }]]);
  if (bias) consts.set('b', { shape: [c.O], data: bias });
  return {
    input: { name: 'x', shape: [c.N, c.C, c.H, c.W], layout: 'nchw' },
    output: extra.length ? extra[extra.length - 1].output : 'y',
    nodes: [{ op: 'conv', name: 'conv', inputs: bias ? ['x', 'w', 'b'] : ['x', 'w'], output: 'y', attrs }, ...extra],
    consts,
  };
}

test('float graph convolution (GEMM, depthwise, grouped) equals a naive loop on random shapes, first call and after', async () => {
  const r = rng(11);
  for (let i = 0; i < 40; i++) {
    const c = randomCase(r, 200_000);
    const x = Float32Array.from({ length: c.N * c.C * c.H * c.W }, () => r.next() * 2 - 1);
    const w = Float32Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.next() * 2 - 1);
    const runner = graphRunner(convGraph(c, w));
    const ref = naiveConvF(x, w, [c.N, c.C, c.H, c.W], [c.O, c.C / c.groups, c.KH, c.KW], { stride: c.stride, dilation: c.dilation, pad: c.padding, group: c.groups });
    for (let call = 0; call < 2; call++) {
      const y = await runner.run({ data: x, shape: [c.N, c.C, c.H, c.W] });
      assert.deepEqual(y.shape, ref.shape, JSON.stringify(c));
      for (let k = 0; k < y.data.length; k++) assert.ok(Math.abs(y.data[k] - ref.data[k]) < 1e-4, `${JSON.stringify(c)} [${k}] ${y.data[k]} vs ${ref.data[k]}`);
    }
  }
});

test('integer graph layers: PCILT and direct give identical outputs, close to float, at 8, 4, 2 and 1 bits', async () => {
  const r = rng(5);
  for (let i = 0; i < 16; i++) {
    const c = randomCase(r, 100_000);
    const x = Float32Array.from({ length: c.N * c.C * c.H * c.W }, () => r.next() * 3 - 1);
    const w = Float32Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.next() * 2 - 1);
    const runner = graphRunner(convGraph(c, w));
    const input = { data: x, shape: [c.N, c.C, c.H, c.W] };
    const f = await runner.run(input);
    for (const bits of [8, 4, 2, 1]) {
      const a = await runner.run(input, { activationBits: bits, kernel: 'pcilt' });
      const b = await runner.run(input, { activationBits: bits, kernel: 'direct' });
      const auto = await runner.run(input, { activationBits: bits });
      assert.deepEqual(a.data, b.data, `${JSON.stringify(c)} ${bits} bits`);
      assert.deepEqual(auto.data, b.data);
      if (bits === 8) {
        // 8-bit codes (step 4/255) and 8-bit weights: each product is off by a small fraction.
        const K = (c.C / c.groups) * c.KH * c.KW;
        for (let k = 0; k < f.data.length; k++) assert.ok(Math.abs(a.data[k] - f.data[k]) < 0.02 * K + 1e-3, `${a.data[k]} vs ${f.data[k]}`);
      }
    }
  }
});

test('integer graph layers in wasm (quantize, kernel, scale-back fused) equal the JS reference twin bit for bit', async () => {
  const r = rng(23);
  const acts = ['none', 'relu', 'relu6'];
  for (let i = 0; i < 24; i++) {
    const c = randomCase(r, 150_000);
    const x = Float32Array.from({ length: c.N * c.C * c.H * c.W }, () => r.next() * 4 - 1.5);
    const w = Float32Array.from({ length: c.O * (c.C / c.groups) * c.KH * c.KW }, () => r.next() * 2 - 1);
    const bias = i % 2 ? Float32Array.from({ length: c.O }, () => r.next() - 0.5) : undefined;
    const act = acts[i % 3];
    const input = { data: x, shape: [c.N, c.C, c.H, c.W] };
    const bits = [8, 4, 2, 1][i % 4];
    // Static ranges that clip (codes at both ends), or measured per input.
    const ranges = i % 3 === 0 ? { x: [-0.5, 1.5] as [number, number] } : undefined;
    const at = `${JSON.stringify(c)} ${bits} bits ${act} bias ${!!bias} static ${!!ranges}`;
    // A fresh runner per check: its first call (which calibrates 'auto') is compared too.
    const ref = await graphRunner(convGraph(c, w, [], bias, act)).run(input, { activationBits: bits, ranges, backend: 'js' });
    for (const kernel of ['pcilt', 'direct', 'auto'] as const) {
      for (const threads of [1, 2]) {
        const runner = graphRunner(convGraph(c, w, [], bias, act));
        for (let call = 0; call < 2; call++) {
          const y = await runner.run(input, { activationBits: bits, ranges, kernel, threads });
          assert.deepEqual(y.data, ref.data, `${at} ${kernel} threads ${threads} call ${call}`);
        }
      }
    }
  }
});

test('max and average pooling (wasm, vector and scalar paths) equal a naive loop on random shapes', async () => {
  const r = rng(31);
  for (let i = 0; i < 40; i++) {
    // The first two are large enough to be split over threads.
    const N = r.int(1, 2), C = i < 2 ? 40 : r.int(1, 5), H = i < 2 ? 40 : r.int(1, 23), W = i < 2 ? 45 : r.int(1, 41);
    const KH = r.int(1, Math.min(4, H)), KW = r.int(1, Math.min(4, W)), sh = r.int(1, 3), sw = r.pick([1, 2, 2, 3]);
    const pad = [r.int(0, KH - 1), r.int(0, KW - 1), r.int(0, KH - 1), r.int(0, KW - 1)];
    const OH = Math.floor((H + pad[0] + pad[2] - KH) / sh) + 1, OW = Math.floor((W + pad[1] + pad[3] - KW) / sw) + 1;
    const op = r.pick(['maxpool', 'avgpool']) as 'maxpool' | 'avgpool';
    const countPad = op === 'avgpool' ? r.int(0, 1) : 0;
    const x = Float32Array.from({ length: N * C * H * W }, () => r.next() * 4 - 2);
    const graph: Graph = {
      input: { name: 'x', shape: [N, C, H, W], layout: 'nchw' }, output: 'y', consts: new Map(),
      nodes: [{ op, name: 'pool', inputs: ['x'], output: 'y', attrs: { kernel: [KH, KW], stride: [sh, sw], pad, countPad } }],
    };
    const y = await graphRunner(graph).run({ data: x, shape: [N, C, H, W] });
    assert.deepEqual(y.shape, [N, C, OH, OW]);
    for (let p = 0; p < N * C; p++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      let m = -Infinity, s = 0, n = 0;
      for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
        const ih = oh * sh - pad[0] + kh, iw = ow * sw - pad[1] + kw;
        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
        const v = x[(p * H + ih) * W + iw];
        m = Math.max(m, v);
        s += v;
        n++;
      }
      const got = y.data[(p * OH + oh) * OW + ow], at = `${op} ${JSON.stringify({ N, C, H, W, KH, KW, sh, sw, pad, countPad })} [${p},${oh},${ow}]`;
      if (op === 'maxpool') assert.equal(got, Math.fround(m), at);
      else assert.ok(Math.abs(got - s / (countPad ? KH * KW : n)) < 1e-5, `${at} ${got} vs ${s / (countPad ? KH * KW : n)}`);
    }
  }
});

test('the passes fold batch norm, per-channel Mul/Add, zero pads and ReLU6 into convolutions without changing the result', async () => {
  const r = rng(9);
  const f = (shape: number[], scale = 1, offset = 0) => ({ dtype: 'float32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.next() * scale + offset) });
  const i64 = (v: number[]) => ({ dtype: 'int64' as const, shape: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
  const g: RuntimeGraph = {
    inputs: [{ name: 'in', dtype: 'float32', shape: ['n', 4, 7, 5] }], outputs: [{ name: 'out', dtype: 'float32', shape: null }], opset: 13,
    consts: new Map<string, RuntimeTensor>([
      ['pads', i64([0, 0, 1, 2, 0, 0, 1, 0])], ['w', f([6, 2, 3, 3], 1, -0.5)], ['s', f([6], 4)], ['b', f([6], 4, -2)], ['m', f([6])], ['v', f([6], 1, 0.5)],
      ['k', f([6, 1, 1], 2)], ['c', f([1, 6, 1, 1])], ['zero', { dtype: 'float32', shape: [], data: Float32Array.of(0) }], ['six', { dtype: 'float32', shape: [], data: Float32Array.of(6) }],
    ]),
    nodes: [
      { op: 'Pad', name: 'pad', inputs: ['in', 'pads'], outputs: ['x'], attrs: {} },
      { op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { group: 2, strides: [2, 1] } },
      { op: 'BatchNormalization', name: 'bn', inputs: ['y', 's', 'b', 'm', 'v'], outputs: ['z'], attrs: {} },
      { op: 'Mul', name: 'scale', inputs: ['z', 'k'], outputs: ['z2'], attrs: {} },
      { op: 'Add', name: 'shift', inputs: ['c', 'z2'], outputs: ['z3'], attrs: {} },
      { op: 'Clip', name: 'relu6', inputs: ['z3', 'zero', 'six'], outputs: ['out'], attrs: {} },
    ],
  };
  const o = await optimizeGraph(g);
  assert.deepEqual(o.nodes.map((n) => n.op), ['Conv']);
  assert.equal(o.nodes[0].attrs._act, 'clip');
  const x = { in: f([2, 4, 7, 5], 2) };
  const a = await new Session(g).run(x), b = await new Session(o).run(x);
  for (let i = 0; i < a.out.data.length; i++) assert.ok(Math.abs((a.out.data as Float32Array)[i] - (b.out.data as Float32Array)[i]) < 1e-4);
});

test('hard swish written out op by op, x * clip(x + 3, 0, 6) / 6 and (x * c) * clip(x + 3, 0, 6), becomes the Conv\'s activation (times 6c where c is not 1/6)', async () => {
  const r = rng(21);
  const f = (shape: number[], scale = 1, offset = 0) => ({ dtype: 'float32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.next() * scale + offset) });
  const scalar = (v: number) => ({ dtype: 'float32' as const, shape: [], data: Float32Array.of(v) });
  const g: RuntimeGraph = {
    inputs: [{ name: 'in', dtype: 'float32', shape: [1, 3, 6, 5] }], outputs: [{ name: 'out', dtype: 'float32', shape: null }], opset: 13,
    consts: new Map<string, RuntimeTensor>([['w', f([4, 3, 3, 3], 2, -1)], ['w2', f([4, 4, 1, 1], 2, -1)], ['three', scalar(3)], ['zero', scalar(0)], ['six', scalar(6)], ['sixth', scalar(1 / 6)], ['sixth16', scalar(0.1666259765625)]]),
    nodes: [
      // ONNX exports: x * clip(x + 3, 0, 6), then / 6.
      { op: 'Conv', name: 'c1', inputs: ['in', 'w'], outputs: ['x'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Add', name: 'a1', inputs: ['x', 'three'], outputs: ['x3'], attrs: {} },
      { op: 'Clip', name: 'k1', inputs: ['x3', 'zero', 'six'], outputs: ['r6'], attrs: {} },
      { op: 'Mul', name: 'm1', inputs: ['x', 'r6'], outputs: ['xr'], attrs: {} },
      { op: 'Div', name: 'd1', inputs: ['xr', 'six'], outputs: ['h1'], attrs: {} },
      // TF graphs (MediaPipe): (1/6 * x) * clip(3 + x, 0, 6).
      { op: 'Conv', name: 'c2', inputs: ['h1', 'w2'], outputs: ['y'], attrs: {} },
      { op: 'Mul', name: 's2', inputs: ['sixth', 'y'], outputs: ['ys'], attrs: {} },
      { op: 'Add', name: 'a2', inputs: ['three', 'y'], outputs: ['y3'], attrs: {} },
      { op: 'Clip', name: 'k2', inputs: ['y3', 'zero', 'six'], outputs: ['q6'], attrs: {} },
      { op: 'Mul', name: 'm2', inputs: ['ys', 'q6'], outputs: ['z'], attrs: {} },
      // MediaPipe's float16 1/6: 6c * HardSwish.
      { op: 'Conv', name: 'c3', inputs: ['z', 'w2'], outputs: ['u'], attrs: {} },
      { op: 'Mul', name: 's3', inputs: ['u', 'sixth16'], outputs: ['us'], attrs: {} },
      { op: 'Add', name: 'a3', inputs: ['u', 'three'], outputs: ['u3'], attrs: {} },
      { op: 'Clip', name: 'k3', inputs: ['u3', 'zero', 'six'], outputs: ['p6'], attrs: {} },
      { op: 'Mul', name: 'm3', inputs: ['p6', 'us'], outputs: ['out'], attrs: {} },
    ],
  };
  const o = await optimizeGraph(g);
  assert.deepEqual(o.nodes.map((n) => `${n.op}/${n.attrs._act ?? ''}`), ['Conv/hardswish', 'Conv/hardswish', 'Conv/hardswish', 'Mul/']);
  const x = { in: f([1, 3, 6, 5], 4, -2) };
  for (const backend of ['ref', undefined] as const) {
    const a = await new Session(g).run(x, { backend }), b = await new Session(o).run(x, { backend });
    const ad = a.out.data as Float32Array, bd = b.out.data as Float32Array;
    for (let i = 0; i < ad.length; i++) assert.ok(Math.abs(ad[i] - bd[i]) <= 1e-5 * (1 + Math.abs(ad[i])), `backend ${backend ?? 'default'} [${i}] ${bd[i]} vs ${ad[i]}`);
  }
});

test("PReLU written out as tfjs-converter writes it becomes one PRelu with bit-identical outputs, the converter's own Relu-fused form too", async () => {
  const r = rng(12);
  const f = (shape: number[], scale = 1, offset = 0) => ({ dtype: 'float32' as const, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.next() * scale + offset) });
  const g: RuntimeGraph = {
    inputs: [{ name: 'in', dtype: 'float32', shape: [1, 3, 6, 5] }], outputs: [{ name: 'out', dtype: 'float32', shape: null }], opset: 13,
    consts: new Map<string, RuntimeTensor>([['w', f([4, 3, 3, 3], 2, -1)], ['a1', f([1, 4, 1, 1], 0.5)], ['w2', f([4, 4, 1, 1], 2, -1)], ['a2', f([1, 4, 1, 1], 0.5)]]),
    nodes: [
      // Relu(x) + (x - |x|) * a: a PReLU.
      { op: 'Conv', name: 'c1', inputs: ['in', 'w'], outputs: ['x'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['pos'], attrs: {} },
      { op: 'Abs', name: 'abs', inputs: ['x'], outputs: ['ax'], attrs: {} },
      { op: 'Sub', name: 'sub', inputs: ['x', 'ax'], outputs: ['neg2'], attrs: {} },
      { op: 'Mul', name: 'mul', inputs: ['neg2', 'a1'], outputs: ['neg'], attrs: {} },
      { op: 'Add', name: 'add', inputs: ['pos', 'neg'], outputs: ['p1'], attrs: {} },
      // The Relu already inside the convolution: x + (x - |x|) * a with x >= 0.
      { op: 'Conv', name: 'c2', inputs: ['p1', 'w2'], outputs: ['y'], attrs: { _act: 'relu' } },
      { op: 'Abs', name: 'abs2', inputs: ['y'], outputs: ['ay'], attrs: {} },
      { op: 'Sub', name: 'sub2', inputs: ['y', 'ay'], outputs: ['d2'], attrs: {} },
      { op: 'Mul', name: 'mul2', inputs: ['a2', 'd2'], outputs: ['n2'], attrs: {} },
      { op: 'Add', name: 'add2', inputs: ['n2', 'y'], outputs: ['out'], attrs: {} },
    ],
  };
  const o = await optimizeGraph(g);
  assert.deepEqual(o.nodes.map((n) => n.op), ['Conv', 'PRelu', 'Conv', 'PRelu']);
  const x = { in: f([1, 3, 6, 5], 4, -2) };
  for (const backend of ['ref', undefined] as const) {
    const a = await new Session(g).run(x, { backend }), b = await new Session(o).run(x, { backend });
    assert.deepEqual(Array.from(b.out.data as Float32Array), Array.from(a.out.data as Float32Array), `backend ${backend ?? 'default'}`);
  }
});

/** A float ONNX model that uses every op the importer lists, built with our own writer. */
function zooModel(): Uint8Array {
  const r = rng(3);
  const inits: OnnxTensor[] = [];
  const f32 = (name: string, dims: number[], scale = 0.5) => {
    inits.push(tensor(name, DT.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (r.next() * 2 - 1) * scale)));
    return name;
  };
  const i64 = (name: string, v: number[]) => {
    inits.push(tensor(name, DT.INT64, [v.length], BigInt64Array.from(v.map(BigInt))));
    return name;
  };
  const nodes: OnnxNode[] = [];
  const n = (op: string, inputs: string[], out: string, attrs?: OnnxNode['attrs']) => {
    nodes.push({ op, inputs, outputs: [out], name: `${op}_${out}`, attrs });
    return out;
  };
  inits.push(tensor('var', DT.FLOAT, [8], Float32Array.from({ length: 8 }, () => 0.5 + r.next())));
  n('Conv', ['input', f32('w1', [8, 3, 3, 3]), f32('b1', [8])], 'c1', { kernel_shape: [3, 3], pads: [1, 0, 2, 1], strides: [2, 1] });
  n('BatchNormalization', ['c1', f32('g', [8]), f32('be', [8]), f32('mu', [8]), 'var'], 'bn', { epsilon: { float: 1e-3 } });
  n('Relu', ['bn'], 'r1');
  n('Conv', ['r1', f32('wd', [8, 1, 3, 3])], 'dw', { kernel_shape: [3, 3], group: 8, auto_pad: 'SAME_UPPER' });
  n('Clip', ['dw', f32('lo', [], 0), f32('hi', [], 0)], 'cl');
  n('Add', ['cl', 'r1'], 'add');
  n('Mul', ['add', f32('m', [1, 8, 1, 1])], 'mul');
  n('MaxPool', ['mul'], 'mp', { kernel_shape: [2, 2], strides: [2, 2] });
  n('AveragePool', ['mp'], 'ap', { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], count_include_pad: 0 });
  n('Pad', ['ap', i64('pads', [0, 0, 1, 0, 0, 0, 0, 1])], 'pad');
  n('Concat', ['pad', 'pad'], 'cat', { axis: 1 });
  n('Transpose', ['cat'], 'tr', { perm: [0, 1, 3, 2] });
  n('GlobalAveragePool', ['tr'], 'gap');
  n('Flatten', ['tr'], 'fl', { axis: 1 });
  n('Reshape', ['gap', i64('shape', [0, -1])], 'rs');
  n('Gemm', ['rs', f32('wg', [10, 16]), f32('bg', [10])], 'gm', { transB: 1 });
  n('MatMul', ['fl', f32('wm', [16 * 6 * 4, 10], 0.05)], 'mm');
  n('Add', [f32('bm', [10]), 'mm'], 'mmb');
  n('Sub', ['gm', 'mmb'], 'sub');
  n('Softmax', ['sub'], 'output', { axis: 1 });
  // Clip's bounds are set after the random draws so that they read as a ReLU6.
  const at = inits.findIndex((t) => t.name === 'hi');
  inits[at] = tensor('hi', DT.FLOAT, [], Float32Array.of(0.6));
  return encodeModel({
    name: 'zoo', nodes, initializers: inits,
    inputs: [{ name: 'input', dataType: DT.FLOAT, dims: ['N', 3, 13, 11] }],
    outputs: [{ name: 'output', dataType: DT.FLOAT, dims: ['N', 10] }],
  });
}

test('ONNX import of a float model with every listed op matches onnxruntime-node within 1e-5', async () => {
  const ort = require('onnxruntime-node');
  const bytes = zooModel();
  const session = await ort.InferenceSession.create(bytes);
  const model = await importModel(bytes);
  const r = rng(4);
  const x = Float32Array.from({ length: 2 * 3 * 13 * 11 }, () => r.next() * 2 - 1);
  const ref = (await session.run({ input: new ort.Tensor('float32', x, [2, 3, 13, 11]) })).output.data as Float32Array;
  const y = await model.predict({ data: x, shape: [2, 3, 13, 11] });
  assert.deepEqual(y.shape, [2, 10]);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y.data[i] - ref[i]) < 1e-5, `${i}: ${y.data[i]} vs ${ref[i]}`);
  // The Linear layer's bias Add went into its MatMul; the ONNX writer splits it out again.
  assert.deepEqual(model.graph!.nodes.filter((n) => n.op === 'MatMul').map((n) => n.inputs.length), [3]);
  assert.ok(!model.graph!.nodes.some((n) => n.op === 'Add' && n.inputs.includes('bm')));
  // The graph exported back to ONNX runs in onnxruntime to the same values.
  const again = await ort.InferenceSession.create(writeOnnx(model.graph!));
  const z = (await again.run({ input: new ort.Tensor('float32', x, [2, 3, 13, 11]) })).output.data as Float32Array;
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(z[i] - ref[i]) < 1e-5);
});

test('Einsum equals onnxruntime on matrix products, diagonals, sums, transposes, ellipses and implicit outputs; batched products and products by a matrix become MatMul', async () => {
  const ort = require('onnxruntime-node');
  const r = rng(21);
  const cases: [string, number[][], number[]][] = [
    ['ij,jk->ik', [[3, 4], [4, 5]], [3, 5]],
    ['bij,bkj->bik', [[2, 3, 4], [2, 5, 4]], [2, 3, 5]],
    ['B G H I D, B G H J D -> B G H I J', [[1, 2, 3, 4, 5], [1, 2, 3, 6, 5]], [1, 2, 3, 4, 6]],
    ['BGHIJ,BGHJD->BGHID', [[1, 2, 3, 4, 6], [1, 2, 3, 6, 5]], [1, 2, 3, 4, 5]],
    ['bij,bjk->bki', [[2, 3, 4], [2, 4, 5]], [2, 5, 3]],
    ['ii->i', [[4, 4]], [4]],
    ['ij->', [[3, 4]], []],
    ['ij->ji', [[3, 4]], [4, 3]],
    ['ij,kj', [[3, 4], [5, 4]], [3, 5]],
    ['...ij,...jk->...ik', [[2, 1, 3, 4], [1, 5, 4, 2]], [2, 5, 3, 2]],
    ['i,i', [[6], [6]], []],
    ['bn,anm,bm->ba', [[2, 3], [4, 3, 5], [2, 5]], [2, 4]],
    // A matrix against any axis of the other operand (jax2tf's dense layers).
    ['abcg,gf->abcf', [[1, 2, 3, 4], [4, 5]], [1, 2, 3, 5]],
    ['abgd,gf->abdf', [[1, 2, 4, 3], [4, 5]], [1, 2, 3, 5]],
    ['gb,cgef->bcef', [[4, 2], [3, 4, 2, 5]], [2, 3, 2, 5]],
    ['abcg,fg->abcf', [[2, 3, 1, 4], [5, 4]], [2, 3, 1, 5]],
    ['bij,jk->bki', [[2, 3, 4], [4, 5]], [2, 5, 3]],
  ];
  for (const [equation, shapes, out] of cases) {
    const names = shapes.map((_, i) => `x${i}`);
    const bytes = encodeModel({
      name: 'einsum', initializers: [], nodes: [{ op: 'Einsum', name: 'e', inputs: names, outputs: ['y'], attrs: { equation } }],
      inputs: shapes.map((dims, i) => ({ name: names[i], dataType: DT.FLOAT, dims })), outputs: [{ name: 'y', dataType: DT.FLOAT, dims: out }],
    }, 13);
    const xs = shapes.map((dims) => Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => r.next() * 2 - 1));
    const session = await ort.InferenceSession.create(bytes);
    const ref = (await session.run(Object.fromEntries(names.map((n, i) => [n, new ort.Tensor('float32', xs[i], shapes[i])])))).y;
    const model = await importModel(bytes);
    const matmul = model.graph!.nodes.some((n) => n.op === 'MatMul');
    assert.equal(matmul, /^(bij,bkj|B G H|BGHIJ|bij,bjk|ij,jk|abcg|abgd|gb,|bij,jk)/.test(equation), `${equation}: MatMul ${matmul}`);
    const y = (await model.run(Object.fromEntries(names.map((n, i) => [n, { data: xs[i], shape: shapes[i] }])))).y;
    assert.deepEqual(y.shape, Array.from(ref.dims), equation);
    for (let i = 0; i < ref.data.length; i++) assert.ok(Math.abs((y.data as Float32Array)[i] - ref.data[i]) < 1e-5, `${equation} [${i}] ${(y.data as Float32Array)[i]} vs ${ref.data[i]}`);
  }
  // Bad equations are typed errors naming the node.
  const bad = encodeModel({
    name: 'bad', initializers: [], nodes: [{ op: 'Einsum', name: 'e', inputs: ['a'], outputs: ['y'], attrs: { equation: 'ijk->i' } }],
    inputs: [{ name: 'a', dataType: DT.FLOAT, dims: [2, 3] }], outputs: [{ name: 'y', dataType: DT.FLOAT, dims: [2] }],
  }, 13);
  await assert.rejects(async () => (await importModel(bad)).run({ a: { data: new Float32Array(6), shape: [2, 3] } }), /node e \(Einsum\): "ijk" names 3 axes of an input of rank 2/);
});

test('ONNX import lists every unsupported op with its node name, control flow included', () => {
  const bytes = encodeModel({
    name: 'bad', initializers: [tensor('w', DT.FLOAT, [2, 1, 3, 3], new Float32Array(18))],
    inputs: [{ name: 'input', dataType: DT.FLOAT, dims: [1, 1, 8, 8] }], outputs: [{ name: 'z', dataType: DT.FLOAT, dims: [1] }],
    nodes: [
      { op: 'Conv', name: 'conv0', inputs: ['input', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3] } },
      { op: 'LSTM', name: 'lstm', inputs: ['c'], outputs: ['l'] },
      { op: 'Scan', name: 'scan', inputs: ['l'], outputs: ['p'] },
      { op: 'Mystery', name: 'custom', inputs: ['p'], outputs: ['z'], domain: 'com.example' },
    ],
  });
  assert.throws(() => readOnnx(bytes), (e: unknown) => {
    assert.ok(e instanceof UnsupportedModelError);
    assert.equal(e.problems.length, 3, e.message);
    for (const s of ['lstm: op LSTM', 'scan: control flow (Scan)', 'custom: op Mystery of domain com.example']) assert.ok(e.message.includes(s), e.message);
    return true;
  });
});

test('QDQ export -> import round trip agrees with onnxruntime-node on 1000 MNIST test images; 8-bit import uses the model\'s own scales', async () => {
  const ort = require('onnxruntime-node');
  const bytes = exportOnnx((await loadModel('models/mnist-a2.fcnn')).net);
  const session = await ort.InferenceSession.create(bytes);
  const test = loadMnist('test');
  const N = 1000;
  const x = Float32Array.from(test.images.subarray(0, N * 784), (v) => v / 255);
  const ref = (await session.run({ pixels: new ort.Tensor('float32', x, [N, 1, 28, 28]) })).log_probabilities.data as Float32Array;
  const argmax = (a: ArrayLike<number>, n: number) => {
    let b = 0;
    for (let k = 1; k < 10; k++) if (a[n * 10 + k] > a[n * 10 + b]) b = k;
    return b;
  };
  for (const bits of [undefined, 8]) {
    const model = await importModel(bytes, { activationBits: bits });
    if (bits) assert.ok(Object.keys(model.meta.ranges ?? {}).length >= 4);
    const y = await model.predict({ data: x, shape: [N, 1, 28, 28] });
    let agree = 0;
    for (let n = 0; n < N; n++) agree += Number(argmax(y.data, n) === argmax(ref, n));
    assert.ok(agree >= 0.999 * N, `${bits ?? 'float'}: ${agree}/${N}`);
  }
});

test('TF.js weight manifests: uint8 and uint16 quantized, float16 and int32 weights decode to their values', () => {
  const bytes = new Uint8Array(3 + 4 + 4 + 4);
  const dv = new DataView(bytes.buffer);
  bytes.set([0, 128, 255], 0);
  dv.setUint16(3, 0, true);
  dv.setUint16(5, 1000, true);
  dv.setUint16(7, 0x3c00, true); // 1.0
  dv.setUint16(9, 0xc000, true); // -2.0
  dv.setInt32(11, -7, true);
  const w = decodeWeights({
    modelTopology: {}, weightData: bytes,
    weightsManifest: [{ paths: [], weights: [
      { name: 'u8', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
      { name: 'u16', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.01, min: 2 } },
      { name: 'f16', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
      { name: 'i32', shape: [1], dtype: 'int32' },
    ] }],
  });
  assert.deepEqual(Array.from(w.get('u8')!.data), [-1, 63, 126.5]);
  assert.deepEqual(Array.from(w.get('u16')!.data, (v) => Math.round(v * 1e4) / 1e4), [2, 12]);
  assert.deepEqual(Array.from(w.get('f16')!.data), [1, -2]);
  assert.deepEqual(Array.from(w.get('i32')!.data), [-7]);
});

test('.fcnn v3 graphs round-trip, and loadModel returns the same model importModel built', async () => {
  const bytes = zooModel();
  const model = await importModel(bytes, { activationBits: 8 });
  const file = encodeIr(model.graph!, model.meta);
  const back = decodeAny(file);
  assert.equal(back.ir!.nodes.length, model.graph!.nodes.length);
  const loaded = await loadModel(file);
  const x = { data: Float32Array.from({ length: 3 * 13 * 11 }, (_, i) => Math.sin(i)), shape: [1, 3, 13, 11] };
  assert.deepEqual((await loaded.predict(x)).data, (await model.predict(x)).data);
  assert.equal(loaded.meta.activationBits, 8);
});

/** Applies one of several corruptions; returns the bytes a loader must refuse or read. */
function mutate(r: ReturnType<typeof rng>, b: Uint8Array): Uint8Array {
  const kind = r.int(0, 3);
  if (kind === 0) return b.subarray(0, r.int(0, b.length - 1));
  const c = b.slice();
  if (kind === 1) for (let i = 0; i < r.int(1, 8); i++) c[r.int(0, c.length - 1)] = r.int(0, 255);
  if (kind === 2) c[r.int(0, Math.min(c.length - 1, 400))] ^= 1 << r.int(0, 7);
  if (kind === 3) c.fill(0xff, r.int(0, c.length - 1), r.int(0, c.length));
  return c;
}

test('loader fuzzing: mutated and truncated ONNX, TF.js and .fcnn v3 files give typed errors only', async () => {
  const r = rng(21);
  const onnx = exportOnnx((await loadModel('models/mnist-a1.fcnn')).net);
  const fcnn = encodeIr((await importModel(zooModel())).graph!);
  const tfjsJson = JSON.stringify({
    modelTopology: { class_name: 'Sequential', config: { layers: [
      { class_name: 'Conv2D', config: { name: 'c', batch_input_shape: [null, 6, 6, 2], filters: 3, kernel_size: [3, 3], strides: [1, 1], padding: 'same', activation: 'relu' } },
      { class_name: 'Flatten', config: { name: 'f' } },
      { class_name: 'Dense', config: { name: 'd', units: 4, activation: 'softmax' } },
    ] } },
    weightsManifest: [{ paths: [], weights: [
      { name: 'c/kernel', shape: [3, 3, 2, 3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.01, min: -1 } },
      { name: 'c/bias', shape: [3], dtype: 'float32' }, { name: 'd/kernel', shape: [108, 4], dtype: 'float32' }, { name: 'd/bias', shape: [4], dtype: 'float32' },
    ] }],
  });
  const { tfjsLayersToIr } = await import('faster-cnn');
  const weightData = new Uint8Array(54 + 12 + 108 * 16 + 16).map((_, i) => (i * 37) & 0x3f);
  tfjsLayersToIr({ ...JSON.parse(tfjsJson), weightData });
  let refused = 0;
  const expectTyped = async (f: () => unknown, what: string) => {
    try {
      await f();
    } catch (e) {
      assert.ok(e instanceof FasterCnnError, `${what}: ${(e as Error)?.stack}`);
      refused++;
    }
  };
  for (let i = 0; i < 150; i++) {
    await expectTyped(() => importModel(mutate(r, onnx)), 'onnx');
    await expectTyped(() => loadModel(mutate(r, fcnn)), 'fcnn');
    const text = new TextDecoder().decode(mutate(r, new TextEncoder().encode(tfjsJson)));
    await expectTyped(() => {
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        return;
      }
      return tfjsLayersToIr({ ...json, weightData: mutate(r, weightData) });
    }, 'tfjs');
  }
  assert.ok(refused > 150, `only ${refused} of 450 mutations refused`);
  // Headers that claim huge tensors are refused before anything that size is allocated.
  const huge = encodeModel({
    name: 'huge', nodes: [{ op: 'Relu', inputs: ['input'], outputs: ['output'] }],
    initializers: [{ name: 'w', dataType: DT.FLOAT, dims: [100000, 100000], raw: new Uint8Array(4) }],
    inputs: [{ name: 'input', dataType: DT.FLOAT, dims: [1, 4] }], outputs: [{ name: 'output', dataType: DT.FLOAT, dims: [1, 4] }],
  });
  await assert.rejects(importModel(huge), /claims 10000000000 elements/);
  assert.throws(() => decodeWeights({ modelTopology: {}, weightData: new Uint8Array(8), weightsManifest: [{ paths: [], weights: [{ name: 'w', shape: [100000, 100000], dtype: 'float32' }] }] }), /claims/);
  const claims = encodeIr({ inputs: [], outputs: [], nodes: [], opset: 13, consts: new Map([['w', { dtype: 'float32' as const, shape: [4], data: new Float32Array(4) }]]) });
  const header = new TextDecoder().decode(claims.subarray(12, 12 + new DataView(claims.buffer).getUint32(8, true)));
  const bigger = new TextEncoder().encode(header.replace('"shape":[4]', '"shape":[100000,100000]').replace('"length":16', '"length":40000000000'));
  const forged = new Uint8Array(12 + bigger.length + 20);
  forged.set(claims.subarray(0, 12));
  new DataView(forged.buffer).setUint32(8, bigger.length, true);
  forged.set(bigger, 12);
  await assert.rejects(loadModel(forged), /past the/);
});

test('depthwise kernels (float and integer, SIMD and scalar paths) equal a naive loop at strides 1, 2, 3', async () => {
  const { conv2dDirect } = await import('faster-cnn');
  const r = rng(17);
  for (const stride of [1, 2, 3]) {
    for (const [H, W] of [[19, 29], [5, 8], [12, 17], [9, 10], [6, 4], [7, 71]]) {
      // Odd and even tap counts (the kernel pairs taps), rows narrower and wider than 8 and 16 pixels (several
      // 16-pixel steps, then 4-pixel ones, then single pixels).
      const C = r.int(1, 9), KH = r.pick([1, 2, 3, 5]), KW = r.pick([2, 3, 5]), dil = r.int(1, 2);
      if (W + 3 < KW) continue;
      const c = { N: 2, C, H, W, O: C, KH, KW, groups: C, stride: [stride, stride] as [number, number], dilation: [dil, 1] as [number, number], padding: [1, 2, 0, 1] as [number, number, number, number] };
      if (H + 1 < dil * (KH - 1) + 1) continue;
      const x = Float32Array.from({ length: 2 * C * H * W }, () => r.next() * 2 - 1);
      const w = Float32Array.from({ length: C * KH * KW }, () => r.next() * 2 - 1);
      const ref = naiveConvF(x, w, [2, C, H, W], [C, 1, KH, KW], { stride: c.stride, dilation: c.dilation, pad: c.padding, group: C });
      const y = await graphRunner(convGraph(c, w)).run({ data: x, shape: [2, C, H, W] });
      for (let k = 0; k < y.data.length; k++) assert.ok(Math.abs(y.data[k] - ref.data[k]) < 1e-4, `float stride ${stride} [${k}]`);
      const codes = Uint8Array.from(x, (v) => Math.floor((v + 1) * 127));
      const wi = Int8Array.from(w, (v) => Math.round(v * 127));
      const opts = { stride: c.stride, dilation: c.dilation, padding: c.padding, groups: C };
      const want = await conv2dDirect({ data: codes, shape: [2, C, H, W] }, { data: wi, shape: [C, 1, KH, KW] }, { ...opts, backend: 'js' });
      const got = await conv2dDirect({ data: codes, shape: [2, C, H, W] }, { data: wi, shape: [C, 1, KH, KW] }, { ...opts, backend: 'wasm' });
      assert.deepEqual(got.data, want.data, `integer stride ${stride} ${H}x${W} ${KH}x${KW}`);
      // And inside an integer graph layer (quantized in wasm, scaled back in the stores) vs its JS twin.
      const g = graphRunner(convGraph(c, w));
      const twin = await g.run({ data: x, shape: [2, C, H, W] }, { activationBits: 8, backend: 'js' });
      assert.deepEqual((await g.run({ data: x, shape: [2, C, H, W] }, { activationBits: 8, kernel: 'direct' })).data, twin.data, `layer stride ${stride} ${H}x${W}`);
    }
  }
});

test('float graph layers chained in wasm memory (conv, depthwise, pointwise, bias, every activation) equal naive loops and free their outputs', async () => {
  const { getEngine } = await import(new URL('../../dist/backends/wasm/engine.js', import.meta.url).href);
  const heap = (await getEngine()).heap;
  const r = rng(23);
  const acts = ['none', 'relu', 'relu6', 'sigmoid'] as const;
  const applyAct = (v: number, act: string) => act === 'relu' ? Math.max(0, v) : act === 'relu6' ? Math.min(6, Math.max(0, v)) : act === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : v;
  for (let i = 0; i < 16; i++) {
    const N = r.int(1, 2), C = r.int(1, 6), H = r.int(3, 20), W = r.int(3, 21), M = r.int(1, 9), O = r.int(1, 7);
    const stride = r.int(1, 2), pad = r.int(0, 1), dstride = r.int(1, 2);
    const actA = r.pick(acts), actB = r.pick(acts), actC = r.pick(acts);
    const wa = Float32Array.from({ length: M * C * 9 }, () => (r.next() - 0.5) * 4), ba = Float32Array.from({ length: M }, () => r.next() - 0.5);
    const wd = Float32Array.from({ length: M * 9 }, () => r.next() - 0.5), bd = Float32Array.from({ length: M }, () => r.next() - 0.5);
    const wp = Float32Array.from({ length: O * M }, () => (r.next() - 0.5) * 4);
    const attrs = (group: number, s: number, p: number, act: string) => ({ stride: [s, s], dilation: [1, 1], pad: [p, p, p, p], group, act });
    const graph: Graph = {
      input: { name: 'x', shape: [N, C, H, W], layout: 'nchw' }, output: 'y',
      nodes: [
        { op: 'conv', name: 'a', inputs: ['x', 'wa', 'ba'], output: 'ya', attrs: attrs(1, stride, pad, actA) },
        { op: 'conv', name: 'd', inputs: ['ya', 'wd', 'bd'], output: 'yd', attrs: attrs(M, dstride, 1, actB) },
        { op: 'conv', name: 'p', inputs: ['yd', 'wp'], output: 'y', attrs: attrs(1, 1, 0, actC) },
      ],
      consts: new Map([['wa', { shape: [M, C, 3, 3], data: wa }], ['ba', { shape: [M], data: ba }], ['wd', { shape: [M, 1, 3, 3], data: wd }],
        ['bd', { shape: [M], data: bd }], ['wp', { shape: [O, M, 1, 1], data: wp }]]),
    };
    const x = Float32Array.from({ length: N * C * H * W }, () => r.next() * 2 - 1);
    const layer = (input: { data: Float32Array; shape: number[] }, w: Float32Array, b: Float32Array | null, ws: number[], a: { stride: number[]; pad: number[]; group: number }, act: string) => {
      const y = naiveConvF(input.data, w, input.shape, ws, { ...a, dilation: [1, 1] });
      const plane = y.shape[2] * y.shape[3];
      return { data: Float32Array.from(y.data, (v, k) => applyAct(v + (b ? b[Math.floor(k / plane) % ws[0]] : 0), act)), shape: y.shape };
    };
    const ya = layer({ data: x, shape: [N, C, H, W] }, wa, ba, [M, C, 3, 3], attrs(1, stride, pad, actA), actA);
    const yd = layer(ya, wd, bd, [M, 1, 3, 3], attrs(M, dstride, 1, actB), actB);
    const ref = layer(yd, wp, null, [O, M, 1, 1], attrs(1, 1, 0, actC), actC);
    const runner = graphRunner(graph);
    const before = heap.used;
    for (let call = 0; call < 2; call++) {
      const y = await runner.run({ data: x, shape: [N, C, H, W] });
      assert.deepEqual(y.shape, ref.shape);
      const what = `${JSON.stringify({ N, C, H, W, M, O, stride, pad, dstride, actA, actB, actC })} call ${call}`;
      for (let k = 0; k < y.data.length; k++) assert.ok(Math.abs(y.data[k] - ref.data[k]) < 1e-4, `${what} [${k}] ${y.data[k]} vs ${ref.data[k]}`);
      assert.ok(!(y.data.buffer instanceof SharedArrayBuffer), 'the graph output is a plain array, not a view of wasm memory');
    }
    // Layouts of the weights stay (once per weight array); every layer output is freed.
    const after = heap.used;
    await runner.run({ data: x, shape: [N, C, H, W] });
    // Not equal: layouts of earlier cases' weights, collected by now, may be freed during the run (a finalizer).
    assert.ok(heap.used <= after, `a run leaves no wasm memory behind: ${heap.used} bytes used after it, ${after} before`);
    assert.ok(after - before < 4 * (wa.length + wp.length + 64) * 4, `${after - before} bytes kept after the first run`);
  }
});

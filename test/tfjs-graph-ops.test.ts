import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { Session, tfjsGraphToIr, type RuntimeTensor as Tensor } from 'faster-cnn';
import { rng, webgpuSkip } from './helpers.js';

/**
 * TF.js graph ops checked against tfjs-converter running the same model.json: the oracle parses
 * the node list itself, so the masks, index layouts and dtypes are read twice, independently.
 */
type Json = Record<string, unknown>;
interface Const { name: string; dtype: 'float32' | 'int32'; shape: number[]; values: number[] }

const TF_DT = { float32: 'DT_FLOAT', int32: 'DT_INT32' } as const;
const dims = (shape: number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });

/** A graph model of placeholders, constants (weights) and nodes, as tfjs-converter writes one. */
function graphModel(placeholders: { name: string; dtype: 'float32' | 'int32'; shape: number[] }[], consts: Const[], nodes: Json[], outputs?: string[]) {
  const node = [
    ...placeholders.map((p) => ({ name: p.name, op: 'Placeholder', attr: { dtype: { type: TF_DT[p.dtype] }, shape: { shape: dims(p.shape) } } })),
    ...consts.map((c) => ({ name: c.name, op: 'Const', attr: { dtype: { type: TF_DT[c.dtype] }, value: { tensor: { dtype: TF_DT[c.dtype], tensorShape: dims(c.shape) } } } })),
    ...nodes,
  ];
  const bytes = new Uint8Array(consts.reduce((n, c) => n + 4 * c.values.length, 0));
  let at = 0;
  for (const c of consts) {
    const v = c.dtype === 'int32' ? Int32Array.from(c.values) : Float32Array.from(c.values);
    bytes.set(new Uint8Array(v.buffer), at);
    at += v.byteLength;
  }
  return {
    modelTopology: { node, versions: { producer: 1 } },
    weightsManifest: [{ paths: ['w.bin'], weights: consts.map((c) => ({ name: c.name, shape: c.shape, dtype: c.dtype })) }],
    weightData: bytes,
    ...(outputs ? { signature: { outputs: Object.fromEntries(outputs.map((o) => [o, { name: `${o}:0` }])) } } : {}),
  };
}

/** Our run and tfjs's (CPU backend) of the named outputs, compared by shape and value. */
async function compare(model: ReturnType<typeof graphModel>, feeds: Record<string, Tensor>, outputs: string[], what: (name: string) => string) {
  await tf.setBackend('cpu');
  const tm = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: model.modelTopology, weightSpecs: model.weightsManifest[0].weights as never, weightData: model.weightData.slice().buffer,
  }));
  const ins = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, tf.tensor(t.data as Float32Array, t.shape, t.dtype as 'float32')]));
  const want = await tm.executeAsync(ins, outputs) as tf.Tensor[];
  const session = new Session(tfjsGraphToIr(model));
  for (const round of ['first call', 'second call']) {
    const got = await session.run(feeds);
    for (const [i, name] of outputs.entries()) {
      const g = got[name], w = want[i];
      assert.ok(g, `${name} missing`);
      assert.deepEqual(g.shape, w.shape, `${round}, ${what(name)}: shape`);
      const wd = w.dataSync(), gd = g.data as ArrayLike<number | bigint>;
      for (let k = 0; k < wd.length; k++) {
        assert.ok(Math.abs(Number(gd[k]) - wd[k]) <= 1e-6 * Math.max(1, Math.abs(wd[k])), `${round}, ${what(name)}: element ${k} is ${gd[k]}, tfjs ${wd[k]}`);
      }
    }
  }
  tf.dispose([...Object.values(ins), ...want]);
  tm.dispose();
}

const iota = (shape: number[]): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => i) };
};

const python = '/usr/bin/python3';
const numpySkip = spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0 || process.env.FASTER_CNN_REQUIRE_MODELS ? false
  : 'no NumPy (apt-get install python3-numpy)';

/**
 * StridedSlice is NumPy's basic indexing (TF wrote it to be): each random spec is also written as a
 * NumPy index (x[1:, ..., None, -1]) and evaluated there. tfjs 4.22 is not the oracle here: it gets
 * several of these wrong (x[-1:, 1:6:3, 0, ..., 1] gives x[1, 0, 0, 1]; negative shrink indices).
 */
test('TF.js StridedSlice with every mask (ellipsis, new axes, shrink, begin/end, negative strides), begin and end constant or computed, equals NumPy indexing on random specs', { skip: numpySkip }, async () => {
  const r = rng(7);
  const shape = [2, 3, 4, 5];
  const consts: Const[] = [], nodes: Json[] = [], exprs: string[] = [];
  for (let c = 0; c < 80; c++) {
    // Specs: at most one ellipsis; the ones that take an input axis (slices, shrinks) number at most the rank.
    const kinds: string[] = [];
    const n = r.int(1, 6);
    for (let i = 0; i < n; i++) kinds.push(r.pick(['slice', 'slice', 'shrink', 'new', 'ellipsis']));
    const first = kinds.indexOf('ellipsis');
    const clean = kinds.filter((k, i) => k !== 'ellipsis' || i === first);
    while (clean.filter((k) => k === 'slice' || k === 'shrink').length > shape.length) clean.splice(clean.findIndex((k) => k === 'slice' || k === 'shrink'), 1);
    const b: number[] = [], e: number[] = [], s: number[] = [], index: string[] = [];
    let bm = 0, em = 0, ell = 0, na = 0, sh = 0;
    clean.forEach((k, i) => {
      const stride = k === 'slice' ? r.pick([-3, -2, -1, 1, 1, 2, 3]) : 1;
      // Shrink indices in [-2, 1] are valid on every axis (the smallest has 2). TF ignores begin and
      // end of new axes and the ellipsis: the converter writes 0.
      b.push(k === 'shrink' ? r.int(-2, 1) : k === 'slice' ? r.int(-6, 6) : 0);
      e.push(k === 'slice' ? r.int(-6, 6) : 0);
      s.push(stride);
      const masked = [r.next() < 0.3, r.next() < 0.3];
      if (k === 'slice' && masked[0]) bm |= 1 << i;
      if (k === 'slice' && masked[1]) em |= 1 << i;
      if (k === 'ellipsis') ell |= 1 << i;
      if (k === 'new') na |= 1 << i;
      if (k === 'shrink') sh |= 1 << i;
      index.push(k === 'shrink' ? String(b[i]) : k === 'new' ? 'None' : k === 'ellipsis' ? '...'
        : `${masked[0] ? '' : b[i]}:${masked[1] ? '' : e[i]}:${stride}`);
    });
    const name = `ss${c}`;
    for (const [part, v] of [['begin', b], ['end', e], ['strides', s]] as const) consts.push({ name: `${name}/${part}`, dtype: 'int32', shape: [v.length], values: v });
    const attr = { T: { type: 'DT_FLOAT' }, Index: { type: 'DT_INT32' }, begin_mask: { i: String(bm) }, end_mask: { i: String(em) }, ellipsis_mask: { i: String(ell) }, new_axis_mask: { i: String(na) }, shrink_axis_mask: { i: String(sh) } };
    nodes.push({ name, op: 'StridedSlice', input: ['x', `${name}/begin`, `${name}/end`, `${name}/strides`], attr });
    // The same spec with begin and end computed (Identity nodes, not constants at import: jax2tf computes ends from shapes).
    for (const part of ['begin', 'end']) nodes.push({ name: `${name}/${part}_computed`, op: 'Identity', input: [`${name}/${part}`], attr: { T: { type: 'DT_INT32' } } });
    nodes.push({ name: `${name}_computed`, op: 'StridedSlice', input: ['x', `${name}/begin_computed`, `${name}/end_computed`, `${name}/strides`], attr });
    exprs.push(`x[${index.join(', ')}]`);
  }
  const script = 'import json, sys, numpy as np\nx = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)\n'
    + 'print(json.dumps([(lambda y: [list(y.shape), y.ravel().tolist()])(np.asarray(eval(e))) for e in json.load(sys.stdin)]))';
  const py = spawnSync(python, ['-c', script], { input: JSON.stringify(exprs), encoding: 'utf8' });
  assert.equal(py.status, 0, py.stderr);
  const want = JSON.parse(py.stdout) as [number[], number[]][];
  const session = new Session(tfjsGraphToIr(graphModel([{ name: 'x', dtype: 'float32', shape }], consts, nodes)));
  for (const round of ['first call', 'second call']) {
    const got = await session.run({ x: iota(shape) });
    exprs.forEach((expr, c) => {
      for (const name of [`ss${c}`, `ss${c}_computed`]) {
        const g = got[name];
        assert.deepEqual([g.shape, Array.from(g.data as Float32Array)], want[c], `${round}: ${expr}${name.endsWith('computed') ? ', begin and end computed' : ''}`);
      }
    });
  }
});

test('TF.js Atan2, SparseToDense, int32 BatchMatMul, SpaceToBatchND/BatchToSpaceND, BroadcastTo, Where, Pad with computed paddings and inverse trigonometry equal tfjs', async () => {
  const r = rng(11);
  const rand = (n: number) => Array.from({ length: n }, () => (r.next() < 0.1 ? 0 : r.next() * 4 - 2));
  const f = (name: string, op: string, input: string[], attr: Json = {}) => ({ name, op, input, attr: { T: { type: 'DT_FLOAT' }, ...attr } });
  const consts: Const[] = [
    { name: 'xs', dtype: 'float32', shape: [3, 4], values: rand(12) },
    // Indices as rows [N, R], as a vector where R is 1, and a scalar; values per row or one for all.
    { name: 'rows', dtype: 'int32', shape: [3, 2], values: [0, 1, 2, 3, 1, 0] },
    { name: 'vec', dtype: 'int32', shape: [2], values: [4, 1] },
    { name: 'one', dtype: 'int32', shape: [], values: [2] },
    { name: 'shape2', dtype: 'int32', shape: [2], values: [3, 4] },
    { name: 'shape1', dtype: 'int32', shape: [1], values: [6] },
    { name: 'vals3', dtype: 'float32', shape: [3], values: [1.5, -2, 7] },
    { name: 'vals1', dtype: 'float32', shape: [], values: [9] },
    { name: 'dflt', dtype: 'float32', shape: [], values: [0.5] },
    { name: 'half_c', dtype: 'float32', shape: [], values: [0.45] },
    { name: 'ia', dtype: 'int32', shape: [2, 3, 4], values: Array.from({ length: 24 }, () => r.int(-1000, 1000)) },
    { name: 'ib', dtype: 'int32', shape: [2, 4, 2], values: Array.from({ length: 16 }, () => r.int(-1000, 1000)) },
    { name: 'block', dtype: 'int32', shape: [2], values: [2, 3] },
    { name: 'pads', dtype: 'int32', shape: [2, 2], values: [1, 0, 2, 1] },
    { name: 'crops', dtype: 'int32', shape: [2, 2], values: [1, 0, 0, 2] },
    { name: 'to', dtype: 'int32', shape: [3], values: [2, 3, 4] },
    { name: 'zero_f', dtype: 'float32', shape: [], values: [0] },
  ];
  const s2d = (name: string, idx: string, shape: string, vals: string) => ({ name, op: 'SparseToDense', input: [idx, shape, vals, 'dflt'], attr: { T: { type: 'DT_FLOAT' }, Tindices: { type: 'DT_INT32' }, validate_indices: { b: true } } });
  const nodes = [
    f('atan2', 'Atan2', ['y', 'xs']),
    f('atan', 'Atan', ['y']), f('asin', 'Asin', ['half']), f('acos', 'Acos', ['half']), f('tan', 'Tan', ['y']),
    f('half', 'Mul', ['y', 'half_c']),
    s2d('dense_rows', 'rows', 'shape2', 'vals3'), s2d('dense_vec', 'vec', 'shape1', 'vals1'), s2d('dense_one', 'one', 'shape1', 'vals1'),
    { name: 'imm', op: 'BatchMatMulV2', input: ['ia', 'ib'], attr: { T: { type: 'DT_INT32' }, adj_x: { b: false }, adj_y: { b: false } } },
    // Blocks of 2x3 with padding, and back with crops (TF's wrapping of dilated convolutions).
    f('stb', 'SpaceToBatchND', ['z', 'block', 'pads']), f('bts', 'BatchToSpaceND', ['stb', 'block', 'crops']),
    f('bcast', 'BroadcastTo', ['y', 'to']),
    // TF's one-input Where (coordinates of the true elements) and a Pad whose paddings arrive at run time.
    f('positive', 'Greater', ['y', 'zero_f']), { name: 'where', op: 'Where', input: ['positive'], attr: { T: { type: 'DT_BOOL' } } },
    { name: 'padded', op: 'Pad', input: ['y', 'p'], attr: { T: { type: 'DT_FLOAT' }, Tpaddings: { type: 'DT_INT32' } } },
  ];
  const y: Tensor = { dtype: 'float32', shape: [3, 4], data: Float32Array.from(rand(12)) };
  const outputs = ['atan2', 'atan', 'asin', 'acos', 'tan', 'dense_rows', 'dense_vec', 'dense_one', 'imm', 'stb', 'bts', 'bcast', 'where', 'padded'];
  const p: Tensor = { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, 0, 2, 3) };
  await compare(graphModel([{ name: 'y', dtype: 'float32', shape: [3, 4] }, { name: 'z', dtype: 'float32', shape: [2, 5, 6, 3] }, { name: 'p', dtype: 'int32', shape: [2, 2] }], consts, nodes, outputs),
    { y, z: iota([2, 5, 6, 3]), p }, outputs, (k) => k);
});

/**
 * A TF conditional as tfjs graph models keep it (tf.cond after the converter: Switch, Merge, pivots,
 * constants with control inputs): run by tfjs's executeAsync and by ours, the predicate flipping
 * between calls of one session, on the CPU and (where an adapter exists) WebGPU. As in tfjs,
 * control inputs only order work: a Merge of two branch constants gives the first.
 */
test('TF.js conditionals (Switch/Merge) equal tfjs as the predicate flips between calls; an output on the branch not taken is a typed error', async () => {
  const f = (name: string, op: string, input: string[], T = 'DT_FLOAT') => ({ name, op, input, attr: { T: { type: T } } });
  const scalar = { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims([]) } } };
  const consts: Const[] = [
    { name: 'half', dtype: 'float32', shape: [], values: [0.5] },
    { name: 'ten', dtype: 'float32', shape: [], values: [10] },
    { name: 'filter', dtype: 'float32', shape: [1, 1, 2, 3], values: [1, -2, 0.5, 3, 0.25, -1] },
    { name: 'axis', dtype: 'int32', shape: [1], values: [3] },
    { name: 'k_f', dtype: 'float32', shape: [], values: [-7] }, { name: 'k_t', dtype: 'float32', shape: [], values: [7] },
  ];
  const nodes: Json[] = [
    f('pred', 'Greater', ['limit', 'ten']),
    f('sw', 'Switch', ['x', 'pred']), f('sw_pred', 'Switch', ['pred', 'pred'], 'DT_BOOL'),
    f('pivot_f', 'Identity', ['sw_pred'], 'DT_BOOL'), f('pivot_t', 'Identity', ['sw_pred:1'], 'DT_BOOL'),
    { name: 'k_f', op: 'Const', input: ['^pivot_f'], attr: scalar }, { name: 'k_t', op: 'Const', input: ['^pivot_t'], attr: scalar },
    // The filter reaches the convolution through the Switch, as a constant must at import.
    f('sw_filter', 'Switch', ['filter', 'pred']),
    f('else', 'Mul', ['sw', 'half']),
    { name: 'then', op: 'Conv2D', input: ['sw:1', 'sw_filter:1'], attr: { T: { type: 'DT_FLOAT' }, strides: { list: { i: ['1', '1', '1', '1'] } }, dilations: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: btoa('VALID') }, data_format: { s: btoa('NHWC') } } },
    f('then_sum', 'Sum', ['then', 'axis']), f('else_sum', 'Sum', ['else', 'axis']),
    f('out', 'Merge', ['else_sum', 'then_sum']), f('which', 'Merge', ['k_f', 'k_t']),
    f('result', 'Add', ['out', 'which']),
  ];
  const placeholders = [{ name: 'x', dtype: 'float32' as const, shape: [1, 2, 2, 2] }, { name: 'limit', dtype: 'float32' as const, shape: [] }];
  const model = graphModel(placeholders, consts, nodes, ['result', 'which']);
  await tf.setBackend('cpu');
  const tm = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: model.modelTopology, weightSpecs: model.weightsManifest[0].weights as never, weightData: model.weightData.slice().buffer }));
  const x: Tensor = { dtype: 'float32', shape: [1, 2, 2, 2], data: Float32Array.from([1, -2, 3, 0.5, -1, 4, 2, -3]) };
  const limitOf = (v: number): Tensor => ({ dtype: 'float32', shape: [], data: Float32Array.of(v) });
  const session = new Session(tfjsGraphToIr(model));
  const gpu = await webgpuSkip() ? [] : ['webgpu' as const];
  const seen = new Set<string>();
  for (const limit of [20, 5, 5, 20, 11, 0]) {
    const want = await tm.executeAsync({ x: tf.tensor(x.data as Float32Array, x.shape), limit: tf.scalar(limit) }, ['result', 'which']) as tf.Tensor[];
    seen.add(Array.from(want[0].dataSync()).join());
    for (const backend of [undefined, ...gpu]) {
      const got = await session.run({ x, limit: limitOf(limit) }, { backend });
      for (const [i, name] of ['result', 'which'].entries()) {
        assert.deepEqual([got[name].shape, Array.from(got[name].data as Float32Array)], [want[i].shape, Array.from(want[i].dataSync())], `limit ${limit}, ${backend ?? 'cpu'}: ${name}`);
      }
    }
    tf.dispose(want);
  }
  // Both branches ran (their results differ).
  assert.equal(seen.size, 2);
  tm.dispose();
  // A graph output on one branch only: a typed error when the other is taken.
  const thenOnly = new Session(tfjsGraphToIr(graphModel(placeholders, consts, nodes, ['then_sum'])));
  assert.equal((await thenOnly.run({ x, limit: limitOf(20) })).then_sum.shape.join('x'), '1x2x2');
  await assert.rejects(thenOnly.run({ x, limit: limitOf(0) }), /then_sum lies on a conditional branch this call did not take/);
});

/**
 * A while loop as tf.map_fn leaves it in a graph model (TF1 frame: Enter, Merge, Switch, LoopCond,
 * NextIteration, Exit; tensor arrays scattered in, read, written and gathered out), and the same
 * with TF2's tensor lists: run by tfjs's executeAsync and by ours, for several batch sizes through
 * one session, and with no rows (no iteration) against the shapes TF gives.
 */
test('TF.js while loops (tf.map_fn over tensor arrays and tensor lists) equal tfjs for any trip count, in one session', async () => {
  const b64 = (v: string) => btoa(v);
  const node = (name: string, op: string, input: string[], attr: Json = {}) => ({ name, op, input, attr: { T: { type: 'DT_FLOAT' }, ...attr } });
  const enter = (name: string, x: string, constant: boolean, T = 'DT_FLOAT') => node(name, 'Enter', [x], { T: { type: T }, frame_name: { s: b64('map/while') }, is_constant: { b: constant }, parallel_iterations: { i: '1' } });
  const i32 = { T: { type: 'DT_INT32' } };
  const shape = (dims: number[]) => ({ shape: { dim: dims.map((d) => ({ size: String(d) })) } });
  const consts: Const[] = [
    { name: 'zero', dtype: 'int32', shape: [], values: [0] }, { name: 'one', dtype: 'int32', shape: [], values: [1] },
    { name: 'c0', dtype: 'int32', shape: [1], values: [0] }, { name: 'c1', dtype: 'int32', shape: [1], values: [1] },
    { name: 'half', dtype: 'float32', shape: [], values: [0.5] },
  ];
  for (const lists of [false, true]) {
    const nodes: Json[] = [
      node('shape', 'Shape', ['x'], { out_type: { type: 'DT_INT32' } }),
      node('n', 'StridedSlice', ['shape', 'c0', 'c1', 'c1'], { T: { type: 'DT_INT32' }, Index: { type: 'DT_INT32' }, shrink_axis_mask: { i: '1' } }),
      node('rows', 'Range', ['zero', 'n', 'one'], { Tidx: { type: 'DT_INT32' } }),
      ...(lists ? [
        node('in', 'TensorListFromTensor', ['x', 'elem'], { element_dtype: { type: 'DT_FLOAT' } }),
        node('out', 'TensorListReserve', ['elem', 'n'], { element_dtype: { type: 'DT_FLOAT' } }),
      ] : [
        node('in', 'TensorArrayV3', ['n'], { dtype: { type: 'DT_FLOAT' }, element_shape: shape([-1]), dynamic_size: { b: false }, clear_after_read: { b: true }, identical_element_shapes: { b: true }, tensor_array_name: { s: '' } }),
        node('scatter', 'TensorArrayScatterV3', ['in', 'rows', 'x', 'in:1']),
        node('out', 'TensorArrayV3', ['n'], { dtype: { type: 'DT_FLOAT' }, element_shape: shape([-1]), dynamic_size: { b: false }, clear_after_read: { b: true }, identical_element_shapes: { b: true }, tensor_array_name: { s: '' } }),
      ]),
      enter('e_i', 'zero', false, 'DT_INT32'), enter('e_flow', lists ? 'out' : 'out:1', false, lists ? 'DT_VARIANT' : 'DT_FLOAT'),
      enter('e_n', 'n', true, 'DT_INT32'), enter('e_in', lists ? 'in' : 'scatter', true, lists ? 'DT_VARIANT' : 'DT_FLOAT'),
      ...(lists ? [] : [enter('e_h', 'in', true, 'DT_RESOURCE'), enter('e_hout', 'out', true, 'DT_RESOURCE')]),
      enter('e_half', 'half', true),
      node('m_i', 'Merge', ['e_i', 'next_i'], i32), node('m_flow', 'Merge', ['e_flow', 'next_flow']),
      node('less', 'Less', ['m_i', 'e_n'], i32), node('cond', 'LoopCond', ['less'], {}),
      node('s_i', 'Switch', ['m_i', 'cond'], i32), node('s_flow', 'Switch', ['m_flow', 'cond']),
      node('id_i', 'Identity', ['s_i:1'], i32),
      lists ? node('row', 'TensorListGetItem', ['e_in', 'id_i', 'elem'], { element_dtype: { type: 'DT_FLOAT' } }) : node('row', 'TensorArrayReadV3', ['e_h', 'id_i', 'e_in'], { dtype: { type: 'DT_FLOAT' } }),
      node('sq', 'Mul', ['row', 'row']), node('y', 'Sub', ['sq', 'e_half']),
      lists ? node('write', 'TensorListSetItem', ['s_flow:1', 'id_i', 'y'], { element_dtype: { type: 'DT_FLOAT' } }) : node('write', 'TensorArrayWriteV3', ['e_hout', 'id_i', 'y', 's_flow:1']),
      node('inc', 'AddV2', ['id_i', 'one'], i32),
      node('next_i', 'NextIteration', ['inc'], i32), node('next_flow', 'NextIteration', ['write']),
      node('exit_i', 'Exit', ['s_i'], i32), node('exit_flow', 'Exit', ['s_flow']),
      ...(lists ? [node('result', 'TensorListStack', ['exit_flow', 'elem'], { element_dtype: { type: 'DT_FLOAT' }, num_elements: { i: '-1' } })] : [
        node('size', 'TensorArraySizeV3', ['out', 'exit_flow']),
        node('all', 'Range', ['zero', 'size', 'one'], { Tidx: { type: 'DT_INT32' } }),
        node('result', 'TensorArrayGatherV3', ['out', 'all', 'exit_flow'], { dtype: { type: 'DT_FLOAT' }, element_shape: shape([4]) }),
      ]),
      node('count', 'Identity', ['exit_i'], i32),
    ];
    const model = graphModel([{ name: 'x', dtype: 'float32', shape: [-1, 4] }], [...consts, ...(lists ? [{ name: 'elem', dtype: 'int32' as const, shape: [1], values: [4] }] : [])], nodes, ['result', 'count']);
    await tf.setBackend('cpu');
    const tm = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: model.modelTopology, weightSpecs: model.weightsManifest[0].weights as never, weightData: model.weightData.slice().buffer }));
    const session = new Session(tfjsGraphToIr(model));
    const r = rng(3);
    for (const rows of [3, 1, 0, 5, 3]) {
      const x: Tensor = { dtype: 'float32', shape: [rows, 4], data: Float32Array.from({ length: rows * 4 }, () => r.next() * 4 - 2) };
      if (rows === 0) {
        // No iteration: nothing written, the declared element shape stacked zero times (tfjs 4.22 cannot make a [0, -1] list to compare with).
        const none = await session.run({ x });
        assert.deepEqual([none.result.shape, none.count.shape, Array.from(none.count.data as Int32Array)], [[0, 4], [], [0]]);
        continue;
      }
      const want = await tm.executeAsync({ x: tf.tensor(x.data as Float32Array, x.shape) }, ['result', 'count']) as tf.Tensor[];
      const got = await session.run({ x });
      for (const [i, name] of ['result', 'count'].entries()) {
        const g = got[name], w = want[i];
        assert.deepEqual(g.shape, w.shape, `${lists ? 'lists' : 'arrays'}, ${rows} rows: ${name} shape`);
        const wd = w.dataSync(), gd = g.data as Float32Array;
        for (let k = 0; k < wd.length; k++) assert.ok(Math.abs(gd[k] - wd[k]) <= 1e-6 * (1 + Math.abs(wd[k])), `${lists ? 'lists' : 'arrays'}, ${rows} rows: ${name}[${k}] ${gd[k]} vs ${wd[k]}`);
      }
      tf.dispose(want);
    }
    tm.dispose();
  }
});

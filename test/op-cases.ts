import assert from 'node:assert/strict';
import { fromNumbers, type RuntimeNode, type RuntimeTensor, type DType } from 'faster-cnn';
import type { Rng } from './helpers.js';

/**
 * Generated cases for the runtime's kernels, shared by the CPU kernel test (test/runtime.test.ts) and
 * the WebGPU one (test/webgpu-runtime.test.ts): each family builds a node and random inputs.
 */

/** A random tensor: floats in [-3, 3], integers in [-20, 20] (int64 beyond 2^53 where asked). */
export function randomTensor(r: Rng, dtype: DType, shape: number[]): RuntimeTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => (dtype === 'float32' ? r.next() * 6 - 3 : dtype === 'bool' ? r.int(0, 1) : dtype === 'uint8' ? r.int(0, 255) : r.int(-20, 20)));
  return fromNumbers(dtype, shape, v);
}

export function close(a: RuntimeTensor, b: RuntimeTensor, at: string, tol = 1e-4) {
  assert.deepEqual(a.shape, b.shape, at);
  assert.equal(a.dtype, b.dtype, at);
  const x = a.data as ArrayLike<number | bigint>, y = b.data as ArrayLike<number | bigint>;
  for (let i = 0; i < x.length; i++) {
    const p = Number(x[i]), q = Number(y[i]);
    if (Number.isNaN(p) && Number.isNaN(q)) continue;
    assert.ok(Math.abs(p - q) <= tol * (1 + Math.abs(q)), `${at} [${i}] ${p} vs ${q}`);
  }
}

export const UNARY = ['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Sqrt', 'Erf', 'HardSigmoid', 'HardSwish', 'Neg', 'Abs', 'Reciprocal', 'LeakyRelu', 'Log', 'Clip', 'Gelu', '_SiLU'];
export const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'PRelu'];
/** Cycles the unary and binary families through every op. */
let unaryTurn = 0, binaryTurn = 0;

const shape = (r: Rng, rank: number, max = 6) => Array.from({ length: rank }, () => r.int(1, max));

/**
 * Cases per fast kernel (op and variant): each builds a node and its inputs. Every registered
 * kernel must have one (checked below), so a new kernel cannot land without its twin test.
 */
export const CASES: Record<string, (r: Rng) => { node: Omit<RuntimeNode, 'name' | 'outputs'>; ins: RuntimeTensor[]; outputs?: number; tol?: number; opset?: number }> = {
  unary: (r) => {
    const op = UNARY[unaryTurn++ % UNARY.length];
    const x = randomTensor(r, 'float32', shape(r, r.int(1, 4)));
    if (op === 'Sqrt' || op === 'Log') (x.data as Float32Array).forEach((v, i, a) => (a[i] = Math.abs(v) + 0.1));
    const attrs: RuntimeNode['attrs'] = op === 'HardSigmoid' ? { alpha: r.next(), beta: r.next() } : op === 'LeakyRelu' ? { alpha: r.next() } : {};
    const ins = op === 'Clip' ? [x, fromNumbers('float32', [], [-r.next()]), fromNumbers('float32', [], [r.next()])] : [x];
    return { node: { op, inputs: ins.map((_, i) => `i${i}`), attrs }, ins };
  },
  binary: (r) => {
    const op = BINARY[binaryTurn++ % BINARY.length];
    const a = shape(r, r.int(1, 4));
    // The other operand: the same shape, a scalar, or a broadcast of it (some axes 1, fewer axes).
    const b = r.pick(['same', 'scalar', 'broadcast']) === 'same' ? a.slice() : r.next() < 0.3 ? [] : a.slice(r.int(0, a.length - 1)).map((d) => (r.next() < 0.5 ? 1 : d));
    const [x, y] = r.next() < 0.5 || op === 'PRelu' ? [a, b] : [b, a];
    return { node: { op, inputs: ['a', 'b'], attrs: {} }, ins: [randomTensor(r, 'float32', x), randomTensor(r, 'float32', y)] };
  },
  variadic: (r) => {
    const s = Array.from({ length: r.int(1, 4) }, () => r.int(1, 4));
    const ins = Array.from({ length: r.int(1, 4) }, () => randomTensor(r, 'float32', s.slice(r.int(0, s.length - 1)).map((d) => (r.next() < 0.3 ? 1 : d))));
    return { node: { op: r.pick(['Sum', 'Mean']), inputs: ins.map((_, i) => `i${i}`), attrs: {} }, ins };
  },
  Conv: (r) => {
    if (r.next() < 0.2) {
      // A GEMM that writes the output planes itself (sgemm_conv): channels a multiple of 4, pixels of 8,
      // 1 x 1 at stride 1 or 3 x 3 at stride 3 (neither runs direct).
      const O = 4 * r.int(1, 3), C = r.int(1, 6), pointwise = r.next() < 0.5;
      const x = randomTensor(r, 'float32', [r.int(1, 2), C, pointwise ? 4 : 12, pointwise ? 2 * r.int(1, 4) : 6]);
      const attrs: RuntimeNode['attrs'] = pointwise ? {} : { strides: [3, 3] };
      if (r.next() < 0.5) attrs._act = r.pick(['relu', 'sigmoid']);
      const ins = [x, randomTensor(r, 'float32', [O, C, pointwise ? 1 : 3, pointwise ? 1 : 3])];
      if (r.next() < 0.6) ins.push(randomTensor(r, 'float32', [O]));
      return { node: { op: 'Conv', inputs: ins.map((_, i) => `i${i}`), attrs }, ins };
    }
    if (r.next() < 0.2) {
      // im2col panels and the GEMM, at column stride 3 (never direct) or with weights over the direct
      // kernel's 256 KiB (64 x 115 x 3 x 3): padding, dilation and panels that span output rows.
      const big = r.next() < 0.15, O = big ? 64 : r.int(1, 9), C = big ? 115 : r.int(1, 5);
      const x = randomTensor(r, 'float32', [1, C, r.int(3, big ? 7 : 13), r.int(3, big ? 7 : 13)]);
      const attrs: RuntimeNode['attrs'] = { strides: [r.int(1, 3), big ? 1 : 3], dilations: [r.int(1, 2), r.int(1, 2)], pads: [r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2)] };
      const ins = [x, randomTensor(r, 'float32', [O, C, big ? 3 : r.int(1, 3), big ? 3 : r.int(1, 3)])];
      if (r.next() < 0.6) ins.push(randomTensor(r, 'float32', [O]));
      return { node: { op: 'Conv', inputs: ins.map((_, i) => `i${i}`), attrs }, ins };
    }
    // 4 and 6 groups: whole groups per thread (conv_groups_f32).
    const g = r.pick([1, 1, 2, 3, 4, 6]), Cg = r.int(1, 4), O = g * r.int(1, 4), K = [r.int(1, 4), r.int(1, 4)];
    const depthwise = r.next() < 0.3;
    const C = depthwise ? O : Cg * g, groups = depthwise ? O : g;
    const x = randomTensor(r, 'float32', [r.int(1, 2), C, r.int(4, 12), r.int(4, 12)]);
    const attrs: RuntimeNode['attrs'] = { group: groups, strides: [r.int(1, 2), r.int(1, 2)], dilations: [r.int(1, 2), 1] };
    if (r.next() < 0.3) attrs.auto_pad = r.pick(['SAME_UPPER', 'SAME_LOWER', 'VALID']);
    else attrs.pads = [r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2)];
    if (r.next() < 0.5) attrs._act = r.pick(['relu', 'sigmoid', 'hardswish', 'silu', 'tanh']);
    const ins = [x, randomTensor(r, 'float32', [O, C / groups, ...K])];
    if (r.next() < 0.6) ins.push(randomTensor(r, 'float32', [O]));
    return { node: { op: 'Conv', inputs: ins.map((_, i) => `i${i}`), attrs }, ins };
  },
  ConvTranspose: (r) => {
    const C = r.int(1, 4), O = r.int(1, 4), K = [r.int(1, 4), r.int(1, 4)], s = [r.int(1, 3), r.int(1, 3)];
    const attrs: RuntimeNode['attrs'] = { strides: s, pads: [r.int(0, 1), r.int(0, 1), r.int(0, 1), r.int(0, 1)], output_padding: [r.int(0, s[0] - 1), r.int(0, s[1] - 1)] };
    if (r.next() < 0.3) attrs.dilations = [2, 1];
    const ins = [randomTensor(r, 'float32', [r.int(1, 2), C, r.int(2, 7), r.int(2, 7)]), randomTensor(r, 'float32', [C, O, ...K])];
    if (r.next() < 0.5) ins.push(randomTensor(r, 'float32', [O]));
    return { node: { op: 'ConvTranspose', inputs: ins.map((_, i) => `i${i}`), attrs }, ins };
  },
  Gemm: (r) => {
    const M = r.int(1, 5), K = r.int(1, 30), N = r.int(1, 20), tB = r.int(0, 1);
    const ins = [randomTensor(r, 'float32', [M, K]), randomTensor(r, 'float32', tB ? [N, K] : [K, N])];
    if (r.next() < 0.7) ins.push(randomTensor(r, 'float32', r.pick([[N], [1, N]])));
    const attrs: RuntimeNode['attrs'] = { transB: tB, alpha: r.pick([1, 0.5]), beta: r.pick([1, 2]) };
    if (r.next() < 0.4) attrs._act = 'relu';
    return { node: { op: 'Gemm', inputs: ins.map((_, i) => `i${i}`), attrs }, ins };
  },
  MatMul: (r) => {
    const K = r.int(1, 20), lead = shape(r, r.int(0, 2), 3);
    const a = [...lead, r.int(1, 9), K];
    // B as a 2-d weight, or with batch axes of its own (broadcast against A's: each kept or 1).
    const b = r.next() < 0.5 ? [K, r.int(1, 17)] : [...lead.map((d) => (r.next() < 0.3 ? 1 : d)), K, r.int(1, 17)];
    const ins = [randomTensor(r, 'float32', a), randomTensor(r, 'float32', b)];
    // A 2-d weight with the bias the optimizer fuses into it half the time.
    if (b.length === 2 && r.next() < 0.5) ins.push(randomTensor(r, 'float32', [b[1]]));
    return { node: { op: 'MatMul', inputs: ins.map((_, i) => `i${i}`), attrs: {} }, ins };
  },
  pool: (r) => {
    const op = r.pick(['MaxPool', 'AveragePool']);
    const H = r.int(2, 14), W = r.int(2, 14), k = [r.int(1, Math.min(4, H)), r.int(1, Math.min(4, W))];
    const attrs: RuntimeNode['attrs'] = { kernel_shape: k, strides: [r.int(1, 3), r.int(1, 3)], pads: [r.int(0, k[0] - 1), r.int(0, k[1] - 1), r.int(0, k[0] - 1), r.int(0, k[1] - 1)], ceil_mode: r.int(0, 1) };
    if (op === 'AveragePool') attrs.count_include_pad = r.int(0, 1);
    return { node: { op, inputs: ['x'], attrs }, ins: [randomTensor(r, 'float32', [r.int(1, 2), r.int(1, 5), H, W])] };
  },
  reduce: (r) => {
    const op = r.pick(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceSumSquare', 'ReduceL2']);
    const s = shape(r, r.int(1, 4)), a0 = r.int(0, s.length - 1), a1 = r.int(a0, s.length - 1);
    const axes = Array.from({ length: a1 - a0 + 1 }, (_, i) => a0 + i - (r.next() < 0.3 ? s.length : 0));
    return { node: { op, inputs: ['x', 'axes'], attrs: { keepdims: r.int(0, 1) } }, ins: [randomTensor(r, 'float32', s), fromNumbers('int64', [axes.length], axes)] };
  },
  GlobalAveragePool: (r) => ({ node: { op: 'GlobalAveragePool', inputs: ['x'], attrs: {} }, ins: [randomTensor(r, 'float32', [r.int(1, 2), r.int(1, 5), ...shape(r, r.int(1, 2), 9)])] }),
  BatchNormalization: (r) => {
    const C = r.int(1, 6), x = randomTensor(r, 'float32', [r.int(1, 2), C, ...shape(r, r.int(0, 2))]);
    const v = randomTensor(r, 'float32', [C]);
    (v.data as Float32Array).forEach((q, i, a) => (a[i] = Math.abs(q) + 0.1));
    return { node: { op: 'BatchNormalization', inputs: ['x', 's', 'b', 'm', 'v'], attrs: { epsilon: 1e-3 } }, ins: [x, randomTensor(r, 'float32', [C]), randomTensor(r, 'float32', [C]), randomTensor(r, 'float32', [C]), v] };
  },
  LayerNormalization: (r) => {
    const s = shape(r, r.int(1, 4), 9), D = s[s.length - 1];
    return { node: { op: 'LayerNormalization', inputs: ['x', 'g', 'b'], attrs: { axis: -1, epsilon: 1e-5 } }, ins: [randomTensor(r, 'float32', s), randomTensor(r, 'float32', [D]), randomTensor(r, 'float32', [D])] };
  },
  Transpose: (r) => {
    const s = shape(r, r.int(1, 5), 5);
    const perm = s.map((_, i) => i).sort(() => r.next() - 0.5);
    return { node: { op: 'Transpose', inputs: ['x'], attrs: { perm } }, ins: [randomTensor(r, r.pick(['float32', 'int64', 'uint8', 'bool'] as DType[]), s)], tol: 0 };
  },
  Slice: (r) => {
    const s = shape(r, r.int(1, 4), 7), k = r.int(1, s.length);
    const axes = s.map((_, i) => i).sort(() => r.next() - 0.5).slice(0, k);
    const steps = axes.map(() => r.pick([1, 1, 2, -1, 3]));
    const starts = axes.map((a, i) => (steps[i] > 0 ? r.int(-s[a], s[a]) : r.int(-1, s[a] + 1)));
    const ends = axes.map((a, i) => (steps[i] > 0 ? r.int(-s[a], s[a] + 2) : r.int(-s[a] - 2, s[a])));
    const t = (v: number[]) => fromNumbers('int64', [v.length], v);
    return { node: { op: 'Slice', inputs: ['x', 's', 'e', 'a', 'p'], attrs: {} }, ins: [randomTensor(r, r.pick(['float32', 'int64'] as DType[]), s), t(starts), t(ends), t(axes.map((a) => (r.next() < 0.3 ? a - s.length : a))), t(steps)], tol: 0 };
  },
  TopK: (r) => {
    const s = shape(r, r.int(1, 3), 40), axis = r.int(0, s.length - 1);
    const x = randomTensor(r, r.pick(['float32', 'int32'] as DType[]), s);
    // Few distinct values, so that ties (broken by index) occur.
    if (r.next() < 0.5) (x.data as Float32Array).forEach((v, i, a) => (a[i] = Math.round(v)));
    return { node: { op: 'TopK', inputs: ['x', 'k'], attrs: { axis: axis - (r.next() < 0.5 ? s.length : 0), largest: r.int(0, 1) } }, ins: [x, fromNumbers('int64', [1], [r.int(0, s[axis])])], tol: 0 };
  },
  compare: (r) => {
    const op = r.pick(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']);
    const a = shape(r, r.int(1, 3)), b = r.next() < 0.5 ? a.slice() : a.map((d) => (r.next() < 0.5 ? 1 : d));
    const round = (t: RuntimeTensor) => ((t.data as Float32Array).forEach((v, i, q) => (q[i] = Math.round(v))), t);
    return { node: { op, inputs: ['a', 'b'], attrs: {} }, ins: [round(randomTensor(r, 'float32', a)), round(randomTensor(r, 'float32', b))], tol: 0 };
  },
  quantize: (r) => {
    const s = shape(r, r.int(1, 4), 7), dtype = r.pick(['uint8', 'int8'] as DType[]);
    const scale = fromNumbers('float32', [], [r.pick([0.5, 0.1, 1 / 255, 0.037])]);
    const zero = fromNumbers(dtype, [], [dtype === 'uint8' ? r.int(0, 255) : r.int(-128, 127)]);
    if (r.next() < 0.5) {
      // Values on and near the rounding ties, and beyond the codes' range.
      const x = randomTensor(r, 'float32', s);
      const step = (scale.data as Float32Array)[0];
      (x.data as Float32Array).forEach((_, i, a) => (a[i] = (r.int(-300, 300) + r.pick([0, 0.5, 0.49, -0.5])) * step));
      return { node: { op: 'QuantizeLinear', inputs: ['x', 's', 'z'], attrs: {} }, ins: r.next() < 0.3 && dtype === 'uint8' ? [x, scale] : [x, scale, zero], tol: 0 };
    }
    const q = randomTensor(r, dtype, s);
    return { node: { op: 'DequantizeLinear', inputs: ['x', 's', 'z'], attrs: {} }, ins: [q, scale, zero], tol: 0 };
  },
  _PciltConv: (r) => {
    const bits = r.int(1, 4), T = 1 << bits, dense = r.next() < 0.3, scale = r.pick([0.25, 0.5, 1 / 255]);
    const C = r.int(1, 4), O = r.int(1, 5), K = dense ? [1, 1] : [r.int(1, 3), r.int(1, 3)];
    const xs = dense ? [r.int(1, 3), C] : [r.int(1, 2), C, r.int(3, 8), r.int(3, 8)];
    const x = randomTensor(r, 'float32', xs);
    // Codes times the step, some beyond the codes' range (clamped).
    (x.data as Float32Array).forEach((_, i, a) => (a[i] = r.int(-1, T) * scale));
    const int = r.next() < 0.5;
    const tables = randomTensor(r, int ? 'int32' : 'float32', [O, C * K[0] * K[1], T]);
    if (int) (tables.data as Int32Array).forEach((_, i, a) => (a[i] = r.int(-2000, 2000)));
    const attrs: RuntimeNode['attrs'] = { bits, scale };
    if (!dense) Object.assign(attrs, { kernel_shape: K, pads: [r.int(0, 1), r.int(0, 1), r.int(0, 1), r.int(0, 1)], strides: [r.int(1, 2), r.int(1, 2)] });
    const ins = [x, tables, int ? randomTensor(r, 'float32', [O]) : undefined, r.next() < 0.7 ? randomTensor(r, 'float32', [O]) : undefined];
    const used = ins.map((t, i) => (t ? `i${i}` : ''));
    return { node: { op: '_PciltConv', inputs: used, attrs }, ins: ins as RuntimeTensor[], tol: int ? 1e-6 : 1e-4 };
  },
  Resize: (r) => {
    const H = r.int(1, 7), W = r.int(1, 7), mode = r.pick(['nearest', 'linear', 'cubic']);
    const coord = r.pick(['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'half_pixel_symmetric']);
    const attrs: RuntimeNode['attrs'] = { mode, coordinate_transformation_mode: coord, nearest_mode: r.pick(['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']) };
    const x = randomTensor(r, 'float32', [r.int(1, 2), r.int(1, 3), H, W]);
    const bySizes = r.next() < 0.5;
    const scales = fromNumbers('float32', [4], [1, 1, r.pick([0.5, 1, 2, 1.7, 3]), r.pick([0.5, 1, 2, 0.75, 3])]);
    const sizes = fromNumbers('int64', [4], [x.shape[0], x.shape[1], r.int(1, 12), r.int(1, 12)]);
    // Upsample (opset 7-9): scales as an input, asymmetric coordinates, floor.
    if (r.next() < 0.2) return { node: { op: 'Upsample', inputs: ['x', 's'], attrs: { mode: r.pick(['nearest', 'linear']) } }, ins: [x, scales], tol: 1e-5 };
    return { node: { op: 'Resize', inputs: bySizes ? ['x', '', '', 's'] : ['x', '', 's'], attrs }, ins: (bySizes ? [x, undefined, undefined, sizes] : [x, undefined, scales]) as RuntimeTensor[], tol: 1e-5 };
  },
  Softmax: (r) => {
    const s = shape(r, r.int(1, 4), 9), op = r.pick(['Softmax', 'LogSoftmax']);
    const axis = r.next() < 0.7 ? r.pick([-1, s.length - 1]) : r.int(-s.length, s.length - 1);
    const x = randomTensor(r, 'float32', s);
    // Large values too (the row maximum is what keeps exp finite).
    if (r.next() < 0.3) (x.data as Float32Array).forEach((v, i, a) => (a[i] = v * 40));
    // Before opset 13: over every axis from `axis` on (default 1), flattened.
    const old: RuntimeNode['attrs'] = r.next() < 0.5 ? {} : { axis };
    if (r.next() < 0.3) return { node: { op, inputs: ['x'], attrs: old }, ins: [x], opset: 11 };
    return { node: { op, inputs: ['x'], attrs: { axis } }, ins: [x] };
  },
  Gather: (r) => {
    const s = shape(r, r.int(1, 4), 6), axis = r.int(0, s.length - 1);
    const ix = shape(r, r.int(0, 2), 3), D = s[axis];
    const v = Array.from({ length: ix.reduce((a, b) => a * b, 1) }, () => r.int(-D, D - 1));
    return {
      node: { op: 'Gather', inputs: ['x', 'i'], attrs: { axis: r.next() < 0.5 ? axis : axis - s.length } },
      ins: [randomTensor(r, r.pick(['float32', 'int64', 'uint8'] as DType[]), s), fromNumbers(r.pick(['int64', 'int32'] as DType[]), ix, v)], tol: 0,
    };
  },
  Concat: (r) => {
    const s = shape(r, r.int(1, 4), 5), axis = r.int(0, s.length - 1), k = r.int(1, 4);
    // Parts of any size along the axis, 0 included.
    const ins = Array.from({ length: k }, () => randomTensor(r, r.pick(['float32', 'float32', 'int64'] as DType[]) === 'int64' && k === 1 ? 'int64' : 'float32', s.map((d, i) => (i === axis ? r.int(0, 4) : d))));
    return { node: { op: 'Concat', inputs: ins.map((_, i) => `i${i}`), attrs: { axis: r.next() < 0.5 ? axis : axis - s.length } }, ins, tol: 0 };
  },
  Split: (r) => {
    const s = shape(r, r.int(1, 4), 6), axis = r.int(0, s.length - 1), n = r.int(1, 3);
    // Sizes given (some 0), or equal parts (num_outputs may leave the last one smaller).
    const cuts = Array.from({ length: n - 1 }, () => r.int(0, s[axis])).sort((a, b) => a - b);
    const sizes = [...cuts, s[axis]].map((c, i, a) => c - (i ? a[i - 1] : 0));
    const given = r.next() < 0.6;
    return {
      node: { op: 'Split', inputs: given ? ['x', 's'] : ['x'], attrs: { axis: r.next() < 0.5 ? axis : axis - s.length, ...(given ? {} : { num_outputs: n }) } },
      ins: [randomTensor(r, r.pick(['float32', 'int64', 'uint8'] as DType[]), s), ...(given ? [fromNumbers('int64', [n], sizes)] : [])], outputs: n, tol: 0,
    };
  },
  NonMaxSuppression: (r) => {
    const B = r.int(1, 2), C = r.int(1, 3), N = r.int(0, 30);
    // Boxes on a small grid, so that overlaps and equal scores (kept in index order) occur; corners in either order.
    const boxes = fromNumbers('float32', [B, N, 4], Array.from({ length: B * N * 4 }, () => r.int(0, 8) / 2));
    const scores = fromNumbers('float32', [B, C, N], Array.from({ length: B * C * N }, () => r.int(0, 10) / 10));
    return {
      node: { op: 'NonMaxSuppression', inputs: ['b', 's', 'm', 'i', 't'], attrs: { center_point_box: r.int(0, 1) } },
      ins: [boxes, scores, fromNumbers('int64', [1], [r.int(0, 12)]), fromNumbers('float32', [1], [r.pick([0, 0.3, 0.5, 0.7])]), fromNumbers('float32', [1], [r.pick([0, 0.25, 0.5])])], tol: 0,
    };
  },
  Pad: (r) => {
    const s = shape(r, r.int(1, 4), 5);
    const pads = [...s.map(() => r.int(0, 2)), ...s.map(() => r.int(0, 2))];
    return { node: { op: 'Pad', inputs: ['x', 'pads', 'v'], attrs: { mode: 'constant' } }, ins: [randomTensor(r, 'int32', s), fromNumbers('int64', [pads.length], pads), fromNumbers('int32', [], [r.int(-3, 3)])], tol: 0 };
  },
};

/** Which case family tests a kernel. */
export function familyOf(op: string): string {
  if (CASES[op]) return op;
  if (['MaxPool', 'AveragePool'].includes(op)) return 'pool';
  if (op === 'Upsample') return 'Resize';
  if (op === 'LogSoftmax') return 'Softmax';
  if (op === 'Sum' || op === 'Mean') return 'variadic';
  if (op.startsWith('Reduce')) return 'reduce';
  if (BINARY.includes(op)) return 'binary';
  if (['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'].includes(op)) return 'compare';
  if (op === 'QuantizeLinear' || op === 'DequantizeLinear') return 'quantize';
  return 'unary';
}


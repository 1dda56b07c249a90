import type { Node } from '../../ir/graph.js';
import { ints, numberAt, sizeOf, stridesOf, type Tensor } from '../../ir/tensor.js';
import { broadcastShapes } from '../../ops/broadcast.js';
import { attrFloat, attrInt, attrInts, attrStr, axisOf, opDef } from '../../ops/registry.js';
import { sliceView } from '../../ops/slice.js';
import { isF32, f32, MAIN, MAX_RANK, groupsFor, header, registerGpuKernel, type Arg, type GpuRun, type GpuTensor, type Meta } from './gpu.js';

/**
 * Data movement on the GPU for float32 tensors: a strided view copy (Transpose, Slice, Split,
 * Expand), Concat, Pad (constant, edge, reflect, wrap); the ops that only relabel a shape
 * (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) pass the device buffer on; Shape
 * reads the shape alone. Softmax/LogSoftmax over any axis. Twins: the reference ops in src/ops.
 */

/** The CPU inputs after the first (shapes, axes, pads): present as data, not device tensors. */
const cpuRest = (ins: (Meta | undefined)[]): boolean => ins.slice(1).every((t) => t === undefined || t.data !== undefined);

const fill = (v: number[], to = MAX_RANK) => [...new Array(to - v.length).fill(0), ...v];

/** Y[i] = X[offset + sum_k coord_k(i) * strides[k]] over `shape` (strides may be 0 or negative). */
function view(run: GpuRun, x: GpuTensor, shape: number[], offset: number, strides: number[]): GpuTensor {
  const y = run.tensor(shape), n = sizeOf(shape);
  run.dispatch('view-f32', () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  var rem = i; var at = i32(P[1]);
  for (var d = ${MAX_RANK - 1}; d >= 0; d--) {
    let dim = P[2 + d];
    if (dim == 0u) { break; }
    at += i32(rem % dim) * bitcast<i32>(P[${2 + MAX_RANK} + d]);
    rem = rem / dim;
  }
  Y[i] = X0[u32(at)];
}`, [n, offset, ...fill(shape), ...fill(strides).map((s) => s >>> 0)], [x.buffer, y.buffer], groupsFor(n));
  return y;
}

/** Shapes of rank 1..6 without empty axes (the view kernel reads a 0 as the end of the dims). */
const viewable = (shape: number[]): boolean => shape.length >= 1 && shape.length <= MAX_RANK && shape.every((d) => d > 0);

registerGpuKernel({
  op: 'Transpose', variant: 'f32-view',
  supports: (ins) => isF32(ins[0]) && viewable(ins[0]!.shape),
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!), r = x.shape.length;
    const perm = r >= 2 && node.attrs._swapLast === 1 ? x.shape.map((_, i) => (i < r - 2 ? i : 2 * r - 3 - i)) : attrInts(node, 'perm') ?? x.shape.map((_, i) => r - 1 - i);
    const st = stridesOf(x.shape);
    return [view(run, x, perm.map((p) => x.shape[p]), 0, perm.map((p) => st[p]))];
  },
});

registerGpuKernel({
  op: 'Slice', variant: 'f32-view',
  supports: (ins) => isF32(ins[0]) && viewable(ins[0]!.shape) && cpuRest(ins),
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!), r = x.shape.length;
    const arg = (i: number, key: string) => (ins[i] ? ints(ins[i] as Tensor) : attrInts(node, key));
    const starts = arg(1, 'starts')!, ends = arg(2, 'ends')!;
    const axes = (arg(3, 'axes') ?? starts.map((_, i) => i)).map((a) => axisOf(node, a, r));
    const steps = ins[4] ? ints(ins[4] as Tensor) : starts.map(() => 1);
    const v = sliceView(x.shape, starts, ends, axes, steps, node);
    if (!v.shape.every((d) => d > 0)) return [run.tensor(v.shape)];
    return [view(run, x, v.shape, v.offset, v.strides)];
  },
});

registerGpuKernel({
  op: 'Split', variant: 'f32-view',
  supports: (ins) => isF32(ins[0]) && viewable(ins[0]!.shape) && cpuRest(ins),
  run(ins, node, ctx, run) {
    const x = run.onDevice(ins[0]!), r = x.shape.length;
    const axis = axisOf(node, attrInt(node, 'axis', 0), r), D = x.shape[axis], n = node.outputs.length;
    let parts = ins[1] ? ints(ins[1] as Tensor) : attrInts(node, 'split');
    if (!parts) {
      const k = Math.ceil(D / n);
      parts = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(k, D - i * k)));
    }
    if (parts.length !== n || parts.reduce((a, b) => a + b, 0) !== D) {
      // The reference says what is wrong with the split.
      opDef('Split')!.run([{ dtype: 'float32', shape: x.shape, data: new Float32Array(sizeOf(x.shape)) }, ins[1] as Tensor | undefined], node, ctx);
    }
    const st = stridesOf(x.shape);
    let at = 0;
    return parts.map((p) => {
      const shape = x.shape.slice();
      shape[axis] = p;
      const y = p > 0 ? view(run, x, shape, at * st[axis], st) : run.tensor(shape);
      at += p;
      return y;
    });
  },
});

registerGpuKernel({
  op: 'Expand', variant: 'f32-view',
  supports: (ins) => isF32(ins[0]) && cpuRest(ins) && ins[1] !== undefined,
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!);
    const shape = broadcastShapes(node, [x.shape, ints(ins[1] as Tensor)]);
    if (!viewable(shape)) return [run.tensor(shape)];
    const padded = [...new Array(shape.length - x.shape.length).fill(1), ...x.shape], st = stridesOf(padded);
    return [view(run, x, shape, 0, padded.map((d, i) => (d === 1 ? 0 : st[i])))];
  },
});

registerGpuKernel({
  op: 'Concat', variant: 'f32-copy',
  supports: (ins) => ins.length >= 1 && ins.every((t) => isF32(t)),
  run(ins, node, _ctx, run) {
    const xs = ins.map((t) => run.onDevice(t!));
    const r = xs[0].shape.length, axis = axisOf(node, attrInt(node, 'axis', 0), r);
    const shape = xs[0].shape.slice();
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
    const y = run.tensor(shape);
    const row = sizeOf(shape.slice(axis));
    let at = 0;
    for (const x of xs) {
      const chunk = sizeOf(x.shape.slice(axis)), n = sizeOf(x.shape);
      if (n) {
        run.dispatch('concat-f32', () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  Y[(i / P[1]) * P[2] + P[3] + i % P[1]] = X0[i];
}`, [n, chunk, row, at], [x.buffer, y.buffer], groupsFor(n));
      }
      at += chunk;
    }
    return [y];
  },
});

/** DepthToSpace and SpaceToDepth as strided views over the 6-d shapes they pass through (ONNX's definitions). */
registerGpuKernel({
  op: 'DepthToSpace', variant: 'f32-view',
  supports: (ins, node) => isF32(ins[0]) && ins[0]!.shape.length === 4 && attrInt(node, 'blocksize', 0) >= 1 && ins[0]!.shape[1] % attrInt(node, 'blocksize', 1) ** 2 === 0,
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!), b = attrInt(node, 'blocksize', 1), [N, C, H, W] = x.shape, c = C / (b * b);
    const dcr = attrStr(node, 'mode', 'DCR', ['DCR', 'CRD']) === 'DCR';
    // Output [N, c, H, b, W, b]: DCR reads channel (by * b + bx) * c + ci, CRD ci * b * b + by * b + bx.
    const strides = dcr ? [C * H * W, H * W, W, b * c * H * W, 1, c * H * W] : [C * H * W, b * b * H * W, W, b * H * W, 1, H * W];
    const y = view(run, x, [N, c, H, b, W, b], 0, strides);
    return [{ ...y, shape: [N, c, H * b, W * b] }];
  },
});

registerGpuKernel({
  op: 'SpaceToDepth', variant: 'f32-view',
  supports: (ins, node) => {
    const b = attrInt(node, 'blocksize', 0), x = ins[0];
    return isF32(x) && x!.shape.length === 4 && b >= 1 && x!.shape[2] % b === 0 && x!.shape[3] % b === 0;
  },
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!), b = attrInt(node, 'blocksize', 1), [N, C, H, W] = x.shape;
    // Output channel (by * b + bx) * C + c at (h, w) reads (c, h * b + by, w * b + bx).
    const y = view(run, x, [N, b, b, C, H / b, W / b], 0, [C * H * W, W, 1, H * W, b * W, b]);
    return [{ ...y, shape: [N, C * b * b, H / b, W / b] }];
  },
});

const PAD_MODES = ['constant', 'edge', 'reflect', 'wrap'];

registerGpuKernel({
  op: 'Pad', variant: 'f32-pad',
  supports: (ins) => isF32(ins[0]) && viewable(ins[0]!.shape) && cpuRest(ins),
  run(ins, node, _ctx, run) {
    const x = run.onDevice(ins[0]!), r = x.shape.length;
    const mode = attrStr(node, 'mode', 'constant', PAD_MODES);
    const given = ins[1] ? ints(ins[1] as Tensor) : attrInts(node, 'pads')!;
    const axes = ins[3] ? ints(ins[3] as Tensor).map((a) => axisOf(node, a, r)) : x.shape.map((_, i) => i);
    const begin = new Array<number>(r).fill(0), end = new Array<number>(r).fill(0);
    axes.forEach((a, i) => {
      begin[a] = given[i];
      end[a] = given[i + axes.length];
    });
    const shape = x.shape.map((d, i) => d + begin[i] + end[i]);
    const value = ins[2] && sizeOf(ins[2].shape) > 0 ? numberAt(ins[2] as Tensor, 0) : attrFloat(node, 'value', 0);
    const y = run.tensor(shape), n = sizeOf(shape);
    if (!n) return [y];
    run.dispatch(`pad-f32/${mode}`, () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  var rem = i; var at = 0u; var stride = 1u;
  for (var d = ${MAX_RANK - 1}; d >= 0; d--) {
    let dim = P[2 + d];
    if (dim == 0u) { break; }
    let xd = i32(P[${2 + MAX_RANK} + d]);
    var j = i32(rem % dim) - bitcast<i32>(P[${2 + 2 * MAX_RANK} + d]);
    rem = rem / dim;
    if (j < 0 || j >= xd) {
      ${mode === 'constant' ? 'Y[i] = bitcast<f32>(P[1]); return;' : mode === 'edge' ? 'j = clamp(j, 0, xd - 1);' : mode === 'wrap' ? 'j = ((j % xd) + xd) % xd;'
        : 'if (xd == 1) { j = 0; } else { let period = 2 * (xd - 1); j = ((j % period) + period) % period; if (j >= xd) { j = period - j; } }'}
    }
    at += u32(j) * stride;
    stride *= u32(xd);
  }
  Y[i] = X0[at];
}`, [n, f32(value), ...fill(shape), ...fill(x.shape), ...fill(begin).map((v) => v >>> 0)], [x.buffer, y.buffer], groupsFor(n));
    return [y];
  },
});

/** Ops whose output is the input's data under another shape: the reference computes the shape. */
for (const op of ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']) {
  registerGpuKernel({
    op, variant: 'alias',
    supports: (ins, node) => isF32(ins[0]) && cpuRest(ins) && node.outputs.length === 1,
    run(ins, node, ctx, run) {
      const x = run.onDevice(ins[0]!);
      // The reference reads only the shape of input 0 (and the CPU inputs): an empty stand-in carries it.
      const stand = { dtype: 'float32' as const, shape: x.shape, data: new Float32Array(0) };
      const out = opDef(op)!.run([stand, ...(ins.slice(1) as (Tensor | undefined)[])], node, ctx) as Tensor[];
      return [{ ...x, shape: out[0].shape }];
    },
  });
}

registerGpuKernel({
  op: 'Shape', variant: 'host',
  supports: (ins) => ins[0] !== undefined,
  run(ins, node, ctx) {
    const x = ins[0]!;
    return opDef('Shape')!.run([{ dtype: 'float32', shape: x.shape, data: new Float32Array(0) }], node, ctx) as Tensor[];
  },
});

for (const op of ['Softmax', 'LogSoftmax']) {
  registerGpuKernel({
    op, variant: 'f32-rows',
    supports: (ins) => isF32(ins[0]) && ins[0]!.shape.length >= 1,
    run(ins, node, ctx, run) {
      const x = run.onDevice(ins[0]!), r = x.shape.length, old = ctx.opset < 13;
      const axis = axisOf(node, attrInt(node, 'axis', old ? 1 : -1), r);
      const len = old ? sizeOf(x.shape.slice(axis)) : x.shape[axis];
      const stride = old ? 1 : sizeOf(x.shape.slice(axis + 1));
      const rows = sizeOf(x.shape) / Math.max(len, 1);
      const y = run.tensor(x.shape.slice());
      run.dispatch(`softmax-f32/${op}`, () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  let len = P[1]; let stride = P[2];
  let base = (i / stride) * len * stride + i % stride;
  var m = -3.402823e38;
  for (var k = 0u; k < len; k++) { m = max(m, X0[base + k * stride]); }
  var s = 0.0;
  for (var k = 0u; k < len; k++) { s += exp(X0[base + k * stride] - m); }
  for (var k = 0u; k < len; k++) {
    ${op === 'Softmax' ? 'Y[base + k * stride] = exp(X0[base + k * stride] - m) / s;' : 'Y[base + k * stride] = X0[base + k * stride] - m - log(s);'}
  }
}`, [rows, len, stride], [x.buffer, y.buffer], groupsFor(rows));
      return [y];
    },
  });
}

export type { Arg, Node };

import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import { resizePlan, type ResizeStep } from '../../ops/resize.js';
import { MAIN, groupsFor, header, registerGpuKernel, type Meta } from './gpu.js';

/**
 * Resize and Upsample of the two spatial axes of NCHW tensors on the GPU (nearest, linear and
 * cubic, every coordinate mode but tf_crop_and_resize): the reference's own taps per axis (which
 * input rows and columns each output reads, with what weight) go up once per node and shape; the
 * kernel blends them, rows first, as the reference does. Twin: src/ops/resize.ts.
 */

/** Taps of one axis as flat arrays of `k` entries an output position (identity where the axis keeps its size). */
interface AxisTaps { k: number; idx: Float32Array; w: Float32Array }

function axisTaps(step: ResizeStep | undefined, len: number): AxisTaps {
  if (!step) return { k: 1, idx: Float32Array.from({ length: len }, (_, i) => i), w: new Float32Array(len).fill(1) };
  const k = step.taps[0]![0].length;
  const idx = new Float32Array(step.lenOut * k), w = new Float32Array(step.lenOut * k);
  step.taps.forEach((t, o) => t![0].forEach((v, j) => {
    idx[o * k + j] = v;
    w[o * k + j] = t![1][j];
  }));
  return { k, idx, w };
}

/** The plan of a node for one input shape, kept (the uploaded arrays are cached by identity). */
const plans = new WeakMap<Node, Map<string, { out: number[]; y: AxisTaps; x: AxisTaps } | null>>();

function planOf(node: Node, ins: (Meta | undefined)[], opset: number): { out: number[]; y: AxisTaps; x: AxisTaps } | null {
  const x = ins[0]!;
  const key = `${x.shape}|${ins.slice(1).map((t) => (t?.data ? Array.from(t.data as ArrayLike<number>, Number).join(',') : '-')).join('|')}`;
  const byShape = plans.get(node) ?? new Map();
  plans.set(node, byShape);
  if (byShape.has(key)) return byShape.get(key)!;
  let plan: { out: number[]; y: AxisTaps; x: AxisTaps } | null = null;
  const { steps } = resizePlan(node, [{ dtype: 'float32', shape: x.shape, data: new Float32Array(0) }, ...(ins.slice(1) as (Tensor | undefined)[])], opset);
  if (x.shape.length === 4 && steps.every((s) => s.axis >= 2 && s.taps.every((t) => t !== null))) {
    const sy = steps.find((s) => s.axis === 2), sx = steps.find((s) => s.axis === 3);
    plan = { out: [x.shape[0], x.shape[1], sy?.lenOut ?? x.shape[2], sx?.lenOut ?? x.shape[3]], y: axisTaps(sy, x.shape[2]), x: axisTaps(sx, x.shape[3]) };
  }
  byShape.set(key, plan);
  return plan;
}

for (const op of ['Resize', 'Upsample']) {
  registerGpuKernel({
    op, variant: 'f32-taps-2d',
    supports: (ins, node, ctx) => {
      if (ins[0]?.dtype !== 'float32' || ins[0].shape.length !== 4 || ins.slice(1).some((t) => t && t.data === undefined) || sizeOf(ins[0].shape) === 0) return false;
      try {
        return planOf(node, ins, ctx.opset) !== null;
      } catch {
        // The reference says what is wrong (on the CPU).
        return false;
      }
    },
    run(ins, node, ctx, run) {
      const plan = planOf(node, ins as (Meta | undefined)[], ctx.opset)!;
      const x = run.onDevice(ins[0]!);
      const [, , H, W] = x.shape, [, , OH, OW] = plan.out;
      const y = run.tensor(plan.out), n = sizeOf(plan.out);
      run.dispatch(`resize-f32/${plan.y.k}x${plan.x.k}`, () => `${header(5)}
${MAIN}
  if (i >= P[0]) { return; }
  let H = P[1]; let W = P[2]; let OH = P[3]; let OW = P[4];
  let ox = i % OW; let oy = (i / OW) % OH; let plane = i / (OW * OH);
  var v = 0.0;
  for (var kx = 0u; kx < ${plan.x.k}u; kx++) {
    let ix = u32(X3[ox * ${plan.x.k}u + kx]);
    var col = 0.0;
    for (var ky = 0u; ky < ${plan.y.k}u; ky++) {
      col += X2[oy * ${plan.y.k}u + ky] * X0[(plane * H + u32(X1[oy * ${plan.y.k}u + ky])) * W + ix];
    }
    v += X4[ox * ${plan.x.k}u + kx] * col;
  }
  Y[i] = v;
}`, [n, H, W, OH, OW], [x.buffer, run.constantArray(plan.y.idx), run.constantArray(plan.y.w), run.constantArray(plan.x.idx), run.constantArray(plan.x.w), y.buffer], groupsFor(n));
      return [y];
    },
  });
}

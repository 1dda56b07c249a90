import type { Node } from '../ir/graph.js';
import { ints, numbers, sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import { attrFloat, attrInt, attrInts, attrStr, axisOf, checkDType, defineOp, fail, need, type Inputs } from './registry.js';

interface Mode {
  mode: string; coord: string; nearest: string; cubicA: number; excludeOutside: boolean; extrapolation: number;
}

/** Where output coordinate x falls in the input (ONNX's coordinate_transformation_mode). */
function original(m: Mode, x: number, scale: number, lenIn: number, lenOut: number, roi: [number, number]): number {
  switch (m.coord) {
    case 'half_pixel': return (x + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel': return lenOut > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return lenOut === 1 ? 0 : (x * (lenIn - 1)) / (lenOut - 1);
    case 'asymmetric': return x / scale;
    case 'tf_half_pixel_for_nn': return (x + 0.5) / scale;
    case 'half_pixel_symmetric': {
      const adj = lenOut / (scale * lenIn), center = lenIn / 2;
      return center * (1 - adj) + (x + 0.5) / scale - 0.5;
    }
    default: // tf_crop_and_resize
      return lenOut > 1 ? roi[0] * (lenIn - 1) + (x * (roi[1] - roi[0]) * (lenIn - 1)) / (lenOut - 1) : 0.5 * (roi[0] + roi[1]) * (lenIn - 1);
  }
}

/** Taps (input index, weight) of each output position along one axis; null taps mean the extrapolation value. */
function taps(m: Mode, scale: number, lenIn: number, lenOut: number, roi: [number, number]): ([number[], number[]] | null)[] {
  const out: ([number[], number[]] | null)[] = [];
  for (let x = 0; x < lenOut; x++) {
    // The formulas use the size before rounding (lenIn * scale), as ONNX's reference does.
    const xo = original(m, x, scale, lenIn, lenIn * scale, roi);
    if (m.coord === 'tf_crop_and_resize' && (xo < 0 || xo > lenIn - 1)) {
      out.push(null);
      continue;
    }
    const edge = (i: number) => Math.min(lenIn - 1, Math.max(0, i));
    if (m.mode === 'nearest') {
      const f = Math.floor(xo), half = xo - f === 0.5;
      const i = m.nearest === 'floor' ? f : m.nearest === 'ceil' ? Math.ceil(xo) : half ? (m.nearest === 'round_prefer_floor' ? f : f + 1) : Math.round(xo);
      out.push([[edge(i)], [1]]);
    } else if (m.mode === 'linear') {
      const c = Math.min(lenIn - 1, Math.max(0, xo)), f = Math.floor(c), r = c - f;
      out.push([[f, edge(f + 1)], [1 - r, r]]);
    } else {
      const f = Math.floor(xo), r = xo - f, A = m.cubicA;
      const w = [
        ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
        ((A + 2) * r - (A + 3)) * r * r + 1,
        ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
        ((A * (2 - r) - 5 * A) * (2 - r) + 8 * A) * (2 - r) - 4 * A,
      ];
      const idx = [f - 1, f, f + 1, f + 2];
      if (m.excludeOutside) {
        idx.forEach((i, k) => {
          if (i < 0 || i >= lenIn) w[k] = 0;
        });
        const s = w.reduce((a, b) => a + b, 0);
        for (let k = 0; k < 4; k++) w[k] /= s;
      }
      out.push([idx.map(edge), w]);
    }
  }
  return out;
}

/** Resizes one axis of a float tensor. */
function resizeAxis(x: Float32Array, shape: number[], axis: number, lenOut: number, t: ([number[], number[]] | null)[], extrapolation: number): Float32Array {
  const outer = sizeOf(shape.slice(0, axis)), inner = sizeOf(shape.slice(axis + 1)), lenIn = shape[axis];
  const y = new Float32Array(outer * lenOut * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < lenOut; j++) {
      const tap = t[j], dst = (o * lenOut + j) * inner;
      if (!tap) {
        y.fill(extrapolation, dst, dst + inner);
        continue;
      }
      const [idx, w] = tap;
      for (let i = 0; i < inner; i++) {
        let s = 0;
        for (let k = 0; k < idx.length; k++) s += w[k] * x[(o * lenIn + idx[k]) * inner + i];
        y[dst + i] = s;
      }
    }
  }
  return y;
}

/** One axis a Resize changes: its new length and the taps of each output position along it. */
export interface ResizeStep { axis: number; lenOut: number; taps: ([number[], number[]] | null)[] }

/** The axes a Resize changes, in order, and the value of taps outside the input (tf_crop_and_resize). */
export function resizeSteps(node: Node, x: { dtype: string; shape: number[] }, m: Mode, scalesGiven: number[] | undefined, sizesGiven: number[] | undefined,
  roiGiven: number[] | undefined, axesGiven: number[] | undefined): ResizeStep[] {
  checkDType(node, x as Tensor, ['float32']);
  const r = x.shape.length;
  const axes = (axesGiven ?? x.shape.map((_, i) => i)).map((a) => axisOf(node, a, r, 'axes'));
  const scales = x.shape.map(() => 1), sizes = x.shape.slice();
  if (sizesGiven) {
    if (sizesGiven.length !== axes.length) fail(node, `sizes [${sizesGiven}] must hold ${axes.length} numbers`);
    const policy = attrStr(node, 'keep_aspect_ratio_policy', 'stretch', ['stretch', 'not_larger', 'not_smaller']);
    const ratios = axes.map((a, i) => sizesGiven[i] / x.shape[a]);
    const keep = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    axes.forEach((a, i) => {
      scales[a] = policy === 'stretch' ? ratios[i] : keep;
      sizes[a] = policy === 'stretch' ? sizesGiven[i] : Math.round(keep * x.shape[a]);
    });
  } else if (scalesGiven) {
    if (scalesGiven.length !== axes.length || scalesGiven.some((s) => !(s > 0))) fail(node, `scales [${scalesGiven}] must be ${axes.length} positive numbers`);
    axes.forEach((a, i) => {
      scales[a] = scalesGiven[i];
      sizes[a] = Math.floor(x.shape[a] * scalesGiven[i]);
    });
  } else fail(node, 'needs scales or sizes');
  const steps: ResizeStep[] = [];
  for (let a = 0; a < r; a++) {
    if (sizes[a] === x.shape[a] && scales[a] === 1 && m.coord !== 'tf_crop_and_resize') continue;
    const k = axes.indexOf(a);
    const roi: [number, number] = roiGiven && k >= 0 ? [roiGiven[k], roiGiven[k + axes.length]] : [0, 1];
    steps.push({ axis: a, lenOut: sizes[a], taps: taps(m, scales[a], x.shape[a], sizes[a], roi) });
  }
  return steps;
}

/** A Resize or Upsample node's steps, from its inputs and attributes (only the shape of input 0 is read). */
export function resizePlan(node: Node, ins: Inputs, opset: number): { steps: ResizeStep[]; extrapolation: number } {
  const x = need(ins, 0, node);
  if (node.op === 'Upsample') {
    const scales = ins[1] ? Array.from(numbers(ins[1])) : (node.attrs.scales as number[] | undefined);
    const m = modeOf(node, true);
    return { steps: resizeSteps(node, x, m, scales, undefined, undefined, undefined), extrapolation: m.extrapolation };
  }
  if (attrInt(node, 'antialias', 0) === 1) fail(node, 'antialias is not supported');
  const old = opset < 11;
  const list = (t: Tensor | undefined) => (t && sizeOf(t.shape) > 0 ? Array.from(numbers(t)) : undefined);
  const scales = list(old ? ins[1] : ins[2]), sizes = old ? undefined : ins[3] && sizeOf(ins[3].shape) > 0 ? ints(ins[3]) : undefined;
  const m = modeOf(node, old);
  return { steps: resizeSteps(node, x, m, scales, sizes, old ? undefined : list(ins[1]), attrInts(node, 'axes')), extrapolation: m.extrapolation };
}

function resize(x: Tensor, plan: { steps: ResizeStep[]; extrapolation: number }): Tensor {
  let data = x.data as Float32Array, shape = x.shape.slice();
  for (const s of plan.steps) {
    data = resizeAxis(data, shape, s.axis, s.lenOut, s.taps, plan.extrapolation);
    shape = shape.map((d, i) => (i === s.axis ? s.lenOut : d));
  }
  const y = zeros('float32', shape);
  (y.data as Float32Array).set(data);
  return y;
}

function modeOf(node: Node, old: boolean): Mode {
  return {
    mode: attrStr(node, 'mode', 'nearest', ['nearest', 'linear', 'cubic', 'bilinear']).replace('bilinear', 'linear'),
    // Resize 10 and Upsample index as asymmetric with floor.
    coord: old ? 'asymmetric' : attrStr(node, 'coordinate_transformation_mode', 'half_pixel',
      ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_crop_and_resize', 'half_pixel_symmetric', 'tf_half_pixel_for_nn']),
    nearest: old ? 'floor' : attrStr(node, 'nearest_mode', 'round_prefer_floor', ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']),
    cubicA: attrFloat(node, 'cubic_coeff_a', -0.75),
    excludeOutside: attrInt(node, 'exclude_outside', 0) === 1,
    extrapolation: attrFloat(node, 'extrapolation_value', 0),
  };
}

for (const op of ['Resize', 'Upsample']) {
  defineOp({
    op, inputs: op === 'Resize' ? [1, 4] : [1, 2],
    run(ins, node, ctx) {
      return [resize(need(ins, 0, node), resizePlan(node, ins, ctx.opset))];
    },
  });
}

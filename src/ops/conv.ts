import { sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { attrInt, checkDType, defineOp, fail, need } from './registry.js';
import { forEachWindow, windowOf } from './window.js';

/** Output = conv(x, w) + b over any number of spatial axes, groups and dilations (the reference). */
export function convRef(node: Node, x: Tensor, w: Tensor, b: Tensor | undefined): Tensor {
  checkDType(node, x, ['float32']);
  const g = attrInt(node, 'group', 1);
  const [N, C] = x.shape, [O, Cg] = w.shape;
  if (w.shape.length !== x.shape.length) fail(node, `weight [${w.shape}] and input [${x.shape}] differ in rank`);
  if (g < 1 || C !== Cg * g || O % g) fail(node, `input has ${C} channels; the weight [${w.shape}] with ${g} groups expects ${Cg * g}`);
  if (b && sizeOf(b.shape) !== O) fail(node, `bias has ${sizeOf(b.shape)} values for ${O} channels`);
  const win = windowOf(node, x.shape, w.shape.slice(2));
  const P = sizeOf(win.out), S = sizeOf(win.spatial), K = sizeOf(win.kernel), Og = O / g;
  const y = zeros('float32', [N, O, ...win.out]);
  const xd = x.data as Float32Array, wd = w.data as Float32Array, yd = y.data as Float32Array;
  const windows: [number[], number[]][] = [];
  forEachWindow(win, (_, cells, taps) => windows.push([cells, taps]));
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const c0 = Math.floor(o / Og) * Cg, bias = b ? (b.data as Float32Array)[o] : 0;
      for (let p = 0; p < P; p++) {
        const [cells, taps] = windows[p];
        let s = 0;
        for (let c = 0; c < Cg; c++) {
          const xo = (n * C + c0 + c) * S, wo = (o * Cg + c) * K;
          for (let t = 0; t < cells.length; t++) s += xd[xo + cells[t]] * wd[wo + taps[t]];
        }
        yd[(n * O + o) * P + p] = s + bias;
      }
    }
  }
  return y;
}

/**
 * An activation the fusion pass moved into a Conv or Gemm (attributes `_act`, `_min`, `_max`,
 * `_alpha`: names no ONNX op uses), applied to the op's output by every kernel of it.
 */
export interface FusedActivation { kind: 'none' | 'relu' | 'clip' | 'leaky' | 'sigmoid' | 'hardswish' | 'tanh' | 'silu'; min: number; max: number; alpha: number }

export const FUSABLE = ['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSwish', 'Tanh'];

export function fusedActivation(node: Node): FusedActivation {
  const kind = (node.attrs._act as FusedActivation['kind'] | undefined) ?? 'none';
  return { kind, min: (node.attrs._min as number | undefined) ?? -Infinity, max: (node.attrs._max as number | undefined) ?? Infinity, alpha: (node.attrs._alpha as number | undefined) ?? 0.01 };
}

export function applyFusedActivation(a: FusedActivation, y: Float32Array): void {
  const { min, max, alpha } = a, n = y.length;
  // One loop per kind: no branch on the kind per element.
  switch (a.kind) {
    case 'relu': for (let i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0; break;
    case 'clip': for (let i = 0; i < n; i++) y[i] = y[i] < min ? min : y[i] > max ? max : y[i]; break;
    case 'leaky': for (let i = 0; i < n; i++) y[i] = y[i] >= 0 ? y[i] : y[i] * alpha; break;
    case 'sigmoid': for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-y[i])); break;
    case 'hardswish': for (let i = 0; i < n; i++) {
      const v = y[i], g = v / 6 + 0.5;
      y[i] = g <= 0 ? 0 : g >= 1 ? v : v * g;
    } break;
    case 'tanh': for (let i = 0; i < n; i++) y[i] = Math.tanh(y[i]); break;
    case 'silu': for (let i = 0; i < n; i++) y[i] = y[i] / (1 + Math.exp(-y[i])); break;
    default:
  }
}

defineOp({
  op: 'Conv', inputs: [2, 3],
  run(ins, node) {
    const y = convRef(node, need(ins, 0, node), need(ins, 1, node), ins[2]);
    applyFusedActivation(fusedActivation(node), y.data as Float32Array);
    return [y];
  },
});

/** A ConvTranspose's output size and the padding it implies (explicit, auto_pad or output_shape), per spatial axis. */
export function transposeGeometry(node: Node, xs: number[], ws: number[]): { out: number[]; begin: number[]; end: number[]; strides: number[]; dilations: number[] } {
  const r = xs.length - 2, spatial = xs.slice(2), kernel = (node.attrs.kernel_shape as number[] | undefined) ?? ws.slice(2);
  const strides = (node.attrs.strides as number[] | undefined) ?? spatial.map(() => 1);
  const dil = (node.attrs.dilations as number[] | undefined) ?? spatial.map(() => 1);
  const outPad = (node.attrs.output_padding as number[] | undefined) ?? spatial.map(() => 0);
  let pads = (node.attrs.pads as number[] | undefined) ?? new Array(2 * r).fill(0);
  const autoPad = (node.attrs.auto_pad as string | undefined) ?? 'NOTSET';
  const full = spatial.map((d, i) => strides[i] * (d - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1);
  const given = node.attrs.output_shape as number[] | undefined;
  let out: number[];
  if (given || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    out = given ? given.slice(-r) : spatial.map((d, i) => d * strides[i]);
    const total = full.map((f, i) => f - out[i]);
    const lower = autoPad === 'SAME_LOWER';
    // A negative total (output_shape beyond the full size) adds zero rows at the end.
    const beginP = total.map((t) => Math.max(0, lower ? Math.ceil(t / 2) : Math.floor(t / 2)));
    pads = [...beginP, ...total.map((t, i) => t - beginP[i])];
  } else out = full.map((f, i) => f - pads[i] - pads[i + r]);
  if (out.some((o) => o < 1)) fail(node, `output size [${out}] is empty`);
  return { out, begin: pads.slice(0, r), end: pads.slice(r), strides, dilations: dil };
}

defineOp({
  op: 'ConvTranspose', inputs: [2, 3],
  run(ins, node) {
    const x = need(ins, 0, node), w = need(ins, 1, node), b = ins[2];
    checkDType(node, x, ['float32']);
    const g = attrInt(node, 'group', 1);
    const [N, C] = x.shape, [Cw, Og] = w.shape, O = Og * g;
    const r = x.shape.length - 2, spatial = x.shape.slice(2), kernel = (node.attrs.kernel_shape as number[] | undefined) ?? w.shape.slice(2);
    if (Cw !== C || C % g || w.shape.length !== x.shape.length) fail(node, `weight [${w.shape}] does not fit input [${x.shape}] with ${g} groups`);
    const { strides, dilations: dil, begin, end, out } = transposeGeometry(node, x.shape, w.shape);
    const pads = [...begin, ...end];
    const y = zeros('float32', [N, O, ...out]);
    const xd = x.data as Float32Array, wd = w.data as Float32Array, yd = y.data as Float32Array;
    const S = sizeOf(spatial), K = sizeOf(kernel), P = sizeOf(out), Cg = C / g;
    const pos = new Array<number>(r), kp = new Array<number>(r);
    for (let s = 0; s < S; s++) {
      let rem = s;
      for (let a = r - 1; a >= 0; a--) {
        pos[a] = rem % spatial[a];
        rem = Math.floor(rem / spatial[a]);
      }
      for (let k = 0; k < K; k++) {
        let kr = k, q = 0, ok = true, stride = 1;
        for (let a = r - 1; a >= 0; a--) {
          kp[a] = kr % kernel[a];
          kr = Math.floor(kr / kernel[a]);
          const o = pos[a] * strides[a] + kp[a] * dil[a] - pads[a];
          if (o < 0 || o >= out[a]) ok = false;
          q += o * stride;
          stride *= out[a];
        }
        if (!ok) continue;
        for (let n = 0; n < N; n++) {
          for (let c = 0; c < C; c++) {
            const v = xd[(n * C + c) * S + s], gi = Math.floor(c / Cg);
            for (let j = 0; j < Og; j++) yd[(n * O + gi * Og + j) * P + q] += v * wd[(c * Og + j) * K + k];
          }
        }
      }
    }
    if (b) for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let p = 0; p < P; p++) yd[(n * O + o) * P + p] += (b.data as Float32Array)[o];
    return [y];
  },
});

import { FLOAT_ACTS, convF32, depthwiseF32, isPointwise, poolF32 } from '../backends/wasm/float.js';
import { gemm } from '../nn/gemm.js';
import { roundHalfEven } from '../quant/activations.js';
import { broadcastShape, sizeOf, type Activation, type Attrs } from './graph.js';

/**
 * A float tensor between graph nodes; `release` set when its data is a view of wasm memory that the
 * runner frees after the last reader.
 */
export interface Tensor { data: Float32Array; shape: number[]; release?: () => void }

/** Geometry of one 2-D window operation (convolution or pooling) on an NCHW tensor. */
export interface Window {
  N: number; C: number; H: number; W: number; KH: number; KW: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; OH: number; OW: number;
}

export function windowOf(x: number[], out: number[], a: Attrs, KH: number, KW: number): Window {
  const [sh, sw] = a.stride as number[], [pt, pl] = a.pad as number[];
  const [dh, dw] = (a.dilation as number[] | undefined) ?? [1, 1];
  return { N: x[0], C: x[1], H: x[2], W: x[3], KH, KW, sh, sw, dh, dw, pt, pl, OH: out[2], OW: out[3] };
}

export function activate(y: Float32Array, act: Activation): void {
  if (act === 'relu') for (let i = 0; i < y.length; i++) y[i] = y[i] > 0 ? y[i] : 0;
  else if (act === 'relu6') for (let i = 0; i < y.length; i++) y[i] = Math.min(6, Math.max(0, y[i]));
  else if (act === 'sigmoid') for (let i = 0; i < y.length; i++) y[i] = 1 / (1 + Math.exp(-y[i]));
}

/** cols [C*KH*KW][OH*OW] for channels c0..c0+C-1 of image n: one column per output pixel. */
function im2col(x: Float32Array, w: Window, n: number, c0: number, C: number): Float32Array {
  const { H, W, KH, KW, sh, sw, dh, dw, pt, pl, OH, OW } = w;
  const P = OH * OW;
  const cols = new Float32Array(C * KH * KW * P);
  for (let c = 0; c < C; c++) {
    const plane = (n * w.C + c0 + c) * H * W;
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const row = ((c * KH + kh) * KW + kw) * P;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - pt + kh * dh;
          if (ih < 0 || ih >= H) continue;
          const src = plane + ih * W, dst = row + oh * OW;
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * sw - pl + kw * dw;
            if (iw >= 0 && iw < W) cols[dst + ow] = x[src + iw];
          }
        }
      }
    }
  }
  return cols;
}

/**
 * Depthwise convolution: output channel o reads input channel floor(o / multiplier) only.
 * Rows and columns whose window lies inside the input skip the bounds checks; per kernel tap the
 * whole output row is accumulated, so the inner loop is a contiguous multiply-add.
 */
function depthwise(x: Float32Array, wt: Float32Array, y: Float32Array, w: Window, O: number): void {
  const { N, C, H, W, KH, KW, sh, sw, dh, dw, pt, pl, OH, OW } = w;
  const mult = O / C;
  // Columns [c0, c1) have every tap inside the row.
  const c0 = Math.min(OW, Math.max(0, Math.ceil(pl / sw))), c1 = Math.max(c0, Math.min(OW, Math.floor((W - 1 - (KW - 1) * dw + pl) / sw) + 1));
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const plane = (n * C + Math.floor(o / mult)) * H * W, wo = o * KH * KW, yo = (n * O + o) * OH * OW;
      for (let oh = 0; oh < OH; oh++) {
        const ih0 = oh * sh - pt, row = yo + oh * OW;
        for (let kh = 0; kh < KH; kh++) {
          const ih = ih0 + kh * dh;
          if (ih < 0 || ih >= H) continue;
          const src = plane + ih * W - pl;
          for (let kw = 0; kw < KW; kw++) {
            const k = wt[wo + kh * KW + kw], off = src + kw * dw;
            for (let ow = c0; ow < c1; ow++) y[row + ow] += k * x[off + ow * sw];
            for (let ow = 0; ow < OW; ow++) {
              if (ow === c0) ow = c1;
              if (ow >= OW) break;
              const iw = ow * sw - pl + kw * dw;
              if (iw >= 0 && iw < W) y[row + ow] += k * x[off + ow * sw];
            }
          }
        }
      }
    }
  }
}

/**
 * Float convolution: GEMMs in wasm with bias and ReLU/ReLU6 in their epilogue (im2col unless 1x1),
 * wasm SIMD for depthwise, the output kept in wasm memory; the JS twin (im2col, the GEMM's JS
 * loop, a direct loop for depthwise) where the engine cannot run.
 */
export async function conv(x: Tensor, wt: Tensor, bias: Tensor | undefined, a: Attrs, out: number[], threads?: number): Promise<Tensor> {
  const [O, Cg, KH, KW] = wt.shape;
  const g = a.group as number;
  const w = windowOf(x.shape, out, a, KH, KW);
  const P = w.OH * w.OW, Og = O / g, K = Cg * KH * KW;
  const act = (a.act as Activation) ?? 'none';
  const pointwise = isPointwise(w);
  const cols = (n: number, gi: number) => pointwise ? x.data.subarray((n * w.C + gi * Cg) * P, (n * w.C + (gi + 1) * Cg) * P) : im2col(x.data, w, n, gi * Cg, Cg);
  const depthwiseShape = g > 1 && Cg === 1;
  const fused = act === 'relu' || act === 'relu6' ? act : 'none';
  let kept;
  if (depthwiseShape && O === w.C) {
    const [, , pb, pr] = a.pad as number[];
    kept = await depthwiseF32(x.data, wt.data, bias?.data, { ...w, pb, pr }, FLOAT_ACTS[fused], threads);
  } else if (!depthwiseShape) {
    kept = await convF32(x.data, wt.data, bias?.data, { ...w, O, groups: g }, FLOAT_ACTS[fused], threads);
  }
  if (kept && act !== fused) activate(kept.data, act);
  if (kept) return { data: kept.data, shape: out, release: kept.release };
  const y = new Float32Array(sizeOf(out));
  if (depthwiseShape) depthwise(x.data, wt.data, y, w, O);
  else {
    for (let n = 0; n < w.N; n++) {
      for (let gi = 0; gi < g; gi++) {
        const yg = y.subarray((n * O + gi * Og) * P, (n * O + (gi + 1) * Og) * P);
        await gemm(wt.data.subarray(gi * Og * K, (gi + 1) * Og * K), cols(n, gi), yg, Og, P, K, { threads });
      }
    }
  }
  if (bias) addChannel(y, bias.data, out[0], O, P);
  activate(y, act);
  return { data: y, shape: out };
}

export function addChannel(y: Float32Array, b: Float32Array, N: number, C: number, P: number): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const v = b[c], base = (n * C + c) * P;
      for (let i = 0; i < P; i++) y[base + i] += v;
    }
  }
}

export async function dense(x: Tensor, wt: Tensor, bias: Tensor | undefined, a: Attrs, threads?: number): Promise<Tensor> {
  const [N, K] = x.shape, O = wt.shape[0];
  const y = new Float32Array(N * O);
  await gemm(x.data, wt.data, y, N, O, K, { transB: true, threads });
  if (bias) for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y[n * O + o] += bias.data[o];
  activate(y, (a.act as Activation) ?? 'none');
  return { data: y, shape: [N, O] };
}

/** Pooling in wasm where the engine runs (pool below is its JS twin). */
export async function poolFast(x: Tensor, a: Attrs, out: number[], max: boolean, threads?: number): Promise<Tensor> {
  const [KH, KW] = a.kernel as number[];
  const { N, C, H, W, sh, sw, pt, pl, OH, OW } = windowOf(x.shape, out, a, KH, KW);
  const mode = max ? 0 : a.countPad === 1 ? 2 : 1;
  const y = await poolF32(x.data as Float32Array, { planes: N * C, H, W, OH, OW, KH, KW, sh, sw, pt, pl }, mode, threads);
  return y ? { data: y.data, shape: out, release: y.release } : pool(x, a, out, max);
}

/** Max or average pooling (the JS twin of poolFast); padded cells are skipped (max) or counted only with countPad. */
export function pool(x: Tensor, a: Attrs, out: number[], max: boolean): Tensor {
  const [KH, KW] = a.kernel as number[];
  const w = windowOf(x.shape, out, a, KH, KW);
  const { N, C, H, W, sh, sw, pt, pl, OH, OW } = w;
  const y = new Float32Array(sizeOf(out));
  const countPad = a.countPad === 1;
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let s = max ? -Infinity : 0, cnt = 0;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw;
            if (iw < 0 || iw >= W) continue;
            const v = x.data[(p * H + ih) * W + iw];
            if (max) s = v > s ? v : s;
            else s += v;
            cnt++;
          }
        }
        y[(p * OH + oh) * OW + ow] = max ? s : s / (countPad ? KH * KW : cnt);
      }
    }
  }
  return { data: y, shape: out };
}

export function globalAvg(x: Tensor, out: number[]): Tensor {
  const [N, C] = x.shape, P = sizeOf(x.shape.slice(2));
  const y = new Float32Array(N * C);
  for (let i = 0; i < N * C; i++) {
    let s = 0;
    for (let j = 0; j < P; j++) s += x.data[i * P + j];
    y[i] = s / P;
  }
  return { data: y, shape: out };
}

export function affine(x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const [N, C] = x.shape, P = sizeOf(x.shape.slice(2));
  const y = new Float32Array(x.data.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = scale.data[c], b = shift.data[c], base = (n * C + c) * P;
      for (let i = 0; i < P; i++) y[base + i] = x.data[base + i] * k + b;
    }
  }
  return { data: y, shape: x.shape };
}

function stridesOf(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, m = 1; i >= 0; i--) {
    s[i] = m;
    m *= shape[i];
  }
  return s;
}

/** Element-wise binary operation with numpy broadcasting. */
export function binary(x: Tensor, z: Tensor, f: (a: number, b: number) => number, at: string): Tensor {
  const out = broadcastShape(x.shape, z.shape, at);
  const y = new Float32Array(sizeOf(out));
  if (x.data.length === y.length && z.data.length === y.length) {
    for (let i = 0; i < y.length; i++) y[i] = f(x.data[i], z.data[i]);
    return { data: y, shape: out };
  }
  if (z.data.length === 1) {
    const b = z.data[0];
    for (let i = 0; i < y.length; i++) y[i] = f(x.data[i], b);
    return { data: y, shape: out };
  }
  // Strides of each input over the output's axes, zero where the input broadcasts.
  const r = out.length;
  const sx = stridesOf(x.shape), sz = stridesOf(z.shape);
  const bx = out.map((_, i) => ((x.shape[i - r + x.shape.length] ?? 1) === 1 ? 0 : sx[i - r + x.shape.length]));
  const bz = out.map((_, i) => ((z.shape[i - r + z.shape.length] ?? 1) === 1 ? 0 : sz[i - r + z.shape.length]));
  const idx = new Array<number>(r).fill(0);
  let ix = 0, iz = 0;
  for (let i = 0; i < y.length; i++) {
    y[i] = f(x.data[ix], z.data[iz]);
    for (let d = r - 1; d >= 0; d--) {
      idx[d]++;
      ix += bx[d];
      iz += bz[d];
      if (idx[d] < out[d]) break;
      ix -= bx[d] * out[d];
      iz -= bz[d] * out[d];
      idx[d] = 0;
    }
  }
  return { data: y, shape: out };
}

export function softmax(x: Tensor, axis: number, log = false): Tensor {
  const n = x.shape[axis], inner = sizeOf(x.shape.slice(axis + 1)), outer = sizeOf(x.shape.slice(0, axis));
  const y = new Float32Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let m = -Infinity, s = 0;
      for (let k = 0; k < n; k++) m = Math.max(m, x.data[base + k * inner]);
      for (let k = 0; k < n; k++) s += y[base + k * inner] = Math.exp(x.data[base + k * inner] - m);
      if (log) for (let k = 0; k < n; k++) y[base + k * inner] = x.data[base + k * inner] - m - Math.log(s);
      else for (let k = 0; k < n; k++) y[base + k * inner] /= s;
    }
  }
  return { data: y, shape: x.shape };
}

export function transpose(x: Tensor, perm: number[]): Tensor {
  const out = perm.map((p) => x.shape[p]);
  const sx = stridesOf(x.shape);
  const step = perm.map((p) => sx[p]);
  const y = new Float32Array(x.data.length);
  const idx = new Array<number>(out.length).fill(0);
  let ix = 0;
  for (let i = 0; i < y.length; i++) {
    y[i] = x.data[ix];
    for (let d = out.length - 1; d >= 0; d--) {
      idx[d]++;
      ix += step[d];
      if (idx[d] < out[d]) break;
      ix -= step[d] * out[d];
      idx[d] = 0;
    }
  }
  return { data: y, shape: out };
}

export function concat(xs: Tensor[], axis: number, out: number[]): Tensor {
  const outer = sizeOf(out.slice(0, axis)), inner = sizeOf(out.slice(axis + 1));
  const y = new Float32Array(sizeOf(out));
  let at = 0;
  for (const x of xs) {
    const chunk = x.shape[axis] * inner;
    for (let o = 0; o < outer; o++) y.set(x.data.subarray(o * chunk, (o + 1) * chunk), o * out[axis] * inner + at);
    at += chunk;
  }
  return { data: y, shape: out };
}

/** Constant padding on any axes: pads = [begin per axis..., end per axis...]. */
export function pad(x: Tensor, pads: number[], value: number, out: number[]): Tensor {
  const r = x.shape.length;
  const y = new Float32Array(sizeOf(out)).fill(value);
  const so = stridesOf(out);
  const rows = sizeOf(x.shape.slice(0, r - 1)), last = x.shape[r - 1];
  const idx = new Array<number>(r - 1).fill(0);
  for (let row = 0; row < rows; row++) {
    let dst = pads[r - 1];
    for (let d = 0; d < r - 1; d++) dst += (idx[d] + pads[d]) * so[d];
    y.set(x.data.subarray(row * last, (row + 1) * last), dst);
    for (let d = r - 2; d >= 0; d--) {
      if (++idx[d] < x.shape[d]) break;
      idx[d] = 0;
    }
  }
  return { data: y, shape: out };
}

export function mean(x: Tensor, axes: number[], out: number[]): Tensor {
  // Move the reduced axes last, then average each contiguous run.
  const keep = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const t = transpose(x, [...keep, ...axes]);
  const run = sizeOf(axes.map((i) => x.shape[i]));
  const y = new Float32Array(t.data.length / run);
  for (let i = 0; i < y.length; i++) {
    let s = 0;
    for (let j = 0; j < run; j++) s += t.data[i * run + j];
    y[i] = s / run;
  }
  return { data: y, shape: out };
}

/** The rounding an ONNX QuantizeLinear + DequantizeLinear pair does, kept in float. */
export function fakeQuant(x: Tensor, a: Attrs): Tensor {
  const s = a.scale as number, z = a.zero as number, lo = a.qmin as number, hi = a.qmax as number;
  const y = new Float32Array(x.data.length);
  for (let i = 0; i < y.length; i++) {
    const q = roundHalfEven(Math.fround(x.data[i] / s));
    y[i] = (Math.min(hi, Math.max(lo, q + z)) - z) * s;
  }
  return { data: y, shape: x.shape };
}

/** Keras flattens NHWC tensors in channels-last order: back to that order first. */
export function flatten(x: Tensor, nhwc: boolean, out: number[]): Tensor {
  const t = nhwc && x.shape.length === 4 ? transpose(x, [0, 2, 3, 1]) : x;
  return { data: t.data, shape: out };
}

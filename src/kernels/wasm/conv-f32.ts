import { FLOAT_ACTS, convF32, depthwiseF32, isPointwise, poolF32 } from '../../backends/wasm/float.js';
import { sizeOf, type Activation, type Attrs } from '../../graph/graph.js';
import { gemm } from '../../nn/gemm.js';

/**
 * The float32 convolution and pooling calls behind the runtime's wasm kernels (src/kernels/wasm/float.ts):
 * the SIMD kernels on the worker threads where the engine runs, these JS loops where it does not.
 */

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
export async function conv(x: Tensor, wt: Tensor, bias: Tensor | undefined, a: Attrs, out: number[], threads?: number, constantWeights = true): Promise<Tensor> {
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
  } else {
    // Depthwise with a channel multiplier too: groups of one input channel, several outputs each.
    kept = await convF32(x.data, wt.data, bias?.data, { ...w, O, groups: g }, FLOAT_ACTS[fused], threads, constantWeights);
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

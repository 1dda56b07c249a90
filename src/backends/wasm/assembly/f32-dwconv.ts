// Depthwise float32 convolution with bias and activation.

import { actLo, actHi } from './f32-gemm-4x8-minmax';
import { pad_input } from './pack';
import { P_ACT, P_BIAS, P_C, P_DW, P_HP, P_IH, P_IN, P_IW, P_K, P_KH, P_KOFF, P_KW, P_OH, P_OUT, P_OW, P_PL, P_PT, P_SH, P_SW, P_W, P_WP, prm } from './params';

/**
 * Float32 depthwise convolution, planes [p0, p1) of N x C (p = n * C + c) as one task: each input plane
 * (H x W at P_IN, unpadded) is zero-padded into this task's scratch (Hp x Wp floats and 16 of slack)
 * while it is in cache, then every output row of it computed from there. Weights w[C][K] f32, optional
 * bias. Stride 1 takes 4 pixels a step (3 x 3, and 5 or 7 taps a row) or 16, stride 2 takes 4, and other strides
 * one at a time. koff counts f32 elements (row kh's taps are koff[kh * KW ..]).
 */
export function depthwise_f32_planes(params: usize, p0: i32, p1: i32, scratch: usize): void {
  const C = prm(params, P_C), Hp = prm(params, P_HP), Wp = prm(params, P_WP), H = prm(params, P_IH), W = prm(params, P_IW);
  const OH = prm(params, P_OH), OW = prm(params, P_OW), sh = prm(params, P_SH), sw = prm(params, P_SW), K = prm(params, P_K);
  const koff = <usize>prm(params, P_KOFF), bias = <usize>prm(params, P_BIAS), act = prm(params, P_ACT);
  const flo = actLo(act), fhi = actHi(act), lo = f32x4.splat(flo), hi = f32x4.splat(fhi);
  // Stride 1: 16 pixels a step, then 4 (3 x 3, 5 and 7 taps a row: 4); stride 2: 4, their inputs the even lanes of two vectors.
  const vec16 = sw == 1 ? OW & ~15 : 0;
  const vec = sw == 1 || sw == 2 ? OW & ~3 : 0;
  const KH = prm(params, P_KH), KW = prm(params, P_KW), dw = prm(params, P_DW);
  const planeBytes = (Hp * Wp + 16) << 2;
  for (let p = p0; p < p1; p++) {
    const c = p % C;
    pad_input(<usize>prm(params, P_IN) + (<usize>(p * H * W) << 2), scratch, 1, H, W << 2, Hp, Wp << 2, prm(params, P_PT), prm(params, P_PL) << 2, planeBytes);
    for (let oh = 0; oh < OH; oh++) {
      const src = scratch + (<usize>(oh * sh * Wp) << 2);
      const w = <usize>prm(params, P_W) + (<usize>(c * K) << 2);
      const dst = <usize>prm(params, P_OUT) + (<usize>((p * OH + oh) * OW) << 2);
      const b = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
      if (sw == 1 && K == 9) {
        // 3 x 3 (any dilation): the nine taps' offsets and weights stay in registers along the row.
        const o0 = <usize>load<i32>(koff) << 2, o1 = <usize>load<i32>(koff, 4) << 2, o2 = <usize>load<i32>(koff, 8) << 2;
        const o3 = <usize>load<i32>(koff, 12) << 2, o4 = <usize>load<i32>(koff, 16) << 2, o5 = <usize>load<i32>(koff, 20) << 2;
        const o6 = <usize>load<i32>(koff, 24) << 2, o7 = <usize>load<i32>(koff, 28) << 2, o8 = <usize>load<i32>(koff, 32) << 2;
        const w0 = v128.load32_splat(w), w1 = v128.load32_splat(w, 4), w2 = v128.load32_splat(w, 8);
        const w3 = v128.load32_splat(w, 12), w4 = v128.load32_splat(w, 16), w5 = v128.load32_splat(w, 20);
        const w6 = v128.load32_splat(w, 24), w7 = v128.load32_splat(w, 28), w8 = v128.load32_splat(w, 32);
        const vb = f32x4.splat(b);
        for (let ow = 0; ow < vec; ow += 4) {
          const px = src + (<usize>ow << 2);
          let a = f32x4.add(vb, f32x4.mul(v128.load(px + o0), w0));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o1), w1));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o2), w2));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o3), w3));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o4), w4));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o5), w5));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o6), w6));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o7), w7));
          a = f32x4.add(a, f32x4.mul(v128.load(px + o8), w8));
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a, lo), hi));
        }
      } else if (sw == 1 && dw == 1 && (KW == 5 || KW == 7)) {
        // 5 or 7 taps a kernel row, side by side: as below, with the row's weights in registers.
        for (let kh = 0; kh < KH; kh++) {
          const at = src + (<usize>load<i32>(koff + (<usize>(kh * KW) << 2)) << 2), wr = w + (<usize>(kh * KW) << 2);
          rowTaps(at, dst, wr, vec, KW == 7, kh == 0, kh == KH - 1, b, lo, hi);
        }
      } else if (sw == 1) {
        // Any other window at stride 1, one kernel row at a time: the output row holds the sums so far
        // (each added in the same order as tap by tap, so the same floats), 16 pixels a step (four
        // independent sums: one sum over all K taps waits on its own adds); clamped after the last row.
        for (let kh = 0; kh < KH; kh++) {
          const ko = koff + (<usize>(kh * KW) << 2), wr = w + (<usize>(kh * KW) << 2);
          const last = kh == KH - 1;
          let ow = 0;
          for (; ow < vec16; ow += 16) {
            const px = src + (<usize>ow << 2), d = dst + (<usize>ow << 2);
            let a0 = f32x4.splat(b), a1 = a0, a2 = a0, a3 = a0;
            if (kh > 0) {
              a0 = v128.load(d); a1 = v128.load(d, 16); a2 = v128.load(d, 32); a3 = v128.load(d, 48);
            }
            for (let kw = 0; kw < KW; kw++) {
              const at = px + (<usize>load<i32>(ko + (<usize>kw << 2)) << 2);
              const wk = v128.load32_splat(wr + (<usize>kw << 2));
              a0 = f32x4.add(a0, f32x4.mul(v128.load(at), wk));
              a1 = f32x4.add(a1, f32x4.mul(v128.load(at, 16), wk));
              a2 = f32x4.add(a2, f32x4.mul(v128.load(at, 32), wk));
              a3 = f32x4.add(a3, f32x4.mul(v128.load(at, 48), wk));
            }
            if (last) {
              a0 = f32x4.pmin(f32x4.pmax(a0, lo), hi); a1 = f32x4.pmin(f32x4.pmax(a1, lo), hi);
              a2 = f32x4.pmin(f32x4.pmax(a2, lo), hi); a3 = f32x4.pmin(f32x4.pmax(a3, lo), hi);
            }
            v128.store(d, a0); v128.store(d, a1, 16); v128.store(d, a2, 32); v128.store(d, a3, 48);
          }
          for (; ow < vec; ow += 4) {
            const px = src + (<usize>ow << 2), d = dst + (<usize>ow << 2);
            let a0 = kh > 0 ? v128.load(d) : f32x4.splat(b);
            for (let kw = 0; kw < KW; kw++) {
              const at = px + (<usize>load<i32>(ko + (<usize>kw << 2)) << 2);
              a0 = f32x4.add(a0, f32x4.mul(v128.load(at), v128.load32_splat(wr + (<usize>kw << 2))));
            }
            v128.store(d, last ? f32x4.pmin(f32x4.pmax(a0, lo), hi) : a0);
          }
        }
      } else if (K == 9) {
        // 3 x 3 at stride 2: the taps' offsets and weights in registers, each tap the even lanes of two vectors.
        // (Its own loop: merged with stride 1's, a test per tap measured 3-13% slower.)
        const o0 = <usize>load<i32>(koff) << 2, o1 = <usize>load<i32>(koff, 4) << 2, o2 = <usize>load<i32>(koff, 8) << 2;
        const o3 = <usize>load<i32>(koff, 12) << 2, o4 = <usize>load<i32>(koff, 16) << 2, o5 = <usize>load<i32>(koff, 20) << 2;
        const o6 = <usize>load<i32>(koff, 24) << 2, o7 = <usize>load<i32>(koff, 28) << 2, o8 = <usize>load<i32>(koff, 32) << 2;
        const w0 = v128.load32_splat(w), w1 = v128.load32_splat(w, 4), w2 = v128.load32_splat(w, 8);
        const w3 = v128.load32_splat(w, 12), w4 = v128.load32_splat(w, 16), w5 = v128.load32_splat(w, 20);
        const w6 = v128.load32_splat(w, 24), w7 = v128.load32_splat(w, 28), w8 = v128.load32_splat(w, 32);
        const vb = f32x4.splat(b);
        for (let ow = 0; ow < vec; ow += 4) {
          const px = src + (<usize>(ow << 1) << 2);
          let a = f32x4.add(vb, f32x4.mul(evens(px + o0), w0));
          a = f32x4.add(a, f32x4.mul(evens(px + o1), w1));
          a = f32x4.add(a, f32x4.mul(evens(px + o2), w2));
          a = f32x4.add(a, f32x4.mul(evens(px + o3), w3));
          a = f32x4.add(a, f32x4.mul(evens(px + o4), w4));
          a = f32x4.add(a, f32x4.mul(evens(px + o5), w5));
          a = f32x4.add(a, f32x4.mul(evens(px + o6), w6));
          a = f32x4.add(a, f32x4.mul(evens(px + o7), w7));
          a = f32x4.add(a, f32x4.mul(evens(px + o8), w8));
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a, lo), hi));
        }
      } else {
        for (let ow = 0; ow < vec; ow += 4) {
          let a = f32x4.splat(b);
          const px = src + (<usize>(ow << 1) << 2);
          for (let k = 0; k < K; k++) {
            const at = px + (<usize>load<i32>(koff + (<usize>k << 2)) << 2);
            const x = i32x4.shuffle(v128.load(at), v128.load(at, 16), 0, 2, 4, 6);
            a = f32x4.add(a, f32x4.mul(x, f32x4.splat(load<f32>(w + (<usize>k << 2)))));
          }
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a, lo), hi));
        }
      }
      for (let ow = vec; ow < OW; ow++) {
        const px = src + (<usize>(ow * sw) << 2);
        let s: f32 = b;
        for (let k = 0; k < K; k++) s += load<f32>(px + (<usize>load<i32>(koff + (<usize>k << 2)) << 2)) * load<f32>(w + (<usize>k << 2));
        store<f32>(dst + (<usize>ow << 2), s < flo ? flo : s > fhi ? fhi : s);
      }
    }
  }
}

/** The floats at 0, 2, 4 and 6 from p. */
// @ts-ignore: decorator
@inline function evens(p: usize): v128 {
  return i32x4.shuffle(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
}

/** acc + x * w, the product rounded to float32 first (as the JS twin adds). */
// @ts-ignore: decorator
@inline function tap(acc: v128, x: v128, w: v128): v128 {
  return f32x4.add(acc, f32x4.mul(x, w));
}

/**
 * One kernel row of 5 side-by-side taps (7 with `seven`; weights at wr) added to an output row at dst, input row at
 * src, 4 pixels a step up to n4.
 */
function rowTaps(src: usize, dst: usize, wr: usize, n4: i32, seven: bool, first: bool, last: bool, b: f32, lo: v128, hi: v128): void {
  const w0 = v128.load32_splat(wr), w1 = v128.load32_splat(wr, 4), w2 = v128.load32_splat(wr, 8), w3 = v128.load32_splat(wr, 12);
  const w4 = v128.load32_splat(wr, 16), w5 = seven ? v128.load32_splat(wr, 20) : w4, w6 = seven ? v128.load32_splat(wr, 24) : w4;
  for (let ow = 0; ow < n4; ow += 4) {
    const q = src + (<usize>ow << 2), d = dst + (<usize>ow << 2);
    let a = first ? f32x4.splat(b) : v128.load(d);
    a = tap(a, v128.load(q), w0); a = tap(a, v128.load(q, 4), w1); a = tap(a, v128.load(q, 8), w2);
    a = tap(a, v128.load(q, 12), w3); a = tap(a, v128.load(q, 16), w4);
    if (seven) {
      a = tap(a, v128.load(q, 20), w5);
      a = tap(a, v128.load(q, 24), w6);
    }
    v128.store(d, last ? f32x4.pmin(f32x4.pmax(a, lo), hi) : a);
  }
}

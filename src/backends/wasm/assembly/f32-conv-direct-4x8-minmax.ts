// Float32 convolution at stride 1 or 2 without im2col: 4 output channels x 8 pixels of one output row
// in registers, the taps read straight from the zero-padded input through a table of offsets (at
// stride 2, the even floats of 16); bias in the accumulators, clamp (ReLU/ReLU6) in the epilogue.

import { actHi, actLo, clamp, fma } from './f32-gemm-4x8-minmax';

/**
 * Output rows [r0, r1) of one group of a float convolution at stride sh x sw (sw 1 or 2):
 * out[o][oh * OW + ow] = act(bias[o] + sum_k A[o][k] * xp[koff[k] + (oh * sh * Wp + ow * sw) * 4]) for
 * o < M. xp holds the group's input planes zero-padded to Wp columns (and slack after the last: a
 * row's last 8 pixels may run past OW); koff[k] is tap k's byte offset, k = (c * KH + kh) * KW + kw as
 * the weights A [M4][K] are laid out. Every 4 x 8 tile of a row passes over all of A, which the
 * caller keeps small enough to stay in cache.
 */
export function conv_direct_f32(xp: usize, A: usize, koff: usize, out: usize, M4: i32, M: i32, K: i32, OW: i32, P: i32, Wp: i32,
  bias: usize, act: i32, r0: i32, r1: i32, sh: i32, sw: i32): void {
  const lo = f32x4.splat(actLo(act)), hi = f32x4.splat(actHi(act));
  for (let oh = r0; oh < r1; oh++) {
    for (let ow = 0; ow < OW; ow += 8) {
      const x = xp + (<usize>(oh * sh * Wp + ow * sw) << 2);
      for (let o = 0; o < M4; o += 4) directTile(x, A, koff, out, M, K, OW, P, bias, lo, hi, o, oh, ow, sw == 2);
    }
  }
}

// @ts-ignore: decorator
@inline function biasAt(bias: usize, o: i32, M: i32): v128 {
  return f32x4.splat(bias && o < M ? load<f32>(bias + (<usize>o << 2)) : 0);
}

/** Channels o..o+3, pixels ow..ow+7 of output row oh, whose first tap reads x. */
// @ts-ignore: decorator
@inline function directTile(x: usize, A: usize, koff: usize, out: usize, M: i32, K: i32, OW: i32, P: i32,
  bias: usize, lo: v128, hi: v128, o: i32, oh: i32, ow: i32, stride2: bool): void {
  const rowA = <usize>K << 2;
  const a0p = A + <usize>o * rowA, a1p = a0p + rowA, a2p = a1p + rowA, a3p = a2p + rowA;
  let c00 = biasAt(bias, o, M), c01 = c00, c10 = biasAt(bias, o + 1, M), c11 = c10;
  let c20 = biasAt(bias, o + 2, M), c21 = c20, c30 = biasAt(bias, o + 3, M), c31 = c30;
  // The same loop twice, so that the stride's test stays outside it (one loop with the test inside
  // measured 34% slower on a 24 x 96 x 3 x 3 layer: V8 does not hoist it).
  if (stride2) {
    for (let k = 0; k < K; k++) {
      const ko = <usize>k << 2, at = x + <usize>load<i32>(koff + ko);
      const b0 = v128.shuffle<f32>(v128.load(at), v128.load(at, 16), 0, 2, 4, 6);
      const b1 = v128.shuffle<f32>(v128.load(at, 32), v128.load(at, 48), 0, 2, 4, 6);
      let a = v128.load32_splat(a0p + ko);
      c00 = fma(a, b0, c00); c01 = fma(a, b1, c01);
      a = v128.load32_splat(a1p + ko);
      c10 = fma(a, b0, c10); c11 = fma(a, b1, c11);
      a = v128.load32_splat(a2p + ko);
      c20 = fma(a, b0, c20); c21 = fma(a, b1, c21);
      a = v128.load32_splat(a3p + ko);
      c30 = fma(a, b0, c30); c31 = fma(a, b1, c31);
    }
  } else {
    for (let k = 0; k < K; k++) {
      const ko = <usize>k << 2, at = x + <usize>load<i32>(koff + ko);
      const b0 = v128.load(at), b1 = v128.load(at, 16);
      let a = v128.load32_splat(a0p + ko);
      c00 = fma(a, b0, c00); c01 = fma(a, b1, c01);
      a = v128.load32_splat(a1p + ko);
      c10 = fma(a, b0, c10); c11 = fma(a, b1, c11);
      a = v128.load32_splat(a2p + ko);
      c20 = fma(a, b0, c20); c21 = fma(a, b1, c21);
      a = v128.load32_splat(a3p + ko);
      c30 = fma(a, b0, c30); c31 = fma(a, b1, c31);
    }
  }
  const d = out + (<usize>(o * P + oh * OW + ow) << 2), row = <usize>P << 2, n = min(8, OW - ow);
  storeRow(d, clamp(c00, lo, hi), clamp(c01, lo, hi), n);
  if (o + 1 < M) storeRow(d + row, clamp(c10, lo, hi), clamp(c11, lo, hi), n);
  if (o + 2 < M) storeRow(d + 2 * row, clamp(c20, lo, hi), clamp(c21, lo, hi), n);
  if (o + 3 < M) storeRow(d + 3 * row, clamp(c30, lo, hi), clamp(c31, lo, hi), n);
}

/** The first n (1..8) of the eight floats v0, v1 at d (lane by lane: no scratch that another thread could share). */
// @ts-ignore: decorator
@inline function storeRow(d: usize, v0: v128, v1: v128, n: i32): void {
  if (n == 8) {
    v128.store(d, v0);
    v128.store(d, v1, 16);
    return;
  }
  if (n >= 4) v128.store(d, v0);
  else {
    store<f32>(d, f32x4.extract_lane(v0, 0));
    if (n > 1) store<f32>(d, f32x4.extract_lane(v0, 1), 4);
    if (n > 2) store<f32>(d, f32x4.extract_lane(v0, 2), 8);
    return;
  }
  if (n > 4) store<f32>(d, f32x4.extract_lane(v1, 0), 16);
  if (n > 5) store<f32>(d, f32x4.extract_lane(v1, 1), 20);
  if (n > 6) store<f32>(d, f32x4.extract_lane(v1, 2), 24);
}

// Float32 row-wise normalizations: Softmax / LogSoftmax and LayerNormalization over the last axis.
import { expv } from './f32-vunary-vbinary';

/** The sum of a row's four lanes. */
// @ts-ignore: decorator
@inline function lanes(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * `rows` rows of `len` floats: y = exp(x - max) / sum (log 0), or x - max - log(sum) (log 1). The
 * exponentials by the SIMD polynomial of unary_f32 (relative error near 1e-7), summed in float64.
 */
export function softmax_rows_f32(x: usize, y: usize, rows: i32, len: i32, log: i32): void {
  for (let r = 0; r < rows; r++) {
    const xs = x + (<usize>(r * len) << 2), ys = y + (<usize>(r * len) << 2);
    let i = 0;
    let vm = f32x4.splat(-Infinity);
    for (; i + 4 <= len; i += 4) vm = f32x4.max(vm, v128.load(xs + (<usize>i << 2)));
    let m = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
    for (; i < len; i++) m = max(m, load<f32>(xs + (<usize>i << 2)));
    const mv = f32x4.splat(m);
    let s: f64 = 0;
    i = 0;
    for (; i + 4 <= len; i += 4) {
      const e = expv(f32x4.sub(v128.load(xs + (<usize>i << 2)), mv));
      if (!log) v128.store(ys + (<usize>i << 2), e);
      s += <f64>lanes(e);
    }
    for (; i < len; i++) {
      const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(xs + (<usize>i << 2)) - m)), 0);
      if (!log) store<f32>(ys + (<usize>i << 2), e);
      s += <f64>e;
    }
    if (log) {
      const k = f32x4.splat(m + <f32>Math.log(s));
      i = 0;
      for (; i + 4 <= len; i += 4) v128.store(ys + (<usize>i << 2), f32x4.sub(v128.load(xs + (<usize>i << 2)), k));
      for (; i < len; i++) store<f32>(ys + (<usize>i << 2), load<f32>(xs + (<usize>i << 2)) - f32x4.extract_lane(k, 0));
    } else {
      const k = f32x4.splat(<f32>(1 / s));
      i = 0;
      for (; i + 4 <= len; i += 4) v128.store(ys + (<usize>i << 2), f32x4.mul(v128.load(ys + (<usize>i << 2)), k));
      for (; i < len; i++) store<f32>(ys + (<usize>i << 2), load<f32>(ys + (<usize>i << 2)) * f32x4.extract_lane(k, 0));
    }
  }
}

/** The sum of a row's floats in float64 (pairs of lanes promoted), less `mu` from each and squared where `sq`. */
// @ts-ignore: decorator
@inline function rowSum(xs: usize, len: i32, mu: f64, sq: bool): f64 {
  const m = f64x2.splat(mu);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.load(xs + (<usize>i << 2));
    let lo = f64x2.sub(f64x2.promote_low_f32x4(v), m), hi = f64x2.sub(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), m);
    if (sq) {
      lo = f64x2.mul(lo, lo);
      hi = f64x2.mul(hi, hi);
    }
    acc = f64x2.add(acc, f64x2.add(lo, hi));
  }
  let s = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
  for (; i < len; i++) {
    const d = <f64>load<f32>(xs + (<usize>i << 2)) - mu;
    s += sq ? d * d : d;
  }
  return s;
}

/**
 * LayerNormalization over rows of `len` floats: mean and variance in float64, (x - mean) * k in
 * float64 (k = 1 / sqrt(var + eps): rows far from 0 keep their digits), rounded to float32 and
 * y = that * scale[i] + bias[i] in float32; bias 0: none.
 */
export function layernorm_rows_f32(x: usize, y: usize, rows: i32, len: i32, scale: usize, bias: usize, eps: f64): void {
  for (let r = 0; r < rows; r++) {
    const xs = x + (<usize>(r * len) << 2), ys = y + (<usize>(r * len) << 2);
    const mu = rowSum(xs, len, 0, false) / <f64>len;
    const k = 1 / Math.sqrt(rowSum(xs, len, mu, true) / <f64>len + eps);
    const vm = f64x2.splat(mu), vk = f64x2.splat(k);
    let i = 0;
    for (; i + 4 <= len; i += 4) {
      const o = <usize>i << 2;
      const v = v128.load(xs + o);
      const lo = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), vm), vk));
      const hi = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), vm), vk));
      let n = f32x4.mul(v128.shuffle<f32>(lo, hi, 0, 1, 4, 5), v128.load(scale + o));
      if (bias) n = f32x4.add(n, v128.load(bias + o));
      v128.store(ys + o, n);
    }
    for (; i < len; i++) {
      const o = <usize>i << 2;
      store<f32>(ys + o, <f32>((<f64>load<f32>(xs + o) - mu) * k) * load<f32>(scale + o) + (bias ? load<f32>(bias + o) : 0));
    }
  }
}

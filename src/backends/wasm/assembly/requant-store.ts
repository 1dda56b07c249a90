// The integer convolutions' stores: int32 sums plus bias as int32, as float32 (scale, offset, clamp), or as
// u8 codes of the next layer (QLinearConv requantization, rounding half to even in float32).

import { MODE_NO_STORE, P_BIAS, P_MODE, P_O, P_OH, P_OUT, P_OW, P_Q8, P_QZERO, P_REQ, prm } from './params';

/**
 * Four int32 sums of channel o as four float32 values clamp(f32(sum) * k[o] + c[o], lo, hi), each
 * step rounded to float32 (the JS twin uses Math.fround), so the results agree bit for bit.
 * pmax/pmin keep the twin's comparisons: v < lo ? lo : v > hi ? hi : v.
 */
// @ts-ignore: decorator
@inline export function requant4(v: v128, req: usize, O: i32, o: i32): v128 {
  const k = v128.load32_splat(req + (<usize>o << 2)), c = v128.load32_splat(req + (<usize>(O + o) << 2));
  const lo = v128.load32_splat(req + (<usize>(2 * O) << 2)), hi = v128.load32_splat(req + (<usize>(2 * O + 1) << 2));
  return f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v), k), c), lo), hi);
}

/** One sum of channel o as requant4 computes it. */
// @ts-ignore: decorator
@inline function requant1(v: i32, req: usize, O: i32, o: i32): f32 {
  const y = <f32>v * load<f32>(req + (<usize>o << 2)) + load<f32>(req + (<usize>(O + o) << 2));
  const lo = load<f32>(req + (<usize>(2 * O) << 2)), hi = load<f32>(req + (<usize>(2 * O + 1) << 2));
  return y < lo ? lo : y > hi ? hi : y;
}

/**
 * Codes of four sums (bias included) with the scales k, in the low byte of each i32 lane:
 * clamp(f32(sum) * k, lo, hi) (the same as clamping after rounding, lo and hi being integers),
 * rounded half to even by adding 1.5 * 2^23 (the integer lands in the low mantissa bits), plus
 * the zero point added bytewise (the code is 0..255, so the low byte carries no borrow).
 */
// @ts-ignore: decorator
@inline function codeLanes(v: v128, k: v128, lo: v128, hi: v128, zero: v128): v128 {
  const y = f32x4.pmin(f32x4.pmax(f32x4.mul(f32x4.convert_i32x4_s(v), k), lo), hi);
  return i8x16.add(f32x4.add(y, f32x4.splat(12582912.0)), zero);
}

/** Four sums of channel o as uint8 codes (P_Q8), as 4 bytes; zero is the zero point in every byte. */
// @ts-ignore: decorator
@inline export function sumCodes4(v: v128, q8: usize, O: i32, o: i32, zero: v128): i32 {
  const k = v128.load32_splat(q8 + (<usize>o << 2));
  const lo = v128.load32_splat(q8 + (<usize>O << 2)), hi = v128.load32_splat(q8 + (<usize>(O + 1) << 2));
  const c = codeLanes(v, k, lo, hi, zero);
  return i32x4.extract_lane(i8x16.shuffle(c, c, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), 0);
}

/**
 * storeTile's P_Q8 case for the whole 4x4 blocks (pixels below np4, channels below c4): the sums as
 * uint8 codes, made in the accumulators' order (4 channels of a pixel per vector: one scale vector,
 * no transpose of int32 lanes), only their bytes transposed.
 */
function storeCodeBlocks(params: usize, acc: usize, stride: i32, np4: i32, n: i32, o0: i32, c4: i32, oh: i32, ow0: i32): void {
  const O = prm(params, P_O), OH = prm(params, P_OH), OW = prm(params, P_OW);
  const bias = <usize>prm(params, P_BIAS), q8 = <usize>prm(params, P_Q8), out = <usize>prm(params, P_OUT);
  const zero = i8x16.splat(<i8>prm(params, P_QZERO));
  const lo = v128.load32_splat(q8 + (<usize>O << 2)), hi = v128.load32_splat(q8 + (<usize>(O + 1) << 2));
  const plane = <usize>(OH * OW);
  for (let c = 0; c < c4; c += 4) {
    const o = o0 + c;
    const k = v128.load(q8 + (<usize>o << 2));
    const b = bias ? v128.load(bias + (<usize>o << 2)) : i32x4.splat(0);
    const dst = out + <usize>(((n * O + o) * OH + oh) * OW + ow0);
    for (let p = 0; p < np4; p += 4) {
      const src = acc + (<usize>(p * stride + c) << 2);
      const c0 = codeLanes(i32x4.add(v128.load(src), b), k, lo, hi, zero);
      const c1 = codeLanes(i32x4.add(v128.load(src + (<usize>stride << 2)), b), k, lo, hi, zero);
      const c2 = codeLanes(i32x4.add(v128.load(src + (<usize>stride << 3)), b), k, lo, hi, zero);
      const c3 = codeLanes(i32x4.add(v128.load(src + <usize>(stride * 12)), b), k, lo, hi, zero);
      // Bytes (pixel, channel) -> channel-major: channel j's 4 pixels in i32 lane j.
      const t01 = i8x16.shuffle(c0, c1, 0, 16, 4, 20, 8, 24, 12, 28, 0, 0, 0, 0, 0, 0, 0, 0);
      const t23 = i8x16.shuffle(c2, c3, 0, 16, 4, 20, 8, 24, 12, 28, 0, 0, 0, 0, 0, 0, 0, 0);
      const t = i8x16.shuffle(t01, t23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
      const at = dst + <usize>p;
      v128.store32_lane(at, t, 0);
      v128.store32_lane(at + plane, t, 1);
      v128.store32_lane(at + 2 * plane, t, 2);
      v128.store32_lane(at + 3 * plane, t, 3);
    }
  }
}

/** One sum (bias included) of channel o as sumCodes4 computes it. */
// @ts-ignore: decorator
@inline function sumCode1(v: i32, q8: usize, O: i32, o: i32, zero: i32): u8 {
  const y = nearest<f32>(<f32>v * load<f32>(q8 + (<usize>o << 2)));
  const lo = load<f32>(q8 + (<usize>O << 2)), hi = load<f32>(q8 + (<usize>(O + 1) << 2));
  return <u8>(<i32>(y < lo ? lo : y > hi ? hi : y) + zero);
}

/**
 * Stores one sum of channel o plus b, the int32 bias, as output element e: a uint8 code (P_Q8),
 * float32 (P_REQ, whose record carries the float bias) or int32.
 */
// @ts-ignore: decorator
@inline export function store1(params: usize, e: usize, v: i32, b: i32, O: i32, o: i32): void {
  const out = <usize>prm(params, P_OUT), req = <usize>prm(params, P_REQ), q8 = <usize>prm(params, P_Q8);
  if (q8) store<u8>(out + e, sumCode1(v + b, q8, O, o, prm(params, P_QZERO)));
  else if (req) store<f32>(out + (e << 2), requant1(v + b, req, O, o));
  else store<i32>(out + (e << 2), v + b);
}

/** Stores 4 sums of channel o plus the int32 bias at dst: int32, or requantized to float32. */
// @ts-ignore: decorator
@inline function store4(dst: usize, v: v128, b: v128, req: usize, O: i32, o: i32): void {
  v128.store(dst, req ? requant4(i32x4.add(v, b), req, O, o) : i32x4.add(v, b));
}

/**
 * Writes the sums of np pixels (n, oh, ow0..) x `count` channels from acc[p * stride + c] to the
 * NCHW output: each channel's pixels are one contiguous run, so the stores stream. Whole 4x4 blocks
 * go through registers (4 pixels of 4 channels transposed, stored as 4 runs); the pixels beyond the
 * last multiple of 4 and the channels beyond the last multiple of 4 one by one.
 */
export function storeTile(params: usize, acc: usize, stride: i32, np: i32, n: i32, o0: i32, count: i32, oh: i32, ow0: i32): void {
  if (prm(params, P_MODE) == MODE_NO_STORE) return;
  const O = prm(params, P_O), OH = prm(params, P_OH), OW = prm(params, P_OW);
  const bias = <usize>prm(params, P_BIAS), req = <usize>prm(params, P_REQ), out = <usize>prm(params, P_OUT);
  const np4 = np & ~3, c4 = count & ~3;
  if (prm(params, P_Q8)) storeCodeBlocks(params, acc, stride, np4, n, o0, c4, oh, ow0);
  else {
    const plane = <usize>(OH * OW);
    for (let c = 0; c < c4; c += 4) {
      const o = o0 + c;
      const b = bias ? v128.load(bias + (<usize>o << 2)) : i32x4.splat(0);
      const b0 = i32x4.splat(i32x4.extract_lane(b, 0)), b1 = i32x4.splat(i32x4.extract_lane(b, 1));
      const b2 = i32x4.splat(i32x4.extract_lane(b, 2)), b3 = i32x4.splat(i32x4.extract_lane(b, 3));
      const e = <usize>(((n * O + o) * OH + oh) * OW + ow0);
      for (let p = 0; p < np4; p += 4) {
        const src = acc + (<usize>(p * stride + c) << 2);
        const r0 = v128.load(src), r1 = v128.load(src + (<usize>stride << 2));
        const r2 = v128.load(src + (<usize>stride << 3)), r3 = v128.load(src + <usize>(stride * 12));
        const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
        const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
        const s0 = i64x2.shuffle(t0, t2, 0, 2), s1 = i64x2.shuffle(t0, t2, 1, 3);
        const s2 = i64x2.shuffle(t1, t3, 0, 2), s3 = i64x2.shuffle(t1, t3, 1, 3);
        const dst = out + ((e + <usize>p) << 2);
        store4(dst, s0, b0, req, O, o);
        store4(dst + (plane << 2), s1, b1, req, O, o + 1);
        store4(dst + (plane << 3), s2, b2, req, O, o + 2);
        store4(dst + plane * 12, s3, b3, req, O, o + 3);
      }
    }
  }
  // Pixels beyond np4 of the first c4 channels (none when np is a multiple of 4), then every pixel of the rest.
  for (let c = np4 == np ? c4 : 0; c < count; c++) {
    const o = o0 + c;
    const b = bias ? load<i32>(bias + (<usize>o << 2)) : 0;
    const e = <usize>(((n * O + o) * OH + oh) * OW + ow0);
    const src = acc + (<usize>c << 2);
    for (let p = c < c4 ? np4 : 0; p < np; p++) store1(params, e + <usize>p, load<i32>(src + (<usize>(p * stride) << 2)), b, O, o);
  }
}

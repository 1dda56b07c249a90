// Direct integer convolution, u8 codes 0..127 x int8 weights, i16x8.relaxed_dot_i8x16_i7x16_s: 4 pixels x
// 8 channels x 4 taps a step (the relaxed-SIMD build only).

import { MODE_PACK_ONLY, P_C, P_CG, P_CHUNK, P_GROUPS, P_HP, P_IN, P_K, P_KOFF, P_KP, P_MODE, P_OG, P_OGPAD, P_OH, P_OW, P_SH, P_SW, P_W, P_WP, prm } from './params';
import { storeTile } from './requant-store';

/**
 * Copies the receptive fields of 4 pixels into col[Kp/4][4 pixels][4 taps] as bytes: each pixel's
 * quad is one i32 (the kernel splats it); the tail beyond K and pixels beyond np are zero. Stride 1
 * with 4 pixels: a quad is four 4-byte loads (one per tap, 4 pixels each), transposed by one shuffle.
 */
function im2col4u8(params: usize, n: i32, gi: i32, oh: i32, ow0: i32, np: i32, col: usize): void {
  const C = prm(params, P_C), Hp = prm(params, P_HP), Wp = prm(params, P_WP), Cg = prm(params, P_CG);
  const sh = prm(params, P_SH), sw = prm(params, P_SW), K = prm(params, P_K), Kp = prm(params, P_KP);
  const koff = <usize>prm(params, P_KOFF);
  const base = <usize>prm(params, P_IN) + <usize>(((n * C + gi * Cg) * Hp + oh * sh) * Wp + ow0 * sw);
  let k = 0;
  if (sw == 1 && np == 4) {
    for (; k + 4 <= K; k += 4) {
      const o = koff + (<usize>k << 2);
      let v = v128.load32_zero(base + <usize>load<i32>(o));
      v = v128.load32_lane(base + <usize>load<i32>(o, 4), v, 1);
      v = v128.load32_lane(base + <usize>load<i32>(o, 8), v, 2);
      v = v128.load32_lane(base + <usize>load<i32>(o, 12), v, 3);
      v128.store(col + (<usize>k << 2), i8x16.shuffle(v, v, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    }
    if (k == K) return;
  }
  // The rest (other strides, a last partial tile, the taps of a K that is not a multiple of 4).
  const k0 = k;
  memory.fill(col + (<usize>k0 << 2), 0, <usize>((Kp - k0) << 2));
  for (let p = 0; p < np; p++) {
    const px = base + <usize>(p * sw);
    for (k = k0; k < K; k++) {
      store<u8>(col + <usize>(((k >> 2) << 4) + (p << 2) + (k & 3)), load<u8>(px + <usize>load<i32>(koff + (<usize>k << 2))));
    }
  }
}

/** Per int16 lane: w[2i] * x[2i] + w[2i+1] * x[2i+1] (int8 weights, codes 0..127). */
// @ts-ignore: decorator
@inline function dot2(w: v128, x: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(w, x);
  return unreachable();
}

/** acc32[0..3] += the pairwise sums of the int16 lanes of a (one channel per i32 lane). */
// @ts-ignore: decorator
@inline function flush16(acc: usize, a: v128): void {
  v128.store(acc, i32x4.add(v128.load(acc), i32x4.extadd_pairwise_i16x8_s(a)));
}

/**
 * Direct convolution with i16x8.relaxed_dot_i8x16_i7x16_s (int8 weights x codes 0..127):
 * 4 pixels x 8 channels x 4 taps per step, 16 multiply-accumulates per instruction. The int16 sums
 * of `chunk` steps (P_CHUNK, chosen so they cannot overflow) are widened once into int32 sums
 * kept in scratch. Weights of group gi: w[gi][Kp/4][OgPad][4] int8. Only in the relaxed-SIMD
 * build; the plain build traps if called.
 */
export function direct8_rows(params: usize, rowBegin: i32, rowEnd: i32, scratch: usize): void {
  if (!ASC_FEATURE_RELAXED_SIMD) unreachable();
  const groups = prm(params, P_GROUPS), Og = prm(params, P_OG), OgPad = prm(params, P_OGPAD);
  const OH = prm(params, P_OH), OW = prm(params, P_OW), Kp = prm(params, P_KP), chunk = prm(params, P_CHUNK);
  const quads = Kp >> 2;
  const col = scratch;
  const acc = (scratch + <usize>(4 * Kp) + 63) & ~(<usize>63);
  const wRow = <usize>(OgPad << 2);
  for (let row = rowBegin; row < rowEnd; row++) {
    const n = row / OH, oh = row % OH;
    for (let gi = 0; gi < groups; gi++) {
      const wg = <usize>prm(params, P_W) + <usize>gi * <usize>quads * wRow;
      for (let ow0 = 0; ow0 < OW; ow0 += 4) {
        const np = min(4, OW - ow0);
        im2col4u8(params, n, gi, oh, ow0, np, col);
        if (prm(params, P_MODE) == MODE_PACK_ONLY) continue;
        for (let ob = 0; ob < OgPad; ob += 8) {
          memory.fill(acc, 0, 128);
          let w = wg + (<usize>ob << 2);
          let c = col;
          let q = 0;
          while (q < quads) {
            const e = min(quads, q + chunk);
            let a00 = i16x8.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            for (; q < e; q++) {
              const w0 = v128.load(w), w1 = v128.load(w, 16);
              let x = v128.load32_splat(c);
              a00 = i16x8.add(a00, dot2(w0, x));
              a01 = i16x8.add(a01, dot2(w1, x));
              x = v128.load32_splat(c, 4);
              a10 = i16x8.add(a10, dot2(w0, x));
              a11 = i16x8.add(a11, dot2(w1, x));
              x = v128.load32_splat(c, 8);
              a20 = i16x8.add(a20, dot2(w0, x));
              a21 = i16x8.add(a21, dot2(w1, x));
              x = v128.load32_splat(c, 12);
              a30 = i16x8.add(a30, dot2(w0, x));
              a31 = i16x8.add(a31, dot2(w1, x));
              w += wRow;
              c += 16;
            }
            flush16(acc, a00); flush16(acc + 16, a01);
            flush16(acc + 32, a10); flush16(acc + 48, a11);
            flush16(acc + 64, a20); flush16(acc + 80, a21);
            flush16(acc + 96, a30); flush16(acc + 112, a31);
          }
          storeTile(params, acc, 8, np, n, gi * Og + ob, min(8, Og - ob), oh, ow0);
        }
      }
    }
  }
}

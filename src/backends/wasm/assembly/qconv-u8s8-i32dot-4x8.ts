// Direct integer convolution, u8 codes x int8/int16 weights, i32x4.dot_i16x8_s: 4 pixels x 8 channels a step.

import { MODE_PACK_ONLY, P_C, P_CG, P_GROUPS, P_HP, P_IN, P_K, P_KOFF, P_KP, P_MODE, P_OG, P_OGPAD, P_OH, P_OW, P_SH, P_SW, P_W, P_WP, prm } from './params';
import { storeTile } from './requant-store';

/**
 * Copies the receptive fields of 4 pixels (ow0..ow0+3) into col[Kp/2][4][2] as int16: for each
 * pair of taps, each pixel's two codes as one i32 (the direct kernel splats it), the 4 pixels
 * side by side; the odd tap of an odd K and pixels beyond np are zero. Stride 1 with 4 pixels:
 * a pair's codes are two 4-byte loads, interleaved and widened by one shuffle.
 */
function im2col4(params: usize, n: i32, gi: i32, oh: i32, ow0: i32, np: i32, col: usize): void {
  const C = prm(params, P_C), Hp = prm(params, P_HP), Wp = prm(params, P_WP), Cg = prm(params, P_CG);
  const sh = prm(params, P_SH), sw = prm(params, P_SW), K = prm(params, P_K), Kp = prm(params, P_KP);
  const koff = <usize>prm(params, P_KOFF);
  const base = <usize>prm(params, P_IN) + <usize>(((n * C + gi * Cg) * Hp + oh * sh) * Wp + ow0 * sw);
  if (sw == 1 && np == 4) {
    const pairs = K >> 1;
    for (let q = 0; q < pairs; q++) {
      const a = v128.load32_zero(base + <usize>load<i32>(koff + (<usize>q << 3)));
      const b = v128.load32_zero(base + <usize>load<i32>(koff + (<usize>q << 3), 4));
      // (a[p], b[p]) as int16 pairs; byte 4 of a is zero.
      v128.store(col + (<usize>q << 4), i8x16.shuffle(a, b, 0, 4, 16, 4, 1, 4, 17, 4, 2, 4, 18, 4, 3, 4, 19, 4));
    }
    if (K & 1) {
      const a = v128.load32_zero(base + <usize>load<i32>(koff + (<usize>(K - 1) << 2)));
      v128.store(col + (<usize>pairs << 4), i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(a)));
    }
    return;
  }
  memory.fill(col, 0, <usize>(Kp << 3));
  for (let p = 0; p < np; p++) {
    const px = base + <usize>(p * sw);
    for (let k = 0; k < K; k++) {
      store<u16>(col + <usize>(((k >> 1) << 4) + (p << 2) + ((k & 1) << 1)), <u16>load<u8>(px + <usize>load<i32>(koff + (<usize>k << 2))));
    }
  }
}

/**
 * Direct int8 x code convolution with i32x4.dot_i16x8_s: 4 pixels x 8 channels per step.
 * Weights of group gi: w[gi][Kp/2][OgPad][2] int16.
 */
export function direct_rows(params: usize, rowBegin: i32, rowEnd: i32, scratch: usize): void {
  const groups = prm(params, P_GROUPS), Og = prm(params, P_OG), OgPad = prm(params, P_OGPAD);
  const OH = prm(params, P_OH), OW = prm(params, P_OW), Kp = prm(params, P_KP);
  const pairs = Kp >> 1;
  const col = scratch;
  const acc = (scratch + (<usize>(4 * Kp) << 1) + 63) & ~(<usize>63);
  const wRow = <usize>(OgPad << 2);
  for (let row = rowBegin; row < rowEnd; row++) {
    const n = row / OH, oh = row % OH;
    for (let gi = 0; gi < groups; gi++) {
      const wg = <usize>prm(params, P_W) + <usize>gi * <usize>pairs * wRow;
      for (let ow0 = 0; ow0 < OW; ow0 += 4) {
        const np = min(4, OW - ow0);
        im2col4(params, n, gi, oh, ow0, np, col);
        if (prm(params, P_MODE) == MODE_PACK_ONLY) continue;
        for (let ob = 0; ob < OgPad; ob += 8) {
          let a00 = i32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
          let w = wg + (<usize>ob << 2);
          let c = col;
          for (let q = 0; q < pairs; q++) {
            const w0 = v128.load(w), w1 = v128.load(w, 16);
            let x = v128.load32_splat(c);
            a00 = i32x4.add(a00, i32x4.dot_i16x8_s(x, w0));
            a01 = i32x4.add(a01, i32x4.dot_i16x8_s(x, w1));
            x = v128.load32_splat(c, 4);
            a10 = i32x4.add(a10, i32x4.dot_i16x8_s(x, w0));
            a11 = i32x4.add(a11, i32x4.dot_i16x8_s(x, w1));
            x = v128.load32_splat(c, 8);
            a20 = i32x4.add(a20, i32x4.dot_i16x8_s(x, w0));
            a21 = i32x4.add(a21, i32x4.dot_i16x8_s(x, w1));
            x = v128.load32_splat(c, 12);
            a30 = i32x4.add(a30, i32x4.dot_i16x8_s(x, w0));
            a31 = i32x4.add(a31, i32x4.dot_i16x8_s(x, w1));
            w += wRow;
            c += 16;
          }
          const count = min(8, Og - ob);
          v128.store(acc, a00); v128.store(acc, a01, 16);
          v128.store(acc, a10, 32); v128.store(acc, a11, 48);
          v128.store(acc, a20, 64); v128.store(acc, a21, 80);
          v128.store(acc, a30, 96); v128.store(acc, a31, 112);
          storeTile(params, acc, 8, np, n, gi * Og + ob, count, oh, ow0);
        }
      }
    }
  }
}

// Depthwise integer convolution, u8 codes x int8 weights, per-channel taps.

import { P_BIAS, P_C, P_HP, P_IN, P_K, P_KOFF, P_OH, P_OUT, P_OW, P_Q8, P_QZERO, P_REQ, P_SH, P_SW, P_W, P_WP, prm } from './params';
import { requant4, sumCodes4, store1 } from './requant-store';

/**
 * Depthwise convolution on codes (one input channel per output channel, Cg = Og = 1): int32
 * sums of 8 pixels per step for strides 1 and 2, two taps per i32x4.dot_i16x8_s (codes of taps
 * k and k+1 interleaved, weights as int16 pairs); a row's last step is moved back to end at OW
 * (recomputing a few pixels) and rows narrower than 8 go through a small buffer. Other strides:
 * a scalar loop. Weights w[O][Kp] int16 (Kp = K rounded up to even, zero tail); input
 * zero-bordered (pad_input / quantize_pad), so no bounds tests.
 */
export function depthwise_rows(params: usize, rowBegin: i32, rowEnd: i32, scratch: usize): void {
  const C = prm(params, P_C), Hp = prm(params, P_HP), Wp = prm(params, P_WP);
  const OH = prm(params, P_OH), OW = prm(params, P_OW), sh = prm(params, P_SH), sw = prm(params, P_SW), K = prm(params, P_K);
  const koff = <usize>prm(params, P_KOFF), bias = <usize>prm(params, P_BIAS), req = <usize>prm(params, P_REQ);
  const q8 = <usize>prm(params, P_Q8), zero = i8x16.splat(<i8>prm(params, P_QZERO));
  const Kp = (K + 1) & ~1;
  const vector = sw == 1 || sw == 2;
  for (let row = rowBegin; row < rowEnd; row++) {
    const n = row / OH, oh = row % OH;
    for (let c = 0; c < C; c++) {
      const src = <usize>prm(params, P_IN) + <usize>(((n * C + c) * Hp + oh * sh) * Wp);
      const w = <usize>prm(params, P_W) + (<usize>(c * Kp) << 1);
      const e = <usize>(((n * C + c) * OH + oh) * OW);
      const dst = <usize>prm(params, P_OUT) + (q8 ? e : e << 2);
      const b = bias ? load<i32>(bias + (<usize>c << 2)) : 0;
      if (!vector) {
        for (let ow = 0; ow < OW; ow++) {
          const px = src + <usize>(ow * sw);
          let s = b;
          for (let k = 0; k < K; k++) s += <i32>load<u8>(px + <usize>load<i32>(koff + (<usize>k << 2))) * <i32>load<i16>(w + (<usize>k << 1));
          store1(params, e + <usize>ow, s, 0, C, c);
        }
        continue;
      }
      for (let ow0 = 0; ow0 < OW; ow0 += 8) {
        // The last step ends at OW; a row narrower than 8 is computed into scratch and copied.
        const ow = OW >= 8 ? min(ow0, OW - 8) : 0;
        const px = src + <usize>(ow * sw);
        let a0 = i32x4.splat(b), a1 = a0;
        for (let k = 0; k < Kp; k += 2) {
          const at0 = px + <usize>load<i32>(koff + (<usize>k << 2));
          // An odd K's last pair reads its one tap twice; the pair's second weight is 0.
          const at1 = px + <usize>load<i32>(koff + (<usize>min(k + 1, K - 1) << 2));
          // Codes of taps k and k+1, pixel by pixel: (x_k[p], x_k+1[p]) for p = 0..7.
          const x = sw == 1
            ? i8x16.shuffle(v128.load64_zero(at0), v128.load64_zero(at1), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
            : i8x16.shuffle(v128.load(at0), v128.load(at1), 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
          const wk = v128.load32_splat(w + (<usize>k << 1));
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(x), wk));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(x), wk));
        }
        if (q8) {
          // Eight codes: stored as 8 bytes, or through scratch for a row narrower than 8.
          const codes = i64x2.splat((<i64>sumCodes4(a1, q8, C, c, zero) << 32) | <i64><u32>sumCodes4(a0, q8, C, c, zero));
          if (OW >= 8) v128.store64_lane(dst + <usize>ow, codes, 0);
          else {
            v128.store(scratch, codes);
            memory.copy(dst, scratch, <usize>OW);
          }
          continue;
        }
        if (req) {
          a0 = requant4(a0, req, C, c);
          a1 = requant4(a1, req, C, c);
        }
        if (OW >= 8) {
          v128.store(dst + (<usize>ow << 2), a0);
          v128.store(dst + (<usize>ow << 2), a1, 16);
        } else {
          v128.store(scratch, a0);
          v128.store(scratch, a1, 16);
          memory.copy(dst, scratch, <usize>OW << 2);
        }
      }
    }
  }
}

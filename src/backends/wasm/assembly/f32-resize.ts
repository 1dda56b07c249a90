// Float32 Resize, one axis at a time, at most two taps per output position (nearest and linear).

/** Bytes per tap record: i32 first index, i32 second index (-1: one tap), f64 first weight, f64 second weight. */
const TAP: usize = 24;

/**
 * One axis of a Resize: `outer` blocks of lenIn rows of `inner` floats become blocks of lenOut
 * rows; output row j is w0 * row i0 + w1 * row i1 (taps[j]) in float64, rounded to float32 once,
 * as the TypeScript reference computes it, so the outputs are equal. Rows of 4 and more run as
 * float64x2 pairs; the last axis (inner 1) gathers one value at a time.
 */
export function resize_axis_f32(src: usize, dst: usize, outer: i32, lenIn: i32, inner: i32, lenOut: i32, taps: usize): void {
  const rowBytes = <usize>inner << 2;
  for (let o = 0; o < outer; o++) {
    const s = src + <usize>(o * lenIn) * rowBytes, d = dst + <usize>(o * lenOut) * rowBytes;
    if (inner == 1) {
      for (let j = 0; j < lenOut; j++) {
        const t = taps + <usize>j * TAP;
        const i1 = load<i32>(t, 4);
        const a = <f64>load<f32>(s + (<usize>load<i32>(t) << 2));
        const v = i1 < 0 ? load<f64>(t, 8) * a : load<f64>(t, 8) * a + load<f64>(t, 16) * <f64>load<f32>(s + (<usize>i1 << 2));
        store<f32>(d + (<usize>j << 2), <f32>v);
      }
      continue;
    }
    for (let j = 0; j < lenOut; j++) {
      const t = taps + <usize>j * TAP;
      const i1 = load<i32>(t, 4), w0 = load<f64>(t, 8), w1 = load<f64>(t, 16);
      const pa = s + <usize>load<i32>(t) * rowBytes, out = d + <usize>j * rowBytes;
      if (i1 < 0 && w0 == 1) {
        memory.copy(out, pa, rowBytes);
        continue;
      }
      const pb = s + <usize>(i1 < 0 ? 0 : i1) * rowBytes;
      const W0 = f64x2.splat(w0), W1 = f64x2.splat(w1);
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        const at = <usize>i << 2;
        const va = v128.load(pa + at);
        let lo = f64x2.mul(f64x2.promote_low_f32x4(va), W0);
        let hi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(va, va, 2, 3, 0, 1)), W0);
        if (i1 >= 0) {
          const vb = v128.load(pb + at);
          lo = f64x2.add(lo, f64x2.mul(f64x2.promote_low_f32x4(vb), W1));
          hi = f64x2.add(hi, f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(vb, vb, 2, 3, 0, 1)), W1));
        }
        v128.store(out + at, i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
      }
      for (; i < inner; i++) {
        const at = <usize>i << 2;
        const a = w0 * <f64>load<f32>(pa + at);
        store<f32>(out + at, <f32>(i1 < 0 ? a : a + w1 * <f64>load<f32>(pb + at)));
      }
    }
  }
}

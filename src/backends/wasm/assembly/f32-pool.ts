// Float32 max and average pooling (2-D, any window, stride and padding).



/**
 * Max (mode 0) or average pooling (mode 1: divide by the window's count inside the input; 2: by
 * KH * KW) of float32 planes [p0, p1): H x W in, OH x OW out, stride (sh, sw), top/left padding
 * (pt, pl), padding skipped. Windows wholly inside a row take 4 outputs per step at strides 1 and 2;
 * no load reaches past a window, so the planes need no slack.
 */
export function pool_f32(src: usize, dst: usize, p0: i32, p1: i32, H: i32, W: i32, OH: i32, OW: i32, KH: i32, KW: i32, sh: i32, sw: i32, pt: i32, pl: i32, mode: i32): void {
  const isMax = mode == 0;
  // Output columns [v0, v1) have windows inside the row: ow * sw - pl >= 0 and ow * sw - pl + KW <= W.
  const v0 = min(OW, (pl + sw - 1) / sw);
  const v1 = max(v0, min(OW, W + pl - KW >= 0 ? (W + pl - KW) / sw + 1 : 0));
  // Stride 2 loads 8 floats for 4 outputs: the 8th is inside the last window when KW >= 2.
  const vec = sw == 1 || (sw == 2 && KW >= 2);
  for (let p = p0; p < p1; p++) {
    const plane = src + (<usize>(p * H * W) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const r0 = max(0, oh * sh - pt), r1 = min(H, oh * sh - pt + KH);
      const out = dst + (<usize>((p * OH + oh) * OW) << 2);
      const full = r1 - r0 == KH;
      let ow = 0;
      while (ow < OW) {
        if (vec && ow >= v0 && ow + 4 <= v1) {
          let acc = isMax ? f32x4.splat(-Infinity) : f32x4.splat(0);
          for (let h = r0; h < r1; h++) {
            const at = plane + (<usize>(h * W + ow * sw - pl) << 2);
            for (let kw = 0; kw < KW; kw++) {
              const a = at + (<usize>kw << 2);
              const x = sw == 1 ? v128.load(a) : i32x4.shuffle(v128.load(a), v128.load(a, 16), 0, 2, 4, 6);
              acc = isMax ? f32x4.pmax(acc, x) : f32x4.add(acc, x);
            }
          }
          if (!isMax) acc = f32x4.div(acc, f32x4.splat(<f32>(mode == 2 || full ? KH * KW : (r1 - r0) * KW)));
          v128.store(out + (<usize>ow << 2), acc);
          ow += 4;
          continue;
        }
        const c0 = max(0, ow * sw - pl), c1 = min(W, ow * sw - pl + KW);
        let s: f32 = isMax ? -Infinity : 0;
        for (let h = r0; h < r1; h++) {
          for (let c = c0; c < c1; c++) {
            const v = load<f32>(plane + (<usize>(h * W + c) << 2));
            s = isMax ? (v > s ? v : s) : s + v;
          }
        }
        store<f32>(out + (<usize>ow << 2), isMax ? s : s / <f32>(mode == 2 ? KH * KW : (r1 - r0) * (c1 - c0)));
        ow++;
      }
    }
  }
}

/**
 * Sums over the middle axis of x[outer][R][inner] at src, divided by `divisor` (R for a mean, 1 for a sum),
 * in float32: y[o][i] = (sum over r of x[o][r][i]) / divisor at dst. With inner 1 (a global average pool, a
 * mean over the trailing axes) each run of R adds in 16 lanes, then across them; wider, whole rows of
 * vectors add into y. The twins are the TypeScript reductions (src/ops/reduce.ts, src/ops/pool.ts), which
 * add in float64: within float tolerance of them.
 */
export function sum_middle_f32(src: usize, dst: usize, outer: i32, R: i32, inner: i32, divisor: f32): void {
  const div = f32x4.splat(divisor);
  for (let o = 0; o < outer; o++) {
    const x = src + (<usize>o * <usize>R * <usize>inner << 2), y = dst + (<usize>o * <usize>inner << 2);
    if (inner == 1) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let r = 0;
      for (; r + 16 <= R; r += 16) {
        const at = x + (<usize>r << 2);
        a0 = f32x4.add(a0, v128.load(at));
        a1 = f32x4.add(a1, v128.load(at, 16));
        a2 = f32x4.add(a2, v128.load(at, 32));
        a3 = f32x4.add(a3, v128.load(at, 48));
      }
      for (; r + 4 <= R; r += 4) a0 = f32x4.add(a0, v128.load(x + (<usize>r << 2)));
      const a = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
      let s = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
      for (; r < R; r++) s += load<f32>(x + (<usize>r << 2));
      store<f32>(y, s / divisor);
      continue;
    }
    memory.fill(y, 0, <usize>inner << 2);
    for (let r = 0; r < R; r++) {
      const row = x + (<usize>r * <usize>inner << 2);
      let i = 0;
      for (; i + 4 <= inner; i += 4) v128.store(y + (<usize>i << 2), f32x4.add(v128.load(y + (<usize>i << 2)), v128.load(row + (<usize>i << 2))));
      for (; i < inner; i++) store<f32>(y + (<usize>i << 2), load<f32>(y + (<usize>i << 2)) + load<f32>(row + (<usize>i << 2)));
    }
    let i = 0;
    for (; i + 4 <= inner; i += 4) v128.store(y + (<usize>i << 2), f32x4.div(v128.load(y + (<usize>i << 2)), div));
    for (; i < inner; i++) store<f32>(y + (<usize>i << 2), load<f32>(y + (<usize>i << 2)) / divisor);
  }
}

// ---------------------------------------------------------------------------------------------
// Float32 elementwise ops for the graph runtime (src/kernels/wasm/eltwise.ts; the TypeScript ops in
// src/ops are their reference). exp is Cephes' expf: range reduction by ln 2, a degree-5
// polynomial, 2^n built in the exponent bits (relative error about 1e-7 in [-87, 88]).

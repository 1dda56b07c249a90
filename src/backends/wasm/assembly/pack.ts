// Inputs into the layouts the kernels read: zero-bordered codes (with the range check), channel-grouped
// index bytes, float32 quantized to codes with their padding, and a tensor's range.



/**
 * Copies planes of H x W bytes into zero-bordered planes of Hp x Wp, top-left at (padT, padL), zeroes
 * the borders and the tail up to dstBytes, and returns the OR of the bytes copied: a range check of
 * codes (one at or above 2^bits sets a bit at or above bits) that costs no second pass over them.
 */
const LANE_INDEX = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

export function pad_input(src: usize, dst: usize, planes: i32, H: i32, W: i32, Hp: i32, Wp: i32, padT: i32, padL: i32, dstBytes: i32): i32 {
  let v = i8x16.splat(0);
  let r = 0;
  for (let p = 0; p < planes; p++) {
    const d = dst + <usize>(p * Hp * Wp);
    // Zeros before the first row, then after each row up to the next one's start, then to the plane's end.
    memory.fill(d, 0, <usize>(padT * Wp + padL));
    for (let h = 0; h < H; h++) {
      const from = src + <usize>((p * H + h) * W), to = d + <usize>((h + padT) * Wp + padL);
      let i = 0;
      for (; i + 16 <= W; i += 16) {
        const x = v128.load(from + <usize>i);
        v = v128.or(v, x);
        v128.store(to + <usize>i, x);
      }
      if (i < W) {
        // The row's last W - i < 16 bytes in one vector: the load may read up to 15 bytes past the
        // source (every heap block has 16 bytes of slack), which the range check masks out; the
        // store's extra bytes land in this row's right padding, zeroed just below, or in later
        // rows and planes, written after it.
        const x = v128.load(from + <usize>i);
        v = v128.or(v, v128.and(x, i8x16.lt_u(LANE_INDEX, i8x16.splat(<i8>(W - i)))));
        v128.store(to + <usize>i, x);
      }
      const gap = h + 1 < H ? Wp - W : (Hp - H - padT) * Wp - padL + Wp - W;
      // A short gap in one vector store (its extra zeros land where later rows are written, or in the slack).
      if (gap <= 16) v128.store(to + <usize>W, i8x16.splat(0));
      else memory.fill(to + <usize>W, 0, <usize>gap);
    }
  }
  memory.fill(dst + <usize>(planes * Hp * Wp), 0, <usize>(dstBytes - planes * Hp * Wp));
  v = v128.or(v, i64x2.shuffle(v, v, 1, 0));
  const x = <i32>(i64x2.extract_lane(v, 0) | (i64x2.extract_lane(v, 0) >>> 32));
  return (r | x | (x >>> 8) | (x >>> 16) | (x >>> 24)) & 0xff;
}

/**
 * Pre-packs zero-bordered codes [N][C][Hp][Wp] for channel-grouped PCILT tables: for channel groups
 * u = n * C/G + cg in [u0, u1) and each plane j, the bytes sum_i v_i << (i * ib) of the G channels
 * cg * G + i at every position, v_i the code (or its bit j, bit-serial), into [N][planes][C/G][Hp][Wp].
 */
export function pack_groups(src: usize, dst: usize, u0: i32, u1: i32, C: i32, HW: i32, G: i32, ib: i32, planes: i32, bitSerial: i32): void {
  const CG = C / G, one = i8x16.splat(1);
  for (let u = u0; u < u1; u++) {
    const n = u / CG, cg = u % CG;
    const from = src + <usize>(n * C + cg * G) * <usize>HW;
    for (let j = 0; j < planes; j++) {
      const to = dst + <usize>((n * planes + j) * CG + cg) * <usize>HW;
      let x = 0;
      for (; x + 16 <= HW; x += 16) {
        let v = i8x16.splat(0);
        for (let i = 0; i < G; i++) {
          let codes = v128.load(from + <usize>i * <usize>HW + <usize>x);
          if (bitSerial) codes = v128.and(i8x16.shr_u(codes, j), one);
          v = v128.or(v, i8x16.shl(codes, i * ib));
        }
        v128.store(to + <usize>x, v);
      }
      // The last bytes one by one: a vector store would reach into a plane another thread writes.
      for (; x < HW; x++) {
        let v = 0;
        for (let i = 0; i < G; i++) {
          let code = <i32>load<u8>(from + <usize>i * <usize>HW + <usize>x);
          if (bitSerial) code = (code >> j) & 1;
          v |= code << (i * ib);
        }
        store<u8>(to + <usize>x, <u8>v);
      }
    }
  }
}

/**
 * Codes of 4 float32 values as quantize_pad defines them, in lanes 0..3 (i32). x * (1 / scale)
 * is within a few ulps of x / scale; only where that lands within 2^-20 (relative) of a half
 * (a rounding tie, which the two could break differently) is the vector divided instead.
 */
// @ts-ignore: decorator
@inline function codes4(x: v128, scale: v128, inv: v128, zero: v128, L: v128): v128 {
  let u = f32x4.mul(x, inv);
  const off = f32x4.abs(f32x4.sub(f32x4.sub(u, f32x4.floor(u)), f32x4.splat(0.5)));
  const near = f32x4.le(off, f32x4.add(f32x4.mul(f32x4.abs(u), f32x4.splat(9.5367431640625e-7)), f32x4.splat(9.5367431640625e-7)));
  if (v128.any_true(near)) u = f32x4.div(x, scale);
  return i32x4.min_s(i32x4.max_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.nearest(u), zero)), i32x4.splat(0)), L);
}

/** Codes of n consecutive float32 values at s, as bytes at d. */
function quantizeRun(s: usize, d: usize, n: i32, scale: f32, zero: f32, L: i32): void {
  const vs = f32x4.splat(scale), vi = f32x4.splat(<f32>1 / scale), vz = f32x4.splat(zero), vL = i32x4.splat(L);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const at = s + (<usize>i << 2);
    const q0 = codes4(v128.load(at), vs, vi, vz, vL), q1 = codes4(v128.load(at, 16), vs, vi, vz, vL);
    const q2 = codes4(v128.load(at, 32), vs, vi, vz, vL), q3 = codes4(v128.load(at, 48), vs, vi, vz, vL);
    v128.store(d + <usize>i, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
  }
  for (; i + 4 <= n; i += 4) {
    const q = i16x8.narrow_i32x4_s(codes4(v128.load(s + (<usize>i << 2)), vs, vi, vz, vL), i32x4.splat(0));
    store<u32>(d + <usize>i, i32x4.extract_lane(i8x16.narrow_i16x8_u(q, q), 0));
  }
  for (; i < n; i++) {
    const t = nearest<f32>(load<f32>(s + (<usize>i << 2)) / scale) + zero;
    store<u8>(d + <usize>i, <u8>(t > 0 ? (t < <f32>L ? <i32>t : L) : 0));
  }
}

/**
 * Activation codes from float32 for planes [p0, p1) of H x W, as ONNX QuantizeLinear computes
 * them: code = clamp(round_half_even(x / scale) + zero, 0, L) in float32, written into
 * zero-bordered planes of Hp x Wp whose border holds the zero code (real 0), top-left at (padT, padL).
 */
export function quantize_pad(src: usize, dst: usize, p0: i32, p1: i32, H: i32, W: i32, Hp: i32, Wp: i32, padT: i32, padL: i32, scale: f32, zero: f32, L: i32): void {
  padRows(src, dst, p0, p1, H, W, Hp, Wp, padT, padL, <i32>zero, scale, zero, L, 0, 0, i8x16.splat(0));
}

/**
 * quantize_pad with a scale and zero point per channel: plane p (of C channels a batch item) takes
 * scales[p % C] (f32) and zeros[p % C] (u8), its border zeros[p % C].
 */
export function quantize_pad_channels(src: usize, dst: usize, p0: i32, p1: i32, H: i32, W: i32, Hp: i32, Wp: i32, padT: i32, padL: i32, scales: usize, zeros: usize, C: i32, L: i32): void {
  for (let p = p0; p < p1; p++) {
    const c = <usize>(p % C), zero = <i32>load<u8>(zeros + c);
    padRows(src, dst, p, p + 1, H, W, Hp, Wp, padT, padL, zero, load<f32>(scales + (c << 2)), <f32>zero, L, 0, 0, i8x16.splat(0));
  }
}

/**
 * Codes of non-uniform levels: a value's rank among the m sorted midpoints between levels (the
 * number of midpoints below it, x > mid in float32: the nearest level, ties to the lower), mapped
 * to its code through the 16-byte table at codes (rank -> code).
 */
function levelsRun(s: usize, d: usize, n: i32, mids: usize, m: i32, codes: v128): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const at = s + (<usize>i << 2);
    const x0 = v128.load(at), x1 = v128.load(at, 16), x2 = v128.load(at, 32), x3 = v128.load(at, 48);
    let r0 = i32x4.splat(0), r1 = r0, r2 = r0, r3 = r0;
    for (let k = 0; k < m; k++) {
      // A comparison is -1 where true: subtracting counts.
      const mid = v128.load32_splat(mids + (<usize>k << 2));
      r0 = i32x4.sub(r0, f32x4.gt(x0, mid));
      r1 = i32x4.sub(r1, f32x4.gt(x1, mid));
      r2 = i32x4.sub(r2, f32x4.gt(x2, mid));
      r3 = i32x4.sub(r3, f32x4.gt(x3, mid));
    }
    const rank = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(r0, r1), i16x8.narrow_i32x4_s(r2, r3));
    v128.store(d + <usize>i, i8x16.swizzle(codes, rank));
  }
  for (; i < n; i++) {
    const x = load<f32>(s + (<usize>i << 2));
    let r = 0;
    for (let k = 0; k < m; k++) if (x > load<f32>(mids + (<usize>k << 2))) r++;
    store<u8>(d + <usize>i, i8x16.extract_lane_u(i8x16.swizzle(codes, i8x16.splat(<i8>r)), 0));
  }
}

/**
 * quantize_pad for non-uniform levels (at most 16): each value's code is that of its nearest level
 * (levelsRun; mids: m >= 1 sorted f32 midpoints, codes: 16 bytes rank -> code), the border holds `zero`,
 * the code of the level 0.
 */
export function quantize_levels_pad(src: usize, dst: usize, p0: i32, p1: i32, H: i32, W: i32, Hp: i32, Wp: i32, padT: i32, padL: i32, mids: usize, m: i32, codes: usize, zero: i32): void {
  padRows(src, dst, p0, p1, H, W, Hp, Wp, padT, padL, zero, 1, 0, 0, mids, m, v128.load(codes));
}

/**
 * The rows of planes [p0, p1) through quantizeRun (m = 0: scale, zero, L) or levelsRun (mids, m, codes) into
 * planes of Hp x Wp whose border holds `border`; without a border the planes are one run.
 */
function padRows(src: usize, dst: usize, p0: i32, p1: i32, H: i32, W: i32, Hp: i32, Wp: i32, padT: i32, padL: i32, border: i32,
  scale: f32, zero: f32, L: i32, mids: usize, m: i32, codes: v128): void {
  const plain = Hp == H && Wp == W, bytes = <usize>(Hp * Wp);
  const runs = plain ? 1 : (p1 - p0) * H, n = plain ? (p1 - p0) * H * W : W;
  if (!plain) for (let p = p0; p < p1; p++) memory.fill(dst + <usize>p * bytes, <u8>border, bytes);
  for (let r = 0; r < runs; r++) {
    // Run r: the whole span, or row h of plane p.
    const p = plain ? p0 : p0 + r / H, h = plain ? 0 : r % H;
    const s = src + (<usize>(((p * H + h) * W)) << 2);
    const d = plain ? dst + <usize>(p0 * H * W) : dst + <usize>p * bytes + <usize>((h + padT) * Wp + padL);
    if (m > 0) levelsRun(s, d, n, mids, m, codes);
    else quantizeRun(s, d, n, scale, zero, L);
  }
}

/** [min, max] of n float32 values at src, stored as two f32 at out (NaN-free inputs). */
export function range_f32(src: usize, n: i32, out: usize): void {
  let lo = f32x4.splat(Infinity), hi = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x = v128.load(src + (<usize>i << 2));
    lo = f32x4.pmin(lo, x);
    hi = f32x4.pmax(hi, x);
  }
  let l = min(min(f32x4.extract_lane(lo, 0), f32x4.extract_lane(lo, 1)), min(f32x4.extract_lane(lo, 2), f32x4.extract_lane(lo, 3)));
  let u = max(max(f32x4.extract_lane(hi, 0), f32x4.extract_lane(hi, 1)), max(f32x4.extract_lane(hi, 2), f32x4.extract_lane(hi, 3)));
  for (; i < n; i++) {
    const v = load<f32>(src + (<usize>i << 2));
    if (v < l) l = v;
    if (v > u) u = v;
  }
  store<f32>(out, l);
  store<f32>(out, u, 4);
}

/**
 * Float32 weights [O][K] to symmetric per-channel integers, as the JS twin (kernels/wasm/int-conv.ts
 * weightsOf) computes them in float64: s = max|w| / top (1 where all are 0), q = clamp(round(w / s),
 * -top, top) with JavaScript's Math.round (halves up). Writes q as int8 at dst, s as f32 at scales,
 * the sum of q per channel as f64 at sums; returns the largest sum of |q| over one channel.
 */
export function quantize_weights(src: usize, dst: usize, O: i32, K: i32, top: i32, scales: usize, sums: usize): i32 {
  let maxAbsSum = 0;
  const t = <f64>top;
  for (let o = 0; o < O; o++) {
    const from = src + (<usize>o * <usize>K << 2), to = dst + <usize>o * <usize>K;
    let m: f64 = 0;
    for (let k = 0; k < K; k++) m = max(m, abs(<f64>load<f32>(from + (<usize>k << 2))));
    const s: f64 = m > 0 ? m / t : 1;
    store<f32>(scales + (<usize>o << 2), <f32>s);
    let sum = 0, absSum = 0;
    for (let k = 0; k < K; k++) {
      const x = <f64>load<f32>(from + (<usize>k << 2)) / s;
      let r = floor(x);
      if (x - r >= 0.5) r += 1;
      const q = <i32>min(t, max(-t, r));
      store<i8>(to + <usize>k, <i8>q);
      sum += q;
      absSum += q < 0 ? -q : q;
    }
    store<f64>(sums + (<usize>o << 3), <f64>sum);
    if (absSum > maxAbsSum) maxAbsSum = absSum;
  }
  return maxAbsSum;
}

/**
 * A direct kernel's weights w[O][K] (int8, int16 or int32 at src: srcBytes 1, 2 or 4) laid out as
 * w[group][tap group][channel][taps] (int8 or int16 at dst: dstBytes 1 or 2; count values, zero where
 * no weight lands): tap k of channel o goes to tap group k / taps, slot k % taps. Returns the largest
 * |w|. The twin of backend.ts layWeights 'js'.
 */
export function layout_direct_weights(src: usize, srcBytes: i32, dst: usize, dstBytes: i32, count: i32, O: i32, Og: i32, K: i32, groupsOfTaps: i32, OgPad: i32, taps: i32): i32 {
  memory.fill(dst, 0, <usize>count * <usize>dstBytes);
  let maxAbs = 0;
  for (let o = 0; o < O; o++) {
    const gi = o / Og, oo = o % Og;
    const from = <usize>o * <usize>K;
    for (let k0 = 0; k0 < K; k0 += taps) {
      const to = <usize>(((gi * groupsOfTaps + k0 / taps) * OgPad + oo) * taps);
      const n = min(taps, K - k0);
      for (let t = 0; t < n; t++) {
        const i = from + <usize>(k0 + t), j = to + <usize>t;
        const v: i32 = srcBytes == 1 ? <i32>load<i8>(src + i) : srcBytes == 2 ? <i32>load<i16>(src + (i << 1)) : load<i32>(src + (i << 2));
        if (dstBytes == 1) store<i8>(dst + j, <i8>v);
        else store<i16>(dst + (j << 1), <i16>v);
        const a = v < 0 ? -v : v;
        if (a > maxAbs) maxAbs = a;
      }
    }
  }
  return maxAbs;
}

// Float32 matrix products, 4 x 8 register tiles, with bias and clamp (ReLU/ReLU6) in the epilogue; their
// operand packing (panels of 8 columns, convolution inputs packed straight into panels).



/** c + a * b, fused where relaxed SIMD offers it (training is float, not bit-exact). */
// @ts-ignore: decorator
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * Float matrix product for training: C[M][N] (+)= A[M][K] * B[K][N], rows [rowBegin, rowEnd) of C
 * (multiples of 4). B comes packed in panels of 8 columns, Bp[N/8][K][8]; N is a multiple of 8.
 * 4 rows x 8 columns of C stay in registers through the whole K loop.
 */
export function sgemm(A: usize, Bp: usize, C: usize, M: i32, N: i32, K: i32, accumulate: i32, rowBegin: i32, rowEnd: i32): void {
  sgemmRows(A, Bp, C, M, N, K, accumulate ? FROM_C : FROM_ZERO, 0, 0, rowBegin, rowEnd);
}

/**
 * C[M][N] = A[M][K] * B[K][N] + bias[n] (N floats, zero beyond the real columns), rows [rowBegin,
 * rowEnd): MatMul with its bias Add fused. The accumulators start from the bias, so the add is free.
 */
export function sgemm_bias(A: usize, Bp: usize, C: usize, M: i32, N: i32, K: i32, bias: usize, rowBegin: i32, rowEnd: i32): void {
  sgemmRows(A, Bp, C, M, N, K, FROM_COLUMN_BIAS, bias, 0, rowBegin, rowEnd);
}

/**
 * A float convolution's rows [rowBegin, rowEnd) straight into its output: C[M][N] = act(A * B +
 * bias[m]) (bias 0: none; act 0 none, 1 ReLU, 2 ReLU6), for a group whose output channels are a
 * multiple of 4 and pixels a multiple of 8, so that C's rows are the output's planes.
 */
export function sgemm_conv(A: usize, Bp: usize, C: usize, M: i32, N: i32, K: i32, bias: usize, act: i32, rowBegin: i32, rowEnd: i32): void {
  sgemmRows(A, Bp, C, M, N, K, bias ? FROM_ROW_BIAS : FROM_ZERO, bias, act, rowBegin, rowEnd);
}

/** What a tile's accumulators start from. */
const FROM_ZERO = 0, FROM_C = 1, FROM_COLUMN_BIAS = 2, FROM_ROW_BIAS = 3;

function sgemmRows(A: usize, Bp: usize, C: usize, M: i32, N: i32, K: i32, from: i32, bias: usize, act: i32, rowBegin: i32, rowEnd: i32): void {
  const rowEnd2 = min(rowEnd, M);
  const lo = f32x4.splat(actLo(act)), hi = f32x4.splat(actHi(act));
  // The smaller operand goes inside, so that it stays in cache while the other streams once:
  // when this task's rows of A are fewer than B's columns, B's K x 8 panels go outside (each
  // stays in L1 while every row block passes over it), else A's row blocks do. (Chunks of K, so
  // that a panel's chunk fits L1 at any K, measured slower on Swin-T: docs/perf-notes.md 49.)
  if (rowEnd2 - rowBegin <= N) {
    for (let j = 0; j < N; j += 8) {
      for (let i = rowBegin; i < rowEnd2; i += 4) sgemmTile(A, Bp, C, N, K, from, bias, lo, hi, i, j);
    }
  } else {
    for (let i = rowBegin; i < rowEnd2; i += 4) {
      for (let j = 0; j < N; j += 8) sgemmTile(A, Bp, C, N, K, from, bias, lo, hi, i, j);
    }
  }
}

/**
 * One 4 x 8 tile of C: rows i..i+3 of A times panel j of B, started from `from` (zero, C, bias[j..j+7]
 * or bias[i..i+3]) and clamped to [lo, hi] as it is stored.
 */
// @ts-ignore: decorator
@inline function sgemmTile(A: usize, Bp: usize, C: usize, N: i32, K: i32, from: i32, bias: usize, lo: v128, hi: v128, i: i32, j: i32): void {
  const rowA = <usize>K << 2, rowC = <usize>N << 2;
  const a0p = A + <usize>i * rowA, a1p = a0p + rowA, a2p = a1p + rowA, a3p = a2p + rowA;
  const c0p = C + <usize>i * rowC + (<usize>j << 2), c1p = c0p + rowC, c2p = c1p + rowC, c3p = c2p + rowC;
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  if (from == FROM_C) {
    c00 = v128.load(c0p); c01 = v128.load(c0p, 16); c10 = v128.load(c1p); c11 = v128.load(c1p, 16);
    c20 = v128.load(c2p); c21 = v128.load(c2p, 16); c30 = v128.load(c3p); c31 = v128.load(c3p, 16);
  } else if (from == FROM_COLUMN_BIAS) {
    const bp = bias + (<usize>j << 2);
    c00 = v128.load(bp); c01 = v128.load(bp, 16);
    c10 = c00; c11 = c01; c20 = c00; c21 = c01; c30 = c00; c31 = c01;
  } else if (from == FROM_ROW_BIAS) {
    const bp = bias + (<usize>i << 2);
    c00 = v128.load32_splat(bp); c01 = c00; c10 = v128.load32_splat(bp, 4); c11 = c10;
    c20 = v128.load32_splat(bp, 8); c21 = c20; c30 = v128.load32_splat(bp, 12); c31 = c30;
  }
  let b = Bp + (<usize>j * <usize>K << 2);
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    const ko = <usize>k << 2;
    let a = v128.load32_splat(a0p + ko);
    c00 = fma(a, b0, c00); c01 = fma(a, b1, c01);
    a = v128.load32_splat(a1p + ko);
    c10 = fma(a, b0, c10); c11 = fma(a, b1, c11);
    a = v128.load32_splat(a2p + ko);
    c20 = fma(a, b0, c20); c21 = fma(a, b1, c21);
    a = v128.load32_splat(a3p + ko);
    c30 = fma(a, b0, c30); c31 = fma(a, b1, c31);
    b += 32;
  }
  v128.store(c0p, clamp(c00, lo, hi)); v128.store(c0p, clamp(c01, lo, hi), 16);
  v128.store(c1p, clamp(c10, lo, hi)); v128.store(c1p, clamp(c11, lo, hi), 16);
  v128.store(c2p, clamp(c20, lo, hi)); v128.store(c2p, clamp(c21, lo, hi), 16);
  v128.store(c3p, clamp(c30, lo, hi)); v128.store(c3p, clamp(c31, lo, hi), 16);
}

/** min(max(v, lo), hi), NaN kept: with lo -Infinity and hi Infinity, v itself. */
// @ts-ignore: decorator
@inline export function clamp(v: v128, lo: v128, hi: v128): v128 {
  return f32x4.pmin(f32x4.pmax(v, lo), hi);
}

/** The clamp of the float kernels' activations (P_ACT: 0 none, 1 ReLU, 2 ReLU6): y = min(max(x, lo), hi). */
// @ts-ignore: decorator
@inline export function actLo(act: i32): f32 {
  return act ? 0 : -Infinity;
}

// @ts-ignore: decorator
@inline export function actHi(act: i32): f32 {
  return act == 2 ? 6 : Infinity;
}

/**
 * A float convolution's rows [rowBegin, rowEnd) (multiples of 4) as one task: sgemm into C[M4][N8],
 * then its epilogue for the rows below M, dst[o * ld + i] = act(C[o][i] + bias[o]) for i < P (bias 0:
 * none; act 0 none, 1 ReLU, 2 ReLU6), in float32 as the JS twin computes it (add, then clamp). ld > P
 * where the columns are one run of a wider output (an image's pixels in chunks).
 */
export function sgemm_bias_act(A: usize, Bp: usize, C: usize, M4: i32, N8: i32, K: i32, rowBegin: i32, rowEnd: i32,
  dst: usize, M: i32, P: i32, ld: i32, bias: usize, act: i32): void {
  sgemm(A, Bp, C, M4, N8, K, 0, rowBegin, rowEnd);
  const flo = actLo(act), fhi = actHi(act), lo = f32x4.splat(flo), hi = f32x4.splat(fhi);
  for (let o = rowBegin; o < min(rowEnd, M); o++) {
    const b: f32 = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
    const bv = f32x4.splat(b);
    const s = C + (<usize>(o * N8) << 2), d = dst + (<usize>(o * ld) << 2);
    let i = 0;
    for (; i + 4 <= P; i += 4) {
      v128.store(d + (<usize>i << 2), f32x4.pmin(f32x4.pmax(f32x4.add(v128.load(s + (<usize>i << 2)), bv), lo), hi));
    }
    for (; i < P; i++) {
      const v = load<f32>(s + (<usize>i << 2)) + b;
      store<f32>(d + (<usize>i << 2), v < flo ? flo : v > fhi ? fhi : v);
    }
  }
}

/**
 * Groups [g0, g1) of a grouped float convolution of one image, one after another, as one task: each
 * group's input (C planes of H x W from x, geo as pack_conv_panels reads it) is packed into panels at
 * Bp (pack_panels where `pointwise`: the planes are the matrix itself), multiplied by the group's
 * weights (A + g * M4 * K floats) and stored with bias and act into out + g * M * P floats. Bp and C
 * are this task's own scratch. With many narrow groups (RegNet: 8 channels a group, up to 55 groups)
 * one task per thread for all of them replaces two thread hand-offs per group.
 */
export function conv_groups_f32(x: usize, out: usize, A: usize, Bp: usize, C: usize, geo: usize, M4: i32, N8: i32,
  M: i32, P: i32, bias: usize, act: i32, g0: i32, g1: i32, pointwise: i32): void {
  const Cg = load<i32>(geo), H = load<i32>(geo, 4), W = load<i32>(geo, 8), KH = load<i32>(geo, 12), KW = load<i32>(geo, 16);
  const K = Cg * KH * KW;
  for (let g = g0; g < g1; g++) {
    const src = x + (<usize>(g * Cg * H * W) << 2);
    if (pointwise) pack_panels(src, Bp, K, P, N8, 0);
    else pack_conv_panels(src, Bp, geo, 0, N8 >> 3);
    sgemm_bias_act(A + (<usize>(g * M4 * K) << 2), Bp, C, M4, N8, K, 0, M4, out + (<usize>(g * M * P) << 2), M, P, P,
      bias ? bias + (<usize>(g * M) << 2) : 0, act);
  }
}

/**
 * Packs a float convolution's im2col matrix straight into sgemm panels, Bp[N8/8][K][8], panels
 * [j0, j1): B[k][p] = x[c][oh * sh - pt + kh * dh][ow * sw - pl + kw * dw] (0 outside the input) for
 * k = (c * KH + kh) * KW + kw and p = oh * OW + ow (0 for p >= P). x holds the group's C planes of
 * H x W. geo: i32 [C, H, W, KH, KW, sh, sw, dh, dw, pt, pl, OW, P]. Eight pixels of one output row
 * whose taps all fall inside the input are two vector loads at stride 1, four and two shuffles at 2.
 */
export function pack_conv_panels(x: usize, dst: usize, geo: usize, j0: i32, j1: i32): void {
  const C = load<i32>(geo), H = load<i32>(geo, 4), W = load<i32>(geo, 8), KH = load<i32>(geo, 12), KW = load<i32>(geo, 16);
  const sh = load<i32>(geo, 20), sw = load<i32>(geo, 24), dh = load<i32>(geo, 28), dw = load<i32>(geo, 32);
  const pt = load<i32>(geo, 36), pl = load<i32>(geo, 40), OW = load<i32>(geo, 44), P = load<i32>(geo, 48);
  const K = C * KH * KW;
  for (let j = j0; j < j1; j++) {
    const p0 = j << 3;
    const oh0 = p0 / OW, ow0 = p0 % OW;
    // Eight pixels of one output row: at stride 1 a tap reads 8 consecutive input floats, at stride 2
    // the even ones of 16.
    const row = (sw == 1 || sw == 2) && ow0 + 8 <= OW && p0 + 8 <= P;
    let d = dst + (<usize>(p0 * K) << 2);
    for (let c = 0; c < C; c++) {
      const plane = x + (<usize>(c * H * W) << 2);
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          if (row) {
            const ih = oh0 * sh - pt + kh * dh, iw = ow0 * sw - pl + kw * dw;
            if (ih >= 0 && ih < H && iw >= 0 && iw + 8 * sw <= W) {
              const s = plane + (<usize>(ih * W + iw) << 2);
              if (sw == 1) {
                v128.store(d, v128.load(s));
                v128.store(d, v128.load(s, 16), 16);
              } else {
                const a = v128.load(s), b = v128.load(s, 16), e = v128.load(s, 32), f = v128.load(s, 48);
                v128.store(d, v128.shuffle<f32>(a, b, 0, 2, 4, 6));
                v128.store(d, v128.shuffle<f32>(e, f, 0, 2, 4, 6), 16);
              }
              d += 32;
              continue;
            }
          }
          // Run by run of pixels within one output row (a panel spans rows where OW is not a multiple of
          // 8): the taps that fall inside the input copied without tests, zeros either side of them.
          const end = min(8, P - p0);
          let oh = oh0, ow = ow0, jj = 0;
          while (jj < end) {
            const len = min(end - jj, OW - ow);
            const ih = oh * sh - pt + kh * dh, iw0 = ow * sw - pl + kw * dw;
            let lo = 0, hi = 0;
            if (ih >= 0 && ih < H && iw0 < W) {
              // Pixels q of the run read column iw0 + q * sw: inside for q in [lo, hi).
              hi = min(len, (W - iw0 + sw - 1) / sw);
              lo = min(hi, iw0 >= 0 ? 0 : (sw - 1 - iw0) / sw);
            }
            const at = d + (<usize>jj << 2);
            for (let q = 0; q < lo; q++) store<f32>(at + (<usize>q << 2), 0);
            if (lo < hi) {
              const s = plane + (<usize>(ih * W + iw0) << 2);
              for (let q = lo; q < hi; q++) store<f32>(at + (<usize>q << 2), load<f32>(s + (<usize>(q * sw) << 2)));
            }
            for (let q = hi; q < len; q++) store<f32>(at + (<usize>q << 2), 0);
            jj += len;
            ow += len;
            if (ow == OW) {
              ow = 0;
              oh++;
            }
          }
          for (; jj < 8; jj++) store<f32>(d + (<usize>jj << 2), 0);
          d += 32;
        }
      }
    }
  }
}

/**
 * Packs B for sgemm into panels of 8 columns, Bp[N8/8][K][8] (zero beyond N). B is [K][N], or
 * [N][K] when trans is set.
 */
export function pack_panels(src: usize, dst: usize, K: i32, N: i32, N8: i32, trans: i32): void {
  memory.fill(dst, 0, <usize>(N8 * K) << 2);
  for (let jb = 0; jb < N; jb += 8) {
    const jn = min(8, N - jb);
    let d = dst + (<usize>(jb * K) << 2);
    for (let k = 0; k < K; k++) {
      if (trans) {
        for (let jj = 0; jj < jn; jj++) store<f32>(d + (<usize>jj << 2), load<f32>(src + (<usize>((jb + jj) * K + k) << 2)));
      } else if (jn == 8) {
        const s = src + (<usize>(k * N + jb) << 2);
        v128.store(d, v128.load(s));
        v128.store(d, v128.load(s, 16), 16);
      } else {
        for (let jj = 0; jj < jn; jj++) store<f32>(d + (<usize>jj << 2), load<f32>(src + (<usize>(k * N + jb + jj) << 2)));
      }
      d += 32;
    }
  }
}

/** dst[c][r] = src[r][c] for a rows x cols float matrix. */
export function transpose_f32(src: usize, dst: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<f32>(dst + (<usize>(c * rows + r) << 2), load<f32>(src + (<usize>(r * cols + c) << 2)));
  }
}

/**
 * MatMul with batch axes (attention's [heads, n, d] x [heads, d, n]), batches [b0, b1) as one task:
 * batch i multiplies A's block ia[i] ([M][K]) by B's block ib[i] ([K][N]) into y's block i ([M][N]),
 * ia and ib i32 block indices (numpy broadcasting). Each batch's A rows (zero rows up to a multiple
 * of 4) and B panels are laid out in this task's scratch, M4 * K + N8 * K + M4 * N8 floats.
 */
export function matmul_batched_f32(a: usize, b: usize, y: usize, ia: usize, ib: usize, M: i32, K: i32, N: i32, scratch: usize, b0: i32, b1: i32): void {
  const M4 = (M + 3) & ~3, N8 = (N + 7) & ~7;
  const aBytes = <usize>(M * K) << 2, bBytes = <usize>(K * N) << 2, rowBytes = <usize>N << 2;
  const pa = scratch, pb = pa + (<usize>(M4 * K) << 2), pc = pb + (<usize>(N8 * K) << 2);
  memory.fill(pa + aBytes, 0, <usize>((M4 - M) * K) << 2);
  for (let i = b0; i < b1; i++) {
    memory.copy(pa, a + <usize>load<i32>(ia + (<usize>i << 2)) * aBytes, aBytes);
    pack_panels(b + <usize>load<i32>(ib + (<usize>i << 2)) * bBytes, pb, K, N, N8, 0);
    sgemm(pa, pb, pc, M4, N8, K, 0, 0, M4);
    const out = y + <usize>i * <usize>M * rowBytes;
    if (N == N8) memory.copy(out, pc, <usize>M * rowBytes);
    else for (let m = 0; m < M; m++) memory.copy(out + <usize>m * rowBytes, pc + (<usize>(m * N8) << 2), rowBytes);
  }
}

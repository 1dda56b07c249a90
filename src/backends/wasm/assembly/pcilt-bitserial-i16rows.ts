// PCILT convolution: bit-serial (or grouped) int16 table rows, 16 pixels a tile, row vectors of 8 channels added
// in int16 and flushed to int32 sums; the sums stored through requant-store.

import { MODE_PACK_ONLY, P_BITSERIAL, P_C, P_CG, P_CHUNK, P_G, P_GROUPED, P_GROUPS, P_HP, P_IB, P_IN, P_K, P_KOFF, P_MODE, P_OG, P_OGPAD, P_OH, P_OW, P_PLANES, P_PW0, P_ROWS, P_S, P_SEGBYTES, P_SH, P_SW, P_WP, prm } from './params';
import { storeTile } from './requant-store';

/** Pixels handled together: one v128 of packed indices. */
export const TILE: i32 = 16;

/**
 * Packs the table indices of up to 16 output pixels of one row (n, oh, ow0..) for group gi:
 * idx[(plane * S + s) * 16 + p]. The indices depend on the input only and serve every output channel.
 */
function packIndices(params: usize, n: i32, gi: i32, oh: i32, ow0: i32, np: i32, idx: usize): void {
  const C = prm(params, P_C), Hp = prm(params, P_HP), Wp = prm(params, P_WP), Cg = prm(params, P_CG);
  const sh = prm(params, P_SH), sw = prm(params, P_SW), K = prm(params, P_K), S = prm(params, P_S);
  const G = prm(params, P_G), ib = prm(params, P_IB), planes = prm(params, P_PLANES);
  const bitSerial = prm(params, P_BITSERIAL) != 0;
  const koff = <usize>prm(params, P_KOFF);
  if (prm(params, P_GROUPED)) {
    // The indices are bytes of the pre-packed input, gathered at the stride (stride 1 needs no
    // copy: groupedRowPointers).
    const at = groupedAt(params, n, gi, oh, ow0), plane = <usize>((C / G) * Hp * Wp);
    for (let j = 0; j < planes; j++) {
      const pj = at + <usize>j * plane;
      for (let s = 0; s < S; s++) {
        const src = pj + <usize>load<i32>(koff + (<usize>s << 2)), dst = idx + <usize>((j * S + s) * TILE);
        for (let p = 0; p < np; p++) store<u8>(dst + <usize>p, load<u8>(src + <usize>(p * sw)));
      }
    }
    return;
  }
  const base = <usize>prm(params, P_IN) + <usize>(((n * C + gi * Cg) * Hp + oh * sh) * Wp + ow0 * sw);
  if (sw == 1) {
    // Stride 1: the codes of 16 neighbouring pixels at one kernel tap are 16 consecutive bytes.
    const one = i8x16.splat(1);
    for (let j = 0; j < planes; j++) {
      for (let s = 0; s < S; s++) {
        let v = i8x16.splat(0);
        const k0 = s * G;
        const k1 = min(K, k0 + G);
        for (let k = k0; k < k1; k++) {
          let codes = v128.load(base + <usize>load<i32>(koff + ((<usize>k) << 2)));
          if (bitSerial) codes = v128.and(i8x16.shr_u(codes, j), one);
          v = v128.or(v, i8x16.shl(codes, (k - k0) * ib));
        }
        v128.store(idx + <usize>((j * S + s) * TILE), v);
      }
    }
    return;
  }
  for (let p = 0; p < np; p++) {
    const px = base + <usize>(p * sw);
    for (let j = 0; j < planes; j++) {
      for (let s = 0; s < S; s++) {
        let v: i32 = 0;
        const k0 = s * G;
        const k1 = min(K, k0 + G);
        for (let k = k0; k < k1; k++) {
          let code = <i32>load<u8>(px + <usize>load<i32>(koff + ((<usize>k) << 2)));
          if (bitSerial) code = (code >> j) & 1;
          v |= code << ((k - k0) * ib);
        }
        store<u8>(idx + <usize>((j * S + s) * TILE + p), <u8>v);
      }
    }
  }
}

/**
 * Where pixel (n, oh, ow0)'s receptive field starts in the pre-packed input of group gi's first
 * channel group and plane 0 ([N][planes][C/G][Hp][Wp]; segment s adds P_KOFF[s], plane j C/G planes).
 */
// @ts-ignore: decorator
@inline function groupedAt(params: usize, n: i32, gi: i32, oh: i32, ow0: i32): usize {
  const CG = prm(params, P_C) / prm(params, P_G), Hp = prm(params, P_HP), Wp = prm(params, P_WP);
  const first = n * prm(params, P_PLANES) * CG + gi * (prm(params, P_CG) / prm(params, P_G));
  return <usize>prm(params, P_IN) + <usize>((first * Hp + oh * prm(params, P_SH)) * Wp + ow0 * prm(params, P_SW));
}

/**
 * Turns a tile's packed indices idx[(plane * S + s) * 16 + p] into row addresses
 * ptrs[(plane * S + s) * 16 + p] = rows + s * segBytes + code * rowBytes (u32), 16 at a time:
 * the look-up loop then loads its row's address instead of computing it.
 */
function rowPointers(params: usize, rows: usize, idx: usize, ptrs: usize): void {
  const S = prm(params, P_S), planes = prm(params, P_PLANES);
  const k = i32x4.splat(prm(params, P_OGPAD) << 1), segBytes = prm(params, P_SEGBYTES);
  for (let j = 0; j < planes; j++) {
    let base = i32x4.splat(<i32>rows);
    for (let s = 0; s < S; s++) {
      const at = (j * S + s) * TILE;
      storeRowPointers(ptrs + (<usize>at << 2), v128.load(idx + <usize>at), base, k);
      base = i32x4.add(base, i32x4.splat(segBytes));
    }
  }
}

/** The 16 row addresses base + code * k of 16 index bytes, at d. */
// @ts-ignore: decorator
@inline function storeRowPointers(d: usize, v: v128, base: v128, k: v128): void {
  const lo = i16x8.extend_low_i8x16_u(v), hi = i16x8.extend_high_i8x16_u(v);
  v128.store(d, i32x4.add(base, i32x4.mul(i32x4.extend_low_i16x8_u(lo), k)));
  v128.store(d, i32x4.add(base, i32x4.mul(i32x4.extend_high_i16x8_u(lo), k)), 16);
  v128.store(d, i32x4.add(base, i32x4.mul(i32x4.extend_low_i16x8_u(hi), k)), 32);
  v128.store(d, i32x4.add(base, i32x4.mul(i32x4.extend_high_i16x8_u(hi), k)), 48);
}

/**
 * For pre-packed input at stride 1: a tile's row addresses straight from the packed bytes (one
 * 16-byte load per segment and plane), without packIndices' copy.
 */
function groupedRowPointers(params: usize, n: i32, gi: i32, oh: i32, ow0: i32, rows: usize, ptrs: usize): void {
  const S = prm(params, P_S), planes = prm(params, P_PLANES), koff = <usize>prm(params, P_KOFF);
  const k = i32x4.splat(prm(params, P_OGPAD) << 1), segBytes = prm(params, P_SEGBYTES);
  const at = groupedAt(params, n, gi, oh, ow0);
  const plane = <usize>((prm(params, P_C) / prm(params, P_G)) * prm(params, P_HP) * prm(params, P_WP));
  for (let j = 0; j < planes; j++) {
    const pj = at + <usize>j * plane;
    let base = i32x4.splat(<i32>rows);
    for (let s = 0; s < S; s++) {
      const src = pj + <usize>load<i32>(koff + (<usize>s << 2));
      storeRowPointers(ptrs + (<usize>((j * S + s) * TILE) << 2), v128.load(src), base, k);
      base = i32x4.add(base, i32x4.splat(segBytes));
    }
  }
}

/**
 * acc32[q*8 .. q*8+7] (+)= widen(a) * weight (the plane's weight, P_PW0 + j), for one i16x8 partial sum:
 * the first flush of a pixel's channels stores, so the sums need no clearing.
 */
// @ts-ignore: decorator
@inline function flush(acc: usize, a: v128, weight: v128, first: bool): void {
  const lo = i32x4.mul(i32x4.extend_low_i16x8_s(a), weight), hi = i32x4.mul(i32x4.extend_high_i16x8_s(a), weight);
  v128.store(acc, first ? lo : i32x4.add(v128.load(acc), lo));
  v128.store(acc, first ? hi : i32x4.add(v128.load(acc, 16), hi), 16);
}

/**
 * Row-per-code look-ups for pixel p and nv * 8 output channels starting at ob (nv <= 7, a
 * constant where inlined): for every plane and segment, the row address (rowPointers) selects one
 * row of int16 partial sums, added with nv vector adds. int16 sums are flushed to int32 every `chunk`
 * segments, before they can overflow. At most 7 vectors: V8 loads a step's rows before adding
 * them, so nv accumulators need nv more registers, and x64 has 15 to give (8 spilled one).
 * The inner loop keeps three scalars live (the address pointer, its stop, the block's byte offset).
 * The type At, of a block's byte offset in size, puts that offset into the loads' immediates
 * (ob then 0), and the loop loses an add in every step.
 */
// @ts-ignore: decorator
@inline function lookupBlock<At>(params: usize, ptrs: usize, p: i32, ob: i32, acc: usize, nv: i32): void {
  const at = offsetof<At>();
  const S = prm(params, P_S), planes = prm(params, P_PLANES), chunk = prm(params, P_CHUNK);
  const off = <usize>(ob << 1);
  let first = true;
  for (let j = 0; j < planes; j++) {
    let ip = ptrs + (<usize>(j * S * TILE + p) << 2);
    const ipEnd = ip + (<usize>(S * TILE) << 2);
    while (ip < ipEnd) {
      const ipStop = min(ipEnd, ip + (<usize>(chunk * TILE) << 2));
      let a0 = i16x8.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0;
      do {
        const r = <usize>load<u32>(ip) + off;
        ip += TILE << 2;
        a0 = i16x8.add(a0, v128.load(r, at));
        if (nv > 1) a1 = i16x8.add(a1, v128.load(r, at + 16));
        if (nv > 2) a2 = i16x8.add(a2, v128.load(r, at + 32));
        if (nv > 3) a3 = i16x8.add(a3, v128.load(r, at + 48));
        if (nv > 4) a4 = i16x8.add(a4, v128.load(r, at + 64));
        if (nv > 5) a5 = i16x8.add(a5, v128.load(r, at + 80));
        if (nv > 6) a6 = i16x8.add(a6, v128.load(r, at + 96));
      } while (ip < ipStop);
      // Read here, not kept across the loop above (whose accumulators use every vector register).
      const weight = i32x4.splat(prm(params, P_PW0 + j));
      flush(acc, a0, weight, first);
      if (nv > 1) flush(acc + 32, a1, weight, first);
      if (nv > 2) flush(acc + 64, a2, weight, first);
      if (nv > 3) flush(acc + 96, a3, weight, first);
      if (nv > 4) flush(acc + 128, a4, weight, first);
      if (nv > 5) flush(acc + 160, a5, weight, first);
      if (nv > 6) flush(acc + 192, a6, weight, first);
      first = false;
    }
  }
}

/** Types the size of a block's byte offset in a row: 0, 4 vectors (64 channels: 4 + 4), 6 and 11 (128: 6 + 5 + 5). */
@unmanaged class At0 {}
@unmanaged class At64 { v0: v128; v1: v128; v2: v128; v3: v128 }
@unmanaged class At96 extends At64 { v4: v128; v5: v128 }
@unmanaged class At176 extends At96 { v6: v128; v7: v128; v8: v128; v9: v128; v10: v128 }

/** lookupBlock for one pixel with nv known only at run time: one specialised loop per width. */
function lookup(params: usize, ptrs: usize, p: i32, ob: i32, acc: usize, nv: i32): void {
  switch (nv) {
    case 7: lookupBlock<At0>(params, ptrs, p, ob, acc, 7); break;
    case 6: lookupBlock<At0>(params, ptrs, p, ob, acc, 6); break;
    case 5: lookupBlock<At0>(params, ptrs, p, ob, acc, 5); break;
    case 4: lookupBlock<At0>(params, ptrs, p, ob, acc, 4); break;
    case 3: lookupBlock<At0>(params, ptrs, p, ob, acc, 3); break;
    case 2: lookupBlock<At0>(params, ptrs, p, ob, acc, 2); break;
    default: lookupBlock<At0>(params, ptrs, p, ob, acc, 1);
  }
}

/**
 * The look-ups of a tile's np pixels into acc[p][OgPad], pixel by pixel, all channels: the OgPad / 8
 * vectors in near-equal blocks of at most 7 (16 -> 6, 5, 5). A row's cache line shared by two
 * blocks is still in L1 for the second.
 */
export function lookupTile(params: usize, ptrs: usize, acc: usize, np: i32): void {
  const OgPad = prm(params, P_OGPAD);
  // Common widths with the blocks' offsets in the loads' immediates (4% off the seed layer's look-ups).
  if (OgPad == 128) {
    for (let p = 0; p < np; p++) {
      const a = acc + (<usize>(p * 128) << 2);
      lookupBlock<At0>(params, ptrs, p, 0, a, 6);
      lookupBlock<At96>(params, ptrs, p, 0, a + 192, 5);
      lookupBlock<At176>(params, ptrs, p, 0, a + 352, 5);
    }
    return;
  }
  if (OgPad == 64) {
    for (let p = 0; p < np; p++) {
      const a = acc + (<usize>(p * 64) << 2);
      lookupBlock<At0>(params, ptrs, p, 0, a, 4);
      lookupBlock<At64>(params, ptrs, p, 0, a + 128, 4);
    }
    return;
  }
  const V = OgPad >> 3, blocks = (V + 6) / 7;
  for (let p = 0; p < np; p++) {
    for (let b = 0, ob = 0; b < blocks; b++) {
      const nv = V / blocks + (b < V % blocks ? 1 : 0);
      lookup(params, ptrs, p, ob, acc + (<usize>(p * OgPad + ob) << 2), nv);
      ob += nv << 3;
    }
  }
}

/**
 * PCILT convolution of output rows [rowBegin, rowEnd) of the (n, oh) row space.
 * Rows of group gi: rows[gi][s][code][OgPad] int16, segments P_SEGBYTES apart. scratch: packed
 * indices, their row addresses, then the int32 sums of one tile, acc[p][OgPad].
 */
export function pcilt_rows(params: usize, rowBegin: i32, rowEnd: i32, scratch: usize): void {
  const groups = prm(params, P_GROUPS), Og = prm(params, P_OG), OgPad = prm(params, P_OGPAD);
  const OH = prm(params, P_OH), OW = prm(params, P_OW), S = prm(params, P_S);
  const planes = prm(params, P_PLANES), mode = prm(params, P_MODE);
  const grouped = prm(params, P_GROUPED) != 0, sw = prm(params, P_SW);
  const groupBytes = <usize>S * <usize>prm(params, P_SEGBYTES);
  const idx = scratch;
  const ptrs = (scratch + <usize>(planes * S * TILE) + 63) & ~(<usize>63);
  const acc = ptrs + (<usize>(planes * S * TILE) << 2);
  for (let row = rowBegin; row < rowEnd; row++) {
    const n = row / OH, oh = row % OH;
    for (let gi = 0; gi < groups; gi++) {
      const rows = <usize>prm(params, P_ROWS) + <usize>gi * groupBytes;
      for (let ow0 = 0; ow0 < OW; ow0 += TILE) {
        const np = min(TILE, OW - ow0);
        if (grouped && sw == 1) groupedRowPointers(params, n, gi, oh, ow0, rows, ptrs);
        else {
          packIndices(params, n, gi, oh, ow0, np, idx);
          rowPointers(params, rows, idx, ptrs);
        }
        if (mode == MODE_PACK_ONLY) continue;
        lookupTile(params, ptrs, acc, np);
        storeTile(params, acc, OgPad, np, n, gi * Og, Og, oh, ow0);
      }
    }
  }
}

/** Scratch bytes one thread needs for pcilt_rows / direct_rows / direct8_rows. */
export function scratch_bytes(planes: i32, S: i32, Kp: i32, OgPad: i32): i32 {
  return max(planes * S * TILE * 5 + 64, 8 * Kp) + 64 + TILE * max(OgPad, 64) * 4;
}

/**
 * The channel-grouped table rows of plain products, straight from int8 weights [O][Cg][KK] (the JS
 * twin: prepareRows in backends/wasm/backend.ts, through groupedSegment). Segment s = cg * KK + tap
 * of channel o (group gi = o / Og, lane oo = o % Og) holds, at rows + 2 * ((gi * S + s) * segElems +
 * code * OgPad + oo), the sum over slots i < G of v_i(code) * w[o][cg * G + i][tap] (v_i: index bits
 * i * ib.. of the code) less the segment's midpoint m = floor((lo + hi) / 2); offset[o] (i32) gets the
 * sum of the m. The rows must be zeroed beforehand (lanes past Og stay 0). stats (i32, 2 + O): [the
 * largest sum over segments of max(hi - m, m - lo) of one channel, the largest such term], then each
 * channel's sum. With G * ib <= 8 index bits, |entries| stay within G * (2^ib - 1) * 128 <= 3840:
 * int16 always holds them. Segment by segment, every channel in turn, so that each code's row is
 * written in order (400k weights: 3.9-4.7 ms once optimized).
 */
export function pcilt_grouped_rows(w: usize, O: i32, Og: i32, Cg: i32, KK: i32, G: i32, ib: i32, OgPad: i32, segElems: i32, rows: usize, offset: usize, stats: usize): void {
  const S = Cg / G * KK, top = (1 << ib) - 1;
  const bounds = stats + 8;
  memory.fill(offset, 0, <usize>O << 2);
  memory.fill(bounds, 0, <usize>O << 2);
  let maxAbs = 0;
  const G4 = G == 4 && ib == 1;
  for (let s = 0; s < S; s++) {
    const first = (s / KK) * G * KK + s % KK;
    for (let o = 0, gi = 0, oo = 0; o < O; o++, oo++) {
      if (oo == Og) {
        oo = 0;
        gi++;
      }
      const base = w + <usize>(o * Cg * KK + first);
      let pos = 0, neg = 0;
      for (let i = 0; i < G; i++) {
        const wi = <i32>load<i8>(base + <usize>(i * KK));
        if (wi > 0) pos += wi;
        else neg += wi;
      }
      const lo = neg * top, hi = pos * top, mid = (lo + hi) >> 1;
      const dst = rows + (<usize>((gi * S + s) * segElems + oo) << 1);
      if (G4) bitSerial4(dst, <usize>OgPad << 1, base, <usize>KK, mid);
      else grouped(dst, <usize>OgPad << 1, base, <usize>KK, mid, G, ib);
      const at = <usize>o << 2, m = max(hi - mid, mid - lo);
      store<i32>(offset + at, load<i32>(offset + at) + mid);
      store<i32>(bounds + at, load<i32>(bounds + at) + m);
      if (m > maxAbs) maxAbs = m;
    }
  }
  let perPlane = 0;
  for (let o = 0; o < O; o++) perPlane = max(perPlane, load<i32>(bounds + (<usize>o << 2)));
  store<i32>(stats, perPlane);
  store<i32>(stats, maxAbs, 4);
}

/** One segment's entries less mid, code by code from the codes of fewer slots: entry(code) = entry(code without slot i) + v_i * w_i. */
function grouped(dst: usize, step: usize, base: usize, KK: usize, mid: i32, G: i32, ib: i32): void {
  const top = (1 << ib) - 1;
  store<i16>(dst, <i16>(-mid));
  for (let i = 0; i < G; i++) {
    const wi = <i32>load<i8>(base + <usize>i * KK), low = 1 << (i * ib);
    for (let v = 1; v <= top; v++) {
      for (let c = 0; c < low; c++) store<i16>(dst + <usize>(c + v * low) * step, <i16>(<i32>load<i16>(dst + <usize>c * step) + v * wi));
    }
  }
}

/** grouped() for 4 one-bit slots (the layer tables of kernels/wasm/int-conv.ts), its 16 entries in registers. */
function bitSerial4(dst: usize, step: usize, base: usize, KK: usize, mid: i32): void {
  const w0 = <i32>load<i8>(base), w1 = <i32>load<i8>(base + KK), w2 = <i32>load<i8>(base + 2 * KK), w3 = <i32>load<i8>(base + 3 * KK);
  const e0 = -mid, e1 = e0 + w0, e2 = e0 + w1, e3 = e1 + w1;
  for (let h = 0; h < 4; h++) {
    // Codes 4h..4h+3: slots 2 and 3 set as h says.
    const add = (h & 1 ? w2 : 0) + (h & 2 ? w3 : 0), row = dst + <usize>(h * 4) * step;
    store<i16>(row, <i16>(e0 + add));
    store<i16>(row + step, <i16>(e1 + add));
    store<i16>(row + 2 * step, <i16>(e2 + add));
    store<i16>(row + 3 * step, <i16>(e3 + add));
  }
}

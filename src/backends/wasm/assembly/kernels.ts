// AssemblyScript kernels for the wasm backend (compiled by scripts/build-wasm.mjs).
// Memory is owned by the JS side: every argument is a byte offset into the shared memory.
// A job's parameters are an i32 record at `params`; the offsets below match params.ts.

const P_C: i32 = 1, P_HP: i32 = 2, P_WP: i32 = 3, P_O: i32 = 4, P_GROUPS: i32 = 5, P_CG: i32 = 6;
const P_OG: i32 = 7, P_OGPAD: i32 = 8, P_OH: i32 = 11, P_OW: i32 = 12;
const P_SH: i32 = 13, P_SW: i32 = 14, P_K: i32 = 17, P_S: i32 = 18, P_G: i32 = 19, P_IB: i32 = 20;
const P_PLANES: i32 = 21, P_CHUNK: i32 = 23, P_ROWS: i32 = 24, P_IN: i32 = 25, P_OUT: i32 = 26;
const P_KOFF: i32 = 27, P_BIAS: i32 = 28, P_W: i32 = 29, P_KP: i32 = 30, P_BITSERIAL: i32 = 31, P_MODE: i32 = 32;
/** P_REQ: 0 for int32 sums, else the f32 record [k[O], c[O], lo, hi] for float32 outputs clamp((sum + bias) * k + c, lo, hi). */
const P_REQ: i32 = 33;
/** P_SEGBYTES: bytes from one segment's rows to the next (R rows of OgPad int16, plus a skew). */
const P_SEGBYTES: i32 = 34;
/**
 * P_Q8: 0, or the f32 record [scale[O], lo, hi] for uint8 outputs (the next layer's codes):
 * clamp(nearest(f32(sum) * scale[o]), lo, hi) + P_QZERO, sum with the bias.
 */
const P_Q8: i32 = 22, P_QZERO: i32 = 35;
/**
 * P_GROUPED: 1 when the PCILT input is pre-packed (pack_groups): index bytes [N][planes][C/G][Hp][Wp],
 * each holding one tap of G consecutive channels, and P_KOFF holds each segment's offset in it.
 */
const P_GROUPED: i32 = 36;
/** P_ACT: the float kernels' activation after the bias: 0 none, 1 ReLU, 2 ReLU6. */
const P_ACT: i32 = 37;

/** P_MODE values: the profile runs parts of a kernel to time its phases. */
const MODE_PACK_ONLY: i32 = 1, MODE_NO_STORE: i32 = 2;

// @ts-ignore: decorator
@inline function prm(params: usize, i: i32): i32 {
  return load<i32>(params + ((<usize>i) << 2));
}

/** Pixels handled together: one v128 of packed indices. */
const TILE: i32 = 16;

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
 * acc32[q*8 .. q*8+7] (+)= widen(a) << shift, for one i16x8 partial sum: the first flush of a
 * pixel's channels stores, so the sums need no clearing.
 */
// @ts-ignore: decorator
@inline function flush(acc: usize, a: v128, shift: i32, first: bool): void {
  const lo = i32x4.shl(i32x4.extend_low_i16x8_s(a), shift), hi = i32x4.shl(i32x4.extend_high_i16x8_s(a), shift);
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
      flush(acc, a0, j, first);
      if (nv > 1) flush(acc + 32, a1, j, first);
      if (nv > 2) flush(acc + 64, a2, j, first);
      if (nv > 3) flush(acc + 96, a3, j, first);
      if (nv > 4) flush(acc + 128, a4, j, first);
      if (nv > 5) flush(acc + 160, a5, j, first);
      if (nv > 6) flush(acc + 192, a6, j, first);
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
function lookupTile(params: usize, ptrs: usize, acc: usize, np: i32): void {
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
 * The look-up loop alone, for the bench: `tiles` tiles of 16 pixels through lookupTile, tile t's
 * row addresses at ptrs + (t % ptrTiles) * planes * S * 64 bytes (the bench points them at random
 * rows of a table the seed layer's size, or all at one row per segment, which stays in L1).
 */
export function lookup_bench(params: usize, ptrs: usize, ptrTiles: i32, acc: usize, tiles: i32): void {
  const tileBytes = <usize>(prm(params, P_PLANES) * prm(params, P_S) * TILE) << 2;
  for (let t = 0; t < tiles; t++) lookupTile(params, ptrs + <usize>(t % ptrTiles) * tileBytes, acc, TILE);
}

/**
 * Four int32 sums of channel o as four float32 values clamp(f32(sum) * k[o] + c[o], lo, hi), each
 * step rounded to float32 (the JS twin uses Math.fround), so the results agree bit for bit.
 * pmax/pmin keep the twin's comparisons: v < lo ? lo : v > hi ? hi : v.
 */
// @ts-ignore: decorator
@inline function requant4(v: v128, req: usize, O: i32, o: i32): v128 {
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
@inline function sumCodes4(v: v128, q8: usize, O: i32, o: i32, zero: v128): i32 {
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
@inline function store1(params: usize, e: usize, v: i32, b: i32, O: i32, o: i32): void {
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
function storeTile(params: usize, acc: usize, stride: i32, np: i32, n: i32, o0: i32, count: i32, oh: i32, ow0: i32): void {
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
  if (Hp == H && Wp == W) {
    // No border: the planes are one run.
    quantizeRun(src + (<usize>(p0 * H * W) << 2), dst + <usize>(p0 * H * W), (p1 - p0) * H * W, scale, zero, L);
    return;
  }
  const bytes = <usize>(Hp * Wp);
  for (let p = p0; p < p1; p++) {
    const plane = dst + <usize>p * bytes;
    memory.fill(plane, <u8>(<i32>zero), bytes);
    for (let h = 0; h < H; h++) {
      quantizeRun(src + (<usize>((p * H + h) * W) << 2), plane + <usize>((h + padT) * Wp + padL), W, scale, zero, L);
    }
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

/** Scratch bytes one thread needs for pcilt_rows / direct_rows / direct8_rows. */
export function scratch_bytes(planes: i32, S: i32, Kp: i32, OgPad: i32): i32 {
  return max(planes * S * TILE * 5 + 64, 8 * Kp) + 64 + TILE * max(OgPad, 64) * 4;
}

/**
 * Micro-benchmark: 8 independent chains of i8x16.swizzle over a 16-entry table held in a
 * register (16 look-ups each). The report compares the kernels' look-up rate with this.
 */
export function swizzle_bench(iters: i32, relaxed: i32): i32 {
  const t = i8x16(3, 7, 1, 12, 0, 15, 9, 4, 11, 2, 14, 6, 8, 13, 5, 10);
  let a0 = i8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  let a1 = i8x16.add(a0, i8x16.splat(1)), a2 = i8x16.add(a0, i8x16.splat(2)), a3 = i8x16.add(a0, i8x16.splat(3));
  let a4 = i8x16.add(a0, i8x16.splat(4)), a5 = i8x16.add(a0, i8x16.splat(5)), a6 = i8x16.add(a0, i8x16.splat(6));
  let a7 = i8x16.add(a0, i8x16.splat(7));
  const mask = i8x16.splat(15);
  a1 = v128.and(a1, mask); a2 = v128.and(a2, mask); a3 = v128.and(a3, mask); a4 = v128.and(a4, mask);
  a5 = v128.and(a5, mask); a6 = v128.and(a6, mask); a7 = v128.and(a7, mask);
  if (ASC_FEATURE_RELAXED_SIMD && relaxed) {
    for (let i = 0; i < iters; i++) {
      a0 = i8x16.relaxed_swizzle(t, a0); a1 = i8x16.relaxed_swizzle(t, a1);
      a2 = i8x16.relaxed_swizzle(t, a2); a3 = i8x16.relaxed_swizzle(t, a3);
      a4 = i8x16.relaxed_swizzle(t, a4); a5 = i8x16.relaxed_swizzle(t, a5);
      a6 = i8x16.relaxed_swizzle(t, a6); a7 = i8x16.relaxed_swizzle(t, a7);
    }
  } else {
    for (let i = 0; i < iters; i++) {
      a0 = i8x16.swizzle(t, a0); a1 = i8x16.swizzle(t, a1); a2 = i8x16.swizzle(t, a2); a3 = i8x16.swizzle(t, a3);
      a4 = i8x16.swizzle(t, a4); a5 = i8x16.swizzle(t, a5); a6 = i8x16.swizzle(t, a6); a7 = i8x16.swizzle(t, a7);
    }
  }
  const x = v128.xor(v128.xor(v128.xor(a0, a1), v128.xor(a2, a3)), v128.xor(v128.xor(a4, a5), v128.xor(a6, a7)));
  return i8x16.extract_lane_u(x, 0) + i8x16.extract_lane_u(x, 9);
}

/**
 * Micro-benchmark as a look-up kernel would use swizzle: index vectors streamed from a 16 KiB
 * buffer (L1), four register tables, results summed. Counts 64 look-ups per iteration.
 */
export function swizzle_stream_bench(buf: usize, iters: i32): i32 {
  const t0 = i8x16(3, 7, 1, 12, 0, 15, 9, 4, 11, 2, 14, 6, 8, 13, 5, 10);
  const t1 = i8x16.add(t0, i8x16.splat(1)), t2 = i8x16.add(t0, i8x16.splat(2)), t3 = i8x16.add(t0, i8x16.splat(3));
  let s0 = i8x16.splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (let i = 0; i < iters; i++) {
    const v = v128.load(buf + (<usize>(i & 1023) << 4));
    s0 = i8x16.add(s0, i8x16.swizzle(t0, v));
    s1 = i8x16.add(s1, i8x16.swizzle(t1, v));
    s2 = i8x16.add(s2, i8x16.swizzle(t2, v));
    s3 = i8x16.add(s3, i8x16.swizzle(t3, v));
  }
  const x = v128.xor(v128.xor(s0, s1), v128.xor(s2, s3));
  return i8x16.extract_lane_u(x, 0) + i8x16.extract_lane_u(x, 9);
}

/** c + a * b, fused where relaxed SIMD offers it (training is float, not bit-exact). */
// @ts-ignore: decorator
@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * Float matrix product for training: C[M][N] (+)= A[M][K] * B[K][N], rows [rowBegin, rowEnd) of C
 * (multiples of 4). B comes packed in panels of 8 columns, Bp[N/8][K][8]; N is a multiple of 8.
 * 4 rows x 8 columns of C stay in registers through the whole K loop.
 */
export function sgemm(A: usize, Bp: usize, C: usize, M: i32, N: i32, K: i32, accumulate: i32, rowBegin: i32, rowEnd: i32): void {
  const rowEnd2 = min(rowEnd, M);
  // The smaller operand goes inside, so that it stays in cache while the other streams once:
  // when this task's rows of A are fewer than B's columns, B's K x 8 panels go outside (each
  // stays in L1 while every row block passes over it), else A's row blocks do.
  if (rowEnd2 - rowBegin <= N) {
    for (let j = 0; j < N; j += 8) {
      for (let i = rowBegin; i < rowEnd2; i += 4) sgemmTile(A, Bp, C, N, K, accumulate, i, j);
    }
  } else {
    for (let i = rowBegin; i < rowEnd2; i += 4) {
      for (let j = 0; j < N; j += 8) sgemmTile(A, Bp, C, N, K, accumulate, i, j);
    }
  }
}

/** One 4 x 8 tile of C: rows i..i+3 of A times panel j of B (C += when accumulate). */
// @ts-ignore: decorator
@inline function sgemmTile(A: usize, Bp: usize, C: usize, N: i32, K: i32, accumulate: i32, i: i32, j: i32): void {
  const rowA = <usize>K << 2, rowC = <usize>N << 2;
  const a0p = A + <usize>i * rowA, a1p = a0p + rowA, a2p = a1p + rowA, a3p = a2p + rowA;
  const c0p = C + <usize>i * rowC + (<usize>j << 2), c1p = c0p + rowC, c2p = c1p + rowC, c3p = c2p + rowC;
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  if (accumulate) {
    c00 = v128.load(c0p); c01 = v128.load(c0p, 16); c10 = v128.load(c1p); c11 = v128.load(c1p, 16);
    c20 = v128.load(c2p); c21 = v128.load(c2p, 16); c30 = v128.load(c3p); c31 = v128.load(c3p, 16);
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
  v128.store(c0p, c00); v128.store(c0p, c01, 16); v128.store(c1p, c10); v128.store(c1p, c11, 16);
  v128.store(c2p, c20); v128.store(c2p, c21, 16); v128.store(c3p, c30); v128.store(c3p, c31, 16);
}

/** The clamp of the float kernels' activations (P_ACT: 0 none, 1 ReLU, 2 ReLU6): y = min(max(x, lo), hi). */
// @ts-ignore: decorator
@inline function actLo(act: i32): f32 {
  return act ? 0 : -Infinity;
}
// @ts-ignore: decorator
@inline function actHi(act: i32): f32 {
  return act == 2 ? 6 : Infinity;
}

/**
 * A float convolution's rows [rowBegin, rowEnd) (multiples of 4) as one task: sgemm into C[M4][N8],
 * then its epilogue for the rows below M, dst[o][i] = act(C[o][i] + bias[o]) for i < P (bias 0:
 * none; act 0 none, 1 ReLU, 2 ReLU6), in float32 as the JS twin computes it (add, then clamp).
 */
export function sgemm_bias_act(A: usize, Bp: usize, C: usize, M4: i32, N8: i32, K: i32, rowBegin: i32, rowEnd: i32,
  dst: usize, M: i32, P: i32, bias: usize, act: i32): void {
  sgemm(A, Bp, C, M4, N8, K, 0, rowBegin, rowEnd);
  const flo = actLo(act), fhi = actHi(act), lo = f32x4.splat(flo), hi = f32x4.splat(fhi);
  for (let o = rowBegin; o < min(rowEnd, M); o++) {
    const b: f32 = bias ? load<f32>(bias + (<usize>o << 2)) : 0;
    const bv = f32x4.splat(b);
    const s = C + (<usize>(o * N8) << 2), d = dst + (<usize>(o * P) << 2);
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
 * Packs a float convolution's im2col matrix straight into sgemm panels, Bp[N8/8][K][8], panels
 * [j0, j1): B[k][p] = x[c][oh * sh - pt + kh * dh][ow * sw - pl + kw * dw] (0 outside the input) for
 * k = (c * KH + kh) * KW + kw and p = oh * OW + ow (0 for p >= P). x holds the group's C planes of
 * H x W. geo: i32 [C, H, W, KH, KW, sh, sw, dh, dw, pt, pl, OW, P]. Eight pixels of one output row
 * whose taps all fall inside the input at stride 1 are two vector loads.
 */
export function pack_conv_panels(x: usize, dst: usize, geo: usize, j0: i32, j1: i32): void {
  const C = load<i32>(geo), H = load<i32>(geo, 4), W = load<i32>(geo, 8), KH = load<i32>(geo, 12), KW = load<i32>(geo, 16);
  const sh = load<i32>(geo, 20), sw = load<i32>(geo, 24), dh = load<i32>(geo, 28), dw = load<i32>(geo, 32);
  const pt = load<i32>(geo, 36), pl = load<i32>(geo, 40), OW = load<i32>(geo, 44), P = load<i32>(geo, 48);
  const K = C * KH * KW;
  for (let j = j0; j < j1; j++) {
    const p0 = j << 3;
    const oh = p0 / OW, ow = p0 % OW;
    // One output row, stride 1: a tap reads 8 consecutive input floats.
    const row = sw == 1 && ow + 8 <= OW && p0 + 8 <= P;
    let d = dst + (<usize>(p0 * K) << 2);
    for (let c = 0; c < C; c++) {
      const plane = x + (<usize>(c * H * W) << 2);
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          if (row) {
            const ih = oh * sh - pt + kh * dh, iw = ow - pl + kw * dw;
            if (ih >= 0 && ih < H && iw >= 0 && iw + 8 <= W) {
              const s = plane + (<usize>(ih * W + iw) << 2);
              v128.store(d, v128.load(s));
              v128.store(d, v128.load(s, 16), 16);
              d += 32;
              continue;
            }
          }
          for (let jj = 0; jj < 8; jj++) {
            const p = p0 + jj;
            let v: f32 = 0;
            if (p < P) {
              const ih = (p / OW) * sh - pt + kh * dh, iw = (p % OW) * sw - pl + kw * dw;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = load<f32>(plane + (<usize>(ih * W + iw) << 2));
            }
            store<f32>(d + (<usize>jj << 2), v);
          }
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

/**
 * The same in float32 (imported float models): input zero-bordered f32, weights w[C][K] f32,
 * optional bias; 8 pixels per step for stride 1, scalar otherwise. koff counts f32 elements.
 */
export function depthwise_f32_rows(params: usize, rowBegin: i32, rowEnd: i32, scratch: usize): void {
  const C = prm(params, P_C), Hp = prm(params, P_HP), Wp = prm(params, P_WP);
  const OH = prm(params, P_OH), OW = prm(params, P_OW), sh = prm(params, P_SH), sw = prm(params, P_SW), K = prm(params, P_K);
  const koff = <usize>prm(params, P_KOFF), bias = <usize>prm(params, P_BIAS), act = prm(params, P_ACT);
  const flo = actLo(act), fhi = actHi(act), lo = f32x4.splat(flo), hi = f32x4.splat(fhi);
  // Stride 1: 8 pixels a step, then 4; stride 2: 4, their inputs the even lanes of two vectors.
  const vec8 = sw == 1 ? OW & ~7 : 0;
  const vec = sw == 1 || sw == 2 ? OW & ~3 : 0;
  for (let row = rowBegin; row < rowEnd; row++) {
    const n = row / OH, oh = row % OH;
    for (let c = 0; c < C; c++) {
      const src = <usize>prm(params, P_IN) + (<usize>(((n * C + c) * Hp + oh * sh) * Wp) << 2);
      const w = <usize>prm(params, P_W) + (<usize>(c * K) << 2);
      const dst = <usize>prm(params, P_OUT) + (<usize>(((n * C + c) * OH + oh) * OW) << 2);
      const b = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
      if (sw == 1) {
        for (let ow = 0; ow < vec8; ow += 8) {
          let a0 = f32x4.splat(b), a1 = a0;
          const px = src + (<usize>ow << 2);
          for (let k = 0; k < K; k++) {
            const at = px + (<usize>load<i32>(koff + (<usize>k << 2)) << 2);
            const wk = f32x4.splat(load<f32>(w + (<usize>k << 2)));
            a0 = f32x4.add(a0, f32x4.mul(v128.load(at), wk));
            a1 = f32x4.add(a1, f32x4.mul(v128.load(at, 16), wk));
          }
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a0, lo), hi));
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a1, lo), hi), 16);
        }
        for (let ow = vec8; ow < vec; ow += 4) {
          let a0 = f32x4.splat(b);
          const px = src + (<usize>ow << 2);
          for (let k = 0; k < K; k++) {
            const at = px + (<usize>load<i32>(koff + (<usize>k << 2)) << 2);
            a0 = f32x4.add(a0, f32x4.mul(v128.load(at), f32x4.splat(load<f32>(w + (<usize>k << 2)))));
          }
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a0, lo), hi));
        }
      } else {
        for (let ow = 0; ow < vec; ow += 4) {
          let a = f32x4.splat(b);
          const px = src + (<usize>(ow << 1) << 2);
          for (let k = 0; k < K; k++) {
            const at = px + (<usize>load<i32>(koff + (<usize>k << 2)) << 2);
            const x = i32x4.shuffle(v128.load(at), v128.load(at, 16), 0, 2, 4, 6);
            a = f32x4.add(a, f32x4.mul(x, f32x4.splat(load<f32>(w + (<usize>k << 2)))));
          }
          v128.store(dst + (<usize>ow << 2), f32x4.pmin(f32x4.pmax(a, lo), hi));
        }
      }
      for (let ow = vec; ow < OW; ow++) {
        const px = src + (<usize>(ow * sw) << 2);
        let s: f32 = b;
        for (let k = 0; k < K; k++) s += load<f32>(px + (<usize>load<i32>(koff + (<usize>k << 2)) << 2)) * load<f32>(w + (<usize>k << 2));
        store<f32>(dst + (<usize>ow << 2), s < flo ? flo : s > fhi ? fhi : s);
      }
    }
  }
}

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

// ---------------------------------------------------------------------------------------------
// Float32 elementwise ops for the graph runtime (src/kernels/wasm/eltwise.ts; the TypeScript ops in
// src/ops are their reference). exp is Cephes' expf: range reduction by ln 2, a degree-5
// polynomial, 2^n built in the exponent bits (relative error about 1e-7 in [-87, 88]).

// @ts-ignore: decorator
@inline function expv(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.3)), f32x4.splat(88.3));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  const e = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1));
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(e, pow2);
}

/** erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), as the reference computes it. */
// @ts-ignore: decorator
@inline function erfv(x: v128): v128 {
  const a = f32x4.abs(x);
  const t = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), f32x4.mul(a, f32x4.splat(0.3275911))));
  let p = f32x4.splat(1.061405429);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.453152027));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.421413741));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.284496736));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.254829592));
  const y = f32x4.sub(f32x4.splat(1), f32x4.mul(f32x4.mul(p, t), expv(f32x4.neg(f32x4.mul(a, a)))));
  // The sign of x onto y.
  return v128.or(v128.and(x, i32x4.splat(0x80000000)), y);
}

/**
 * y[i] = f(x[i]) for n floats (in place allowed). op: 0 relu, 1 clip(p, q), 2 sigmoid, 3 tanh,
 * 4 exp, 5 hardsigmoid(alpha p, beta q), 6 hardswish, 7 leaky relu(p), 8 gelu (erf), 9 silu,
 * 10 sqrt, 11 neg, 12 abs, 13 reciprocal.
 */
export function unary_f32(op: i32, x: usize, y: usize, n: i32, p: f32, q: f32): void {
  const vp = f32x4.splat(p), vq = f32x4.splat(q), zero = f32x4.splat(0), one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    let r: v128;
    switch (op) {
      case 0: r = f32x4.max(v, zero); break;
      case 1: r = f32x4.pmin(f32x4.pmax(v, vp), vq); break;
      case 2: r = f32x4.div(one, f32x4.add(one, expv(f32x4.neg(v)))); break;
      case 3: { const e = expv(f32x4.mul(v, f32x4.splat(2))); r = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(e, one))); break; }
      case 4: r = expv(v); break;
      case 5: r = f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.mul(v, vp), vq), zero), one); break;
      case 6: r = f32x4.mul(v, f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.mul(v, f32x4.splat(1.0 / 6)), f32x4.splat(0.5)), zero), one)); break;
      case 7: r = v128.bitselect(v, f32x4.mul(v, vp), f32x4.ge(v, zero)); break;
      case 8: r = f32x4.mul(f32x4.mul(v, f32x4.splat(0.5)), f32x4.add(one, erfv(f32x4.mul(v, f32x4.splat(0.7071067811865476))))); break;
      case 9: r = f32x4.div(v, f32x4.add(one, expv(f32x4.neg(v)))); break;
      case 10: r = f32x4.sqrt(v); break;
      case 11: r = f32x4.neg(v); break;
      case 12: r = f32x4.abs(v); break;
      default: r = f32x4.div(one, v);
    }
    v128.store(y + o, r);
  }
  // The last n % 4: through a zero-padded vector on the stack.
  if (i < n) {
    const tmp = memory.data(32);
    v128.store(tmp, f32x4.splat(0));
    for (let k = i; k < n; k++) store<f32>(tmp + (<usize>(k - i) << 2), load<f32>(x + (<usize>k << 2)));
    unary_f32(op, tmp, tmp + 16, 4, p, q);
    for (let k = i; k < n; k++) store<f32>(y + (<usize>k << 2), load<f32>(tmp + 16 + (<usize>(k - i) << 2)));
  }
}

/**
 * One run of a broadcast binary op: y[i] = a[i * sa] (op) b[i * sb] for n floats, sa and sb 0 or 1.
 * op: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 prelu (b the slope).
 */
export function binary_f32(op: i32, a: usize, sa: i32, b: usize, sb: i32, y: usize, n: i32): void {
  const ia = <usize>(sa << 4), ib = <usize>(sb << 4);
  let pa = a, pb = b, py = y;
  let i = 0;
  const zero = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) {
    const va = sa ? v128.load(pa) : v128.load32_splat(pa), vb = sb ? v128.load(pb) : v128.load32_splat(pb);
    let r: v128;
    switch (op) {
      case 0: r = f32x4.add(va, vb); break;
      case 1: r = f32x4.sub(va, vb); break;
      case 2: r = f32x4.mul(va, vb); break;
      case 3: r = f32x4.div(va, vb); break;
      case 4: r = f32x4.max(va, vb); break;
      case 5: r = f32x4.min(va, vb); break;
      default: r = v128.bitselect(f32x4.mul(va, vb), va, f32x4.lt(va, zero));
    }
    v128.store(py, r);
    pa += ia;
    pb += ib;
    py += 16;
  }
  for (; i < n; i++) {
    const u = load<f32>(a + (<usize>(i * sa) << 2)), v = load<f32>(b + (<usize>(i * sb) << 2));
    let r: f32;
    switch (op) {
      case 0: r = u + v; break;
      case 1: r = u - v; break;
      case 2: r = u * v; break;
      case 3: r = u / v; break;
      case 4: r = u != u || v != v ? NaN : max(u, v); break;
      case 5: r = u != u || v != v ? NaN : min(u, v); break;
      default: r = u < 0 ? u * v : u;
    }
    store<f32>(y + (<usize>i << 2), r);
  }
}

// Micro-benchmarks (bench builds only, never loaded by the library): the look-up loop alone, and i8x16.swizzle
// in registers and streamed from L1.

import { P_PLANES, P_S, prm } from './params';
import { TILE, lookupTile } from './pcilt-bitserial-i16rows';

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

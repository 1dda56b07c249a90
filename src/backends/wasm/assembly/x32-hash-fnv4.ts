// A fingerprint of 32-bit words: four interleaved FNV-style lanes, one v128 a step.

/** The FNV prime the lanes multiply by. */
const P: i32 = 0x01000193;

/**
 * Folds the n words at src into the four lanes at state (i32 x 4): lane k takes words k, k + 4, ...
 * as h = (h ^ word) * P, and the n % 4 words left over go into lane 0 in order. The JS twin: the
 * fingerprint of nn/api.ts.
 */
export function hash_fnv4_x32(src: usize, n: i32, state: usize): void {
  let h = v128.load(state);
  const p = i32x4.splat(P);
  const body = n & ~3;
  for (let i = 0; i < body; i += 4) h = i32x4.mul(v128.xor(h, v128.load(src + (<usize>i << 2))), p);
  let h0 = i32x4.extract_lane(h, 0);
  for (let i = body; i < n; i++) h0 = (h0 ^ load<i32>(src + (<usize>i << 2))) * P;
  v128.store(state, i32x4.replace_lane(h, 0, h0));
}

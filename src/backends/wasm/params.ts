/**
 * Offsets of the i32 parameter record the integer convolution kernels read: the one definition.
 * scripts/build-wasm.mjs generates the AssemblyScript side from it (assembly/params.ts, as P_N,
 * P_C, ... and MODE_FULL, ...), so the two cannot drift apart.
 *
 * - REQ: 0 for int32 sums, else the f32 record [k[O], c[O], lo, hi] for float32 outputs
 *   clamp((sum + bias) * k + c, lo, hi).
 * - SEGBYTES: bytes from one segment's table rows to the next (R rows of OgPad int16, plus a skew).
 * - Q8: 0, or the f32 record [scale[O], lo, hi] for uint8 outputs (the next layer's codes):
 *   clamp(nearest(f32(sum) * scale[o]), lo, hi) + QZERO, sum with the bias.
 * - GROUPED: 1 when the PCILT input is pre-packed (pack_groups): index bytes [N][planes][C/G][Hp][Wp],
 *   each holding one tap of G consecutive channels, and KOFF holds each segment's offset in it.
 * - ACT: the float kernels' activation after the bias: 0 none, 1 ReLU, 2 ReLU6.
 * - IH, IW, PT, PL: the unpadded input's size and its top and left padding (the float depthwise kernel pads
 *   one plane at a time itself).
 * - PW0..PW7: PCILT plane weights: plane j's sums are multiplied by PW[j] as they are flushed (2^j for
 *   uniform bit-serial codes, 1 for one plane; any integers for additive levels, level = sum_j bit_j * PW[j]).
 */
export const P = {
  N: 0, C: 1, HP: 2, WP: 3, O: 4, GROUPS: 5, CG: 6, OG: 7, OGPAD: 8, KH: 9, KW: 10, OH: 11, OW: 12,
  SH: 13, SW: 14, DH: 15, DW: 16, K: 17, S: 18, G: 19, IB: 20, PLANES: 21, Q8: 22, CHUNK: 23,
  ROWS: 24, IN: 25, OUT: 26, KOFF: 27, BIAS: 28, W: 29, KP: 30, BITSERIAL: 31, MODE: 32, REQ: 33,
  SEGBYTES: 34, QZERO: 35, GROUPED: 36, ACT: 37, PW0: 38, IH: 46, IW: 47, PT: 48, PL: 49,
} as const;
/** The record: P's fields, PW0 the first of 8 plane weights (38..45). */
export const PARAM_COUNT = 50;

/** P.MODE: the profile runs parts of a kernel to time its phases (checked once a tile, outside the inner loops). */
export const MODE = { FULL: 0, PACK_ONLY: 1, NO_STORE: 2 } as const;

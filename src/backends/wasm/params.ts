/** Offsets of the i32 parameter record the kernels read (keep in step with assembly/kernels.ts). */
export const P = {
  N: 0, C: 1, HP: 2, WP: 3, O: 4, GROUPS: 5, CG: 6, OG: 7, OGPAD: 8, KH: 9, KW: 10, OH: 11, OW: 12,
  SH: 13, SW: 14, DH: 15, DW: 16, K: 17, S: 18, G: 19, IB: 20, PLANES: 21, Q8: 22, CHUNK: 23,
  ROWS: 24, IN: 25, OUT: 26, KOFF: 27, BIAS: 28, W: 29, KP: 30, BITSERIAL: 31, MODE: 32, REQ: 33,
  SEGBYTES: 34, QZERO: 35, GROUPED: 36, ACT: 37,
} as const;
export const PARAM_COUNT = 38;

/** P.MODE: the profile runs parts of a kernel to time its phases. */
export const MODE = { FULL: 0, PACK_ONLY: 1, NO_STORE: 2 } as const;

/** WGSL kernels, generated per configuration (sizes that must be constants are baked in). */

const PARAMS = `
struct Params {
  N: u32, C: u32, Hp: u32, Wp: u32, O: u32, groups: u32, Cg: u32, Og: u32, OgPad: u32,
  OH: u32, OW: u32, sh: u32, sw: u32, K: u32, S: u32, G: u32, ib: u32, blocks: u32,
  hasBias: u32, KQ: u32, NP: u32, SW: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(3) var<storage, read> koff: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<i32>;
@group(0) @binding(5) var<storage, read_write> outp: array<i32>;

fn code(i: u32) -> u32 { return (inp[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
`;

/**
 * A pack pass's head (64 invocations a workgroup): the invocation's pixel, group and word (y = gi *
 * SW + word), the offset of its receptive field's first tap, and tap(): a tap's code `then` (e.g.
 * ' ^ 0x80u', which turns a u8 code into the int8 code - 128), and `past` past the reduction.
 */
const packHead = (past: string, then: string) => `
fn tap(base0: u32, k: u32) -> u32 {
  if (k >= p.K) { return ${past}; }
  return code(base0 + koff[k])${then};
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let pix = (wg.z * 65535u + wg.x) * 64u + t;
  if (pix >= p.NP) { return; }
  let gi = wg.y / p.SW;
  let w = wg.y % p.SW;
  let n = pix / (p.OH * p.OW);
  let oh = (pix / p.OW) % p.OH;
  let ow = pix % p.OW;
  let base0 = ((n * p.C + gi * p.Cg) * p.Hp + oh * p.sh) * p.Wp + ow * p.sw;`;

/** put(): one output sum, plus `extra` and the bias. */
const putFn = (extra: string) => `
fn put(n: u32, at: u32, o: u32, end: u32, v: i32) {
  if (o < end) {
    var b = v${extra};
    if (p.hasBias != 0u) { b += bias[o]; }
    outp[(n * p.O + o) * p.OH * p.OW + at] = b;
  }
}`;

/**
 * A pixel-per-invocation kernel's head: its pixel (px clamped, for loads), group and channel
 * block, and `count` int32 sums o0, o1, ...
 */
const pixelHead = (T: number, count: number) => `
@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let pix = (wg.z * 65535u + wg.x) * ${T}u + t;
  let px = min(pix, p.NP - 1u);
  let gi = wg.y / p.blocks;
  let cb = wg.y % p.blocks;
  ${Array.from({ length: count }, (_, c) => `var o${c} = 0i;`).join(' ')}`;

/** Stores the sums o0.. of `count` channels from the channel block's first. */
const storeSums = (count: number) => `
  if (pix < p.NP) {
    let n = pix / (p.OH * p.OW);
    let at = pix % (p.OH * p.OW);
    let c0 = gi * p.Og + cb * ${count}u;
    let end = (gi + 1u) * p.Og;
    ${Array.from({ length: count }, (_, c) => `put(n, at, c0 + ${c}u, end, o${c});`).join('\n    ')}
  }
}`;

/** A direct kernel's shape: invocations per workgroup (one output pixel each) and output channels per invocation. */
export interface DirectGpuConfig {
  threads: number;
  channels: number;
}

/**
 * Measured on an NVIDIA H100 (docs/perf-notes.md section 25g): 0.134 ms on the seed layer, within 3%
 * of the best shape tried (768 x 32), and a size every browser adapter allows.
 */
export const DIRECT_CONFIG: DirectGpuConfig = { threads: 256, channels: 32 };

/** Tap quads (one u32 of 4 int8 codes) the direct pack pass writes per invocation. */
export const QUADS_PER_INVOCATION = 8;

/**
 * Direct pack pass: each invocation packs, for one output pixel and one group, 8 quads of its
 * receptive field as int8 (code - 128, 4 a u32): xq[(gi * KQ + quad) * NP + pixel]. Taps past the
 * reduction read 0 (their weights are 0). A word's quads past KQ are not written: they would land
 * in the next group's quads, which another invocation writes.
 */
export function quadShader(): string {
  const taps = Array.from({ length: 4 * QUADS_PER_INVOCATION }, (_, k) => k);
  return `${PARAMS}
@group(0) @binding(7) var<storage, read_write> xq: array<u32>;
${packHead('0x80u', ' ^ 0x80u')}
  let k0 = w * ${4 * QUADS_PER_INVOCATION}u;
  ${taps.map((k) => `let c${k} = tap(base0, k0 + ${k}u);`).join('\n  ')}
  ${Array.from({ length: QUADS_PER_INVOCATION }, (_, j) => `if (w * ${QUADS_PER_INVOCATION}u + ${j}u < p.KQ) { xq[(gi * p.KQ + w * ${QUADS_PER_INVOCATION}u + ${j}u) * p.NP + pix] = ${[0, 1, 2, 3].map((i) => `(c${4 * j + i} << ${8 * i}u)`).join(' | ')}; }`).join('\n  ')}
}`;
}

/**
 * Direct int8 x code convolution with dot4I8Packed, laid out like the PCILT look-up pass: each
 * invocation owns one output pixel and `channels` output channels; per chunk of QC tap quads the
 * workgroup stages its channels' packed weights in workgroup memory (every invocation then reads
 * the same words: broadcasts), and each invocation multiplies its pixel's quads (from the pack
 * pass) with them, four quads' loads in flight at a time. KQ is padded to a multiple of 4 (zero
 * weights).
 */
export function dotShader(QC: number, cfg: DirectGpuConfig, builtinDot4: boolean): string {
  const T = cfg.threads, V = cfg.channels / 4;
  const dot = builtinDot4 ? 'dot4I8Packed(a, b)' : 'dot(unpack4xI8(a), unpack4xI8(b))';
  const vs = Array.from({ length: V }, (_, v) => v);
  const lanes = ['x', 'y', 'z', 'w'];
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> wq: array<vec4u>;
@group(0) @binding(6) var<storage, read> sumw: array<i32>;
@group(0) @binding(7) var<storage, read> xq: array<u32>;
var<workgroup> wt: array<array<vec4u, ${V}>, ${QC}>;

fn dot4(a: u32, b: u32) -> i32 { return ${dot}; }

${putFn(' + 128 * sumw[o]')}
${pixelHead(T, 4 * V)}
  for (var q0 = 0u; q0 < p.KQ; q0 += ${QC}u) {
    let nq = min(${QC}u, p.KQ - q0);
    workgroupBarrier();
    for (var i = t; i < nq * ${V}u; i += ${T}u) {
      wt[i / ${V}u][i % ${V}u] = wq[(gi * p.KQ + q0 + i / ${V}u) * (p.OgPad / 4u) + cb * ${V}u + i % ${V}u];
    }
    workgroupBarrier();
    for (var q = 0u; q < nq; q += 4u) {
      let at = (gi * p.KQ + q0 + q) * p.NP + px;
      ${[0, 1, 2, 3].map((u) => `let x${u} = xq[at + ${u}u * p.NP];`).join(' ')}
      ${[0, 1, 2, 3].map((u) => vs.map((v) => `{ let w = wt[q + ${u}u][${v}]; ${lanes.map((l, i) => `o${4 * v + i} += dot4(x${u}, w.${l});`).join(' ')} }`).join('\n      ')).join('\n      ')}
    }
  }
${storeSums(4 * V)}`;
}

/** A PCILT kernel's shape: invocations per workgroup (one output pixel each) and channel pairs per invocation. */
export interface PciltGpuConfig {
  threads: number;
  pairs: number;
}

/**
 * Measured on an NVIDIA H100 (docs/perf-notes.md section 25): 768 pixels x 32 channels a workgroup
 * was the fastest of the shapes tried on the seed layer at every bit width.
 */
export const PCILT_CONFIG: PciltGpuConfig = { threads: 768, pairs: 16 };

/** Bits a segment's index takes in the index buffer: 4 for tables of up to 16 entries, else log2 of the entries (up to 16). */
function slotBits(R: number): number {
  return R <= 16 ? 4 : Math.ceil(Math.log2(R));
}

/** Segments whose indices one u32 of the index buffer holds: 8 of 4 bits, 6 of 5, ... 4 of 8, 3 of 9-10, 2 of 11-16. */
export function segmentsPerWord(R: number): number {
  return Math.floor(32 / slotBits(R));
}

/**
 * Index pass: each invocation packs, for one output pixel and one group, the table indices of
 * segmentsPerWord(R) segments into one u32 per bit-plane: idxb[((gi * planes + plane) * SW + word) * NP + pixel].
 * The indices are built once per input and read by every channel block of the look-up pass.
 */
export function indexShader(R: number, planes: number, G: number, ib: number, bitSerial: boolean): string {
  const SPW = segmentsPerWord(R), SB = slotBits(R);
  // Every tap of the word's segments unrolled, so that all its loads are in flight at once.
  const taps = Array.from({ length: SPW * G }, (_, k) => k);
  const at = (k: number) => Math.floor(k / G) * SB + (k % G) * ib;
  const words = Array.from({ length: planes }, (_, pl) =>
    taps.map((k) => `(${bitSerial ? `((c${k} >> ${pl}u) & 1u)` : `c${k}`} << ${at(k)}u)`).join(' | '));
  return `${PARAMS}
@group(0) @binding(6) var<storage, read_write> idxb: array<u32>;
${packHead('0u', '')}
  let k0 = w * ${SPW * G}u;
  ${taps.map((k) => `let c${k} = tap(base0, k0 + ${k}u);`).join('\n  ')}
  ${words.map((v, pl) => `idxb[((gi * ${planes}u + ${pl}u) * p.SW + w) * p.NP + pix] = ${v};`).join('\n  ')}
}`;
}

/**
 * PCILT look-ups: each invocation owns one output pixel and 2 x pairs output channels. Table
 * entries are int16 and two channels share a u32 (SWAR): one workgroup-memory load and one add
 * serve two channels. Per chunk of CH segments the workgroup stages its channels' rows
 * (tab[segment * R + code][pair], rows padded to an odd length so that the distinct rows a warp
 * reads fall in distinct banks), then every invocation adds, per bit-plane, the row its index
 * selects. A chunk's packed sums never leave int16 (CH x the largest |entry| <= 32767, checked by
 * the caller); after each plane of a chunk they are split and added, shifted by the plane, to
 * int32 sums.
 */
export function pciltShader(R: number, planes: number, CH: number, cfg: PciltGpuConfig): string {
  const P = cfg.pairs, T = cfg.threads, SPW = segmentsPerWord(R), SB = slotBits(R);
  const pairs = Array.from({ length: P }, (_, j) => j);
  const plane = (pl: number) => `
    {
      ${pairs.map((j) => `var a${j} = 0u;`).join(' ')}
      var word = 0u;
      for (var sl = 0u; sl < nch; sl++) {
        let s = s0 + sl;
        let slot = s % ${SPW}u;
        if (sl == 0u || slot == 0u) { word = idxb[((gi * ${planes}u + ${pl}u) * p.SW + s / ${SPW}u) * p.NP + px]; }
        let r = sl * ${R}u + ((word >> (slot * ${SB}u)) & ${(1 << SB) - 1}u);
        ${pairs.map((j) => `a${j} += tab[r][${j}];`).join(' ')}
      }
      ${pairs.map((j) => `flush(a${j}, &o${2 * j}, &o${2 * j + 1}, ${pl}u);`).join('\n      ')}
    }`;
  // Staging: 4 quads of entries in flight per invocation (loads first, then stores).
  const Q = P / 4, UNROLL = 4;
  const quads = Array.from({ length: UNROLL }, (_, u) => u);
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> rows: array<vec4u>;
@group(0) @binding(6) var<storage, read> idxb: array<u32>;
var<workgroup> tab: array<array<u32, ${P + 1}>, ${CH * R}>;

${putFn('')}

fn stage(i: u32, v: vec4u) {
  let row = i / ${Q}u;
  let at = (i % ${Q}u) * 4u;
  tab[row][at] = v.x;
  tab[row][at + 1u] = v.y;
  tab[row][at + 2u] = v.z;
  tab[row][at + 3u] = v.w;
}

fn flush(a: u32, lo: ptr<function, i32>, hi: ptr<function, i32>, pl: u32) {
  let l = bitcast<i32>(a << 16u) >> 16u;
  *lo += l << pl;
  *hi += ((bitcast<i32>(a) - l) >> 16u) << pl;
}

${pixelHead(T, 2 * P)}
  for (var s0 = 0u; s0 < p.S; s0 += ${CH}u) {
    let nch = min(${CH}u, p.S - s0);
    workgroupBarrier();
    let nq = nch * ${R * Q}u;
    let first = ((gi * p.S + s0) * ${R}u * p.OgPad / 2u + cb * ${P}u) / 4u;
    for (var i = t; i < nq; i += ${UNROLL * T}u) {
      ${quads.map((u) => `let i${u} = min(i + ${u * T}u, nq - 1u);`).join(' ')}
      ${quads.map((u) => `let v${u} = rows[first + (i${u} / ${Q}u) * p.OgPad / 8u + i${u} % ${Q}u];`).join('\n      ')}
      ${quads.map((u) => `stage(i${u}, v${u});`).join(' ')}
    }
    workgroupBarrier();${Array.from({ length: planes }, (_, pl) => plane(pl)).join('')}
  }
${storeSums(2 * P)}`;
}

/** Output channels a look-up-from-storage invocation sums: two vec4 loads a table row. */
export const GLOBAL_CHANNELS = 8;

/**
 * PCILT look-ups read straight from a storage buffer, for the tables the staged kernel above refuses
 * (more than 256 entries, or entries beyond int16): int32 entries, one per channel,
 * rows[((gi * S + s) * R + code) * OgPad + channel]. Each invocation owns one output pixel and
 * GLOBAL_CHANNELS channels; per bit-plane it adds the row each segment's index selects, then adds
 * that plane's int32 sums, shifted by the plane, to the output sums (a plane's sum is bounded by
 * the channel's worst-case sum, which buildPcilt keeps within int32).
 */
export function pciltGlobalShader(R: number, planes: number, T: number): string {
  const SPW = segmentsPerWord(R), SB = slotBits(R), V = GLOBAL_CHANNELS / 4;
  const vs = Array.from({ length: V }, (_, v) => v);
  const lanes = ['x', 'y', 'z', 'w'];
  const plane = (pl: number) => `
  {
    ${vs.map((v) => `var a${v} = vec4i(0);`).join(' ')}
    var word = 0u;
    for (var s = 0u; s < p.S; s++) {
      let slot = s % ${SPW}u;
      if (slot == 0u) { word = idxb[((gi * ${planes}u + ${pl}u) * p.SW + s / ${SPW}u) * p.NP + px]; }
      let r = (((gi * p.S + s) * ${R}u + ((word >> (slot * ${SB}u)) & ${(1 << SB) - 1}u)) * p.OgPad + cb * ${GLOBAL_CHANNELS}u) / 4u;
      ${vs.map((v) => `a${v} += rows[r + ${v}u];`).join(' ')}
    }
    ${vs.map((v) => lanes.map((l, i) => `o${4 * v + i} += a${v}.${l} << ${pl}u;`).join(' ')).join('\n    ')}
  }`;
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> rows: array<vec4i>;
@group(0) @binding(6) var<storage, read> idxb: array<u32>;

${putFn('')}
${pixelHead(T, GLOBAL_CHANNELS)}${Array.from({ length: planes }, (_, pl) => plane(pl)).join('')}
${storeSums(GLOBAL_CHANNELS)}`;
}

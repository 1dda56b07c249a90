/** WGSL kernels, generated per configuration (sizes that must be constants are baked in). */

/** Pixels one workgroup computes; each of its 64 invocations owns one output channel. */
export const TP = 16;
/** Output channels per workgroup (one per invocation). */
export const WG = 64;

const PARAMS = `
struct Params {
  N: u32, C: u32, Hp: u32, Wp: u32, O: u32, groups: u32, Cg: u32, Og: u32, OgPad: u32,
  OH: u32, OW: u32, sh: u32, sw: u32, K: u32, S: u32, G: u32, ib: u32, blocks: u32,
  tilesW: u32, tiles: u32, hasBias: u32, KQ: u32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<u32>;
@group(0) @binding(3) var<storage, read> koff: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<i32>;
@group(0) @binding(5) var<storage, read_write> outp: array<i32>;

fn code(i: u32) -> u32 { return (inp[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
`;

/** The workgroup's tile: image n, output row oh, first column ow0, group gi, channel block cb. */
const TILE = `
  let tile = wg.z * 65535u + wg.x;
  if (tile >= p.tiles) { return; }
  let owT = tile % p.tilesW;
  let rowi = tile / p.tilesW;
  let n = rowi / p.OH;
  let oh = rowi % p.OH;
  let gi = wg.y / p.blocks;
  let cb = wg.y % p.blocks;
  let ow0 = owT * ${TP}u;
  let c = cb * ${WG}u + t;
  let base0 = ((n * p.C + gi * p.Cg) * p.Hp + oh * p.sh) * p.Wp + ow0 * p.sw;
  var acc: array<i32, ${TP}>;
`;

const STORE = (extra: string) => `
  if (c < p.Og) {
    let o = gi * p.Og + c;
    var b = ${extra};
    if (p.hasBias != 0u) { b += bias[o]; }
    for (var px = 0u; px < ${TP}u; px++) {
      if (ow0 + px < p.OW) { outp[((n * p.O + o) * p.OH + oh) * p.OW + ow0 + px] = acc[px] + b; }
    }
  }
`;

/**
 * PCILT: per chunk of CH segments, the workgroup stages the table rows of its 64 channels in
 * workgroup memory (tab[segment][code][channel]) and packs the indices of its 16 pixels
 * (idx[plane][segment][pixel]); then every invocation adds, for each pixel, the entry of its
 * channel in the row the index selects. All invocations read the same row at once, one
 * entry each: consecutive addresses, no bank conflicts.
 */
export function pciltShader(R: number, planes: number, bitSerial: boolean): { code: string; CH: number } {
  // Staged rows and packed indices share the 16 KiB of workgroup memory WebGPU guarantees.
  const CH = Math.max(1, Math.floor(15360 / (R * WG * 4 + planes * TP * 4)));
  const code = `${PARAMS}
@group(0) @binding(2) var<storage, read> rows: array<i32>;
var<workgroup> tab: array<i32, ${CH * R * WG}>;
var<workgroup> idx: array<u32, ${planes * CH * TP}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
${TILE}
  for (var s0 = 0u; s0 < p.S; s0 += ${CH}u) {
    let nch = min(${CH}u, p.S - s0);
    for (var i = t; i < nch * ${R * WG}u; i += ${WG}u) {
      let sl = i / ${R * WG}u;
      let rem = i % ${R * WG}u;
      tab[i] = rows[((gi * p.S + s0 + sl) * ${R}u + rem / ${WG}u) * p.OgPad + cb * ${WG}u + rem % ${WG}u];
    }
    for (var j = t; j < ${planes}u * nch * ${TP}u; j += ${WG}u) {
      let px = j % ${TP}u;
      let sl = (j / ${TP}u) % nch;
      let pl = j / (${TP}u * nch);
      var v = 0u;
      if (ow0 + px < p.OW) {
        let k0 = (s0 + sl) * p.G;
        for (var i = 0u; i < p.G; i++) {
          let k = k0 + i;
          if (k < p.K) {
            var cd = code(base0 + px * p.sw + koff[k]);
            ${bitSerial ? 'cd = (cd >> pl) & 1u;' : ''}
            v |= cd << (i * p.ib);
          }
        }
      }
      idx[(pl * ${CH}u + sl) * ${TP}u + px] = v;
    }
    workgroupBarrier();
    for (var px = 0u; px < ${TP}u; px++) {
      var sum = 0;
      for (var pl = 0u; pl < ${planes}u; pl++) {
        var part = 0;
        for (var sl = 0u; sl < nch; sl++) {
          part += tab[(sl * ${R}u + idx[(pl * ${CH}u + sl) * ${TP}u + px]) * ${WG}u + t];
        }
        sum += part << pl;
      }
      acc[px] += sum;
    }
    workgroupBarrier();
  }
${STORE('0')}
}`;
  return { code, CH };
}

/**
 * Direct int8 x code convolution with dot4I8Packed: codes are shifted to int8 (c - 128) and
 * 128 * sum(w) is added back at the end. Per chunk of KC tap quads the workgroup packs its 16
 * pixels' codes into u32 quads in workgroup memory; each invocation multiplies them with the
 * packed weights of its channel.
 */
export function directShader(builtinDot4: boolean): { code: string; KC: number } {
  const KC = 64;
  const dot = builtinDot4 ? 'dot4I8Packed(a, b)' : `
    dot(unpack4xI8(a), unpack4xI8(b))`;
  const code = `${PARAMS}
@group(0) @binding(2) var<storage, read> wq: array<u32>;
@group(0) @binding(6) var<storage, read> sumw: array<i32>;
var<workgroup> xq: array<u32, ${KC * TP}>;

fn dot4(a: u32, b: u32) -> i32 { return ${dot}; }

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
${TILE}
  for (var q0 = 0u; q0 < p.KQ; q0 += ${KC}u) {
    let nq = min(${KC}u, p.KQ - q0);
    for (var j = t; j < nq * ${TP}u; j += ${WG}u) {
      let px = j % ${TP}u;
      let q = j / ${TP}u;
      var v = 0u;
      if (ow0 + px < p.OW) {
        for (var i = 0u; i < 4u; i++) {
          let k = (q0 + q) * 4u + i;
          var cd = 0u;
          if (k < p.K) { cd = code(base0 + px * p.sw + koff[k]); }
          v |= ((cd ^ 0x80u) & 0xffu) << (i * 8u);
        }
      }
      xq[q * ${TP}u + px] = v;
    }
    workgroupBarrier();
    if (c < p.Og) {
      for (var q = 0u; q < nq; q++) {
        let w = wq[(gi * p.KQ + q0 + q) * p.OgPad + c];
        for (var px = 0u; px < ${TP}u; px++) { acc[px] += dot4(xq[q * ${TP}u + px], w); }
      }
    }
    workgroupBarrier();
  }
${STORE('128 * sumw[gi * p.Og + c]')}
}`;
  return { code, KC };
}

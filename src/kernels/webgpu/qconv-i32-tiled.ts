import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import { fusedActivation } from '../../ops/conv.js';
import { attrInt, type OpContext } from '../../ops/registry.js';
import { windowOf } from '../../ops/window.js';
import { INT32_MAX } from '../../conv/geometry.js';
import { activationQuant, layerQuant, requantRecord, takesCodes, weightsOf as cpuWeightsOf, type IntWeights } from '../wasm/int-conv.js';
import { activationParams, activationWgsl, convGemm, gemm, storeTileWgsl, type Gemm } from './gemm-f32-tiled.js';
import { f32, registerGpuKernel, type Arg, type GpuRun, type Meta } from './gpu.js';

/**
 * Convolutions and dense layers on activation codes on the GPU (a model run with activation bits,
 * `backend: 'webgpu'`): the tiled GEMM of gemm-f32-tiled.ts on integers. Its loader quantizes each
 * input value to its code as it reads it (c = clamp(round(x / scale) + zero, 0, 2^bits - 1)) and
 * multiplies (c - zero) by the layer's int8 per-channel weights with int32 sums, exact; padding reads
 * real 0, i.e. c = zero, so it adds nothing, as the CPU's padded codes do. The epilogue scales the
 * sums back: sum * scale * w_scale[o] + bias[o] - correction[o], then the fused activation.
 * Ranges: static (calibrated) from the record, else measured on the device per input (min/max
 * reduction, then scale and zero as activationQuant computes them). Non-uniform levels stay on the
 * CPU. Twin: the CPU's layers on codes (src/kernels/wasm/int-conv.ts): bit for bit with static
 * ranges (codes rounded as the CPU rounds them, see CODE, and the CPU's record); within a code step
 * with measured ranges (scale and zero formed on the device in float32).
 */

/** A layer's integer weights as the GPU kernels read them, beside the CPU's (the same integers, quantized once). */
export interface GpuWeights {
  /** The CPU's quantized weights (int8 [O][Cg][KH][KW], per-channel scales and sums of w). */
  int: IntWeights;
  /** The integers as int32, for the int32 GEMM. */
  q: Int32Array;
  /** Each output channel's sum of integer weights (exact in float32: at most 127 x K). */
  sums: Float32Array;
  /** Scale-back records and biases by range and bias/correction arrays (see perLayer). */
  records: Map<string, Float32Array>;
  /** The weights + 128 as unsigned bytes, four a word, rows of K4 words (made when the dot4 kernel first runs). */
  packed?: Uint32Array;
}

/** Rows of K weights as w + 128 in u8 lanes, each row padded to whole words (the padding meets code 0). */
function packedOf(w: GpuWeights, K: number): Uint32Array {
  if (!w.packed) {
    const rows = w.q.length / K, K4 = Math.ceil(K / 4), out = new Uint32Array(rows * K4);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < K4 * 4; k++) {
        const v = k < K ? w.q[r * K + k] + 128 : 128;
        out[r * K4 + (k >> 2)] |= v << (8 * (k & 3));
      }
    }
    w.packed = out;
  }
  return w.packed;
}

const gpuWeights = new WeakMap<IntWeights, GpuWeights>();

/** A constant weight's integers at `bits` (the CPU's cache, src/kernels/wasm/int-conv.ts), with what the GPU kernels add. */
export function weightsOf(w: Tensor, bits: number): GpuWeights {
  const int = cpuWeightsOf(w, true, bits);
  let g = gpuWeights.get(int);
  if (!g) gpuWeights.set(int, (g = { int, q: Int32Array.from(int.weight.data), sums: Float32Array.from(int.sums), records: new Map() }));
  return g;
}

const ids = new WeakMap<object, number>();
let nextId = 1;
const idOf = (o: object | undefined): number => {
  if (!o) return 0;
  if (!ids.has(o)) ids.set(o, nextId++);
  return ids.get(o)!;
};

/** A layer's per-channel host array, made once per weights and key (bias and correction arrays by identity). */
function perLayer(w: GpuWeights, key: string, make: () => Float32Array): Float32Array {
  let r = w.records.get(key);
  if (!r) w.records.set(key, (r = make()));
  return r;
}

/**
 * The CPU's own scale-back record for a static range (requantRecord: k[o] = scale * w_scale[o],
 * c[o] = bias[o] - correction[o] - zero * sum(w[o]) * k[o], formed in float64); the kernels then
 * compute float32(sum of codes x w) * k + c as the CPU does, so that layers on codes give the CPU's
 * outputs bit for bit where the codes agree.
 */
function recordFor(w: GpuWeights, scale: number, zero: number, bias: Float32Array | undefined, correction: ArrayLike<number> | undefined): Float32Array {
  return perLayer(w, `record/${scale}/${zero}/${idOf(bias)}/${idOf(correction as object | undefined)}`,
    () => requantRecord(w.int, scale, zero, bias, [-Infinity, Infinity], correction));
}

/** bias - correction per output channel (for ranges measured on the device). */
function biasMinusCorrection(w: GpuWeights, O: number, bias: Float32Array | undefined, correction: ArrayLike<number> | undefined): Float32Array {
  return perLayer(w, `bias/${idOf(bias)}/${idOf(correction as object | undefined)}`, () => {
    // A correction for another number of channels (a stale calibration) is not applied, as on the CPU.
    const corr = correction?.length === O ? correction : undefined;
    return Float32Array.from({ length: O }, (_, o) => (bias ? bias[o] : 0) - (corr ? corr[o] : 0));
  });
}

/**
 * WGSL: round_half_even(float32(x / s)), the code the CPU computes from its correctly rounded
 * quotient; WGSL's own division may be 2.5 ulp off, which flips codes on rounding edges, and one
 * flipped code changes a low-bit network's later layers. x * (1 / s) picks the candidate c; then
 * e = x - (c + 0.5) * s is formed exactly: s splits into a 12-bit head and its tail by a bit mask
 * (no arithmetic a compiler could contract), so (c + 0.5) * s = p1 + p2 with both products exact,
 * and x - p1 and the difference to p2 are exact where it matters (Sterbenz). Where |e| is within
 * half an ulp of c + 0.5 (times s) the float32 quotient is c + 0.5 itself: a tie, to even; else e's
 * sign decides. Checked against the CPU's rule on 935k values, rounding ties included.
 */
export const CODE = `fn code(x: f32, s: f32, inv: f32) -> f32 {
  let c = floor(x * inv);
  let h = c + 0.5;
  let sh = bitcast<f32>(bitcast<u32>(s) & 0xFFFFF000u);
  let sl = s - sh;
  let p1 = h * sh; let p2 = h * sl;
  let e = (x - p1) - p2;
  let m = s * ldexp(1.0, i32((bitcast<u32>(abs(h)) >> 23u) & 0xFFu) - 151);
  if (abs(e) <= m) { return select(c + 1.0, c, c - 2.0 * floor(c * 0.5) == 0.0); }
  return select(c, c + 1.0, e > 0.0);
}`;

export function codesSupport(ins: (Meta | undefined)[], node: Node, ctx: OpContext): boolean {
  const [x, w, b] = ins;
  const q = ctx.quant;
  if (!q || x?.dtype !== 'float32' || !w?.data || (b && !b.data) || !takesCodes(node, w as Tensor) || !(ctx.constant?.(w as Tensor) ?? false)) return false;
  const l = layerQuant(q, node);
  // An explicit kernel ('pcilt' or 'direct') asks for the single-layer WebGPU kernels (look-ups or dot4I8Packed), through the CPU path.
  // Non-uniform levels and ranges per input channel run through the CPU path too.
  if (!l.bits || l.levels || l.channelRanges || (q.kernel !== undefined && q.kernel !== 'auto')) return false;
  if (node.op === 'Conv' ? x.shape.length !== 4 : x.shape.length !== 2 || (b !== undefined && b.shape.length !== 1)) return false;
  // int32 sums: at most 2^bits - 1 times the largest sum of |w| over a channel.
  return weightsOf(w as Tensor, l.weightBits).int.maxAbsSum * ((1 << l.bits) - 1) <= INT32_MAX;
}

/** One workgroup: min and max of X0, then [scale, zero, top code] as activationQuant computes them. */
function measuredRange(run: GpuRun, x: GPUBuffer, n: number, bits: number): GPUBuffer {
  const out = run.alloc(16);
  run.dispatch('qrange-f32', () => `@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X0: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
var<workgroup> lo: array<f32, 256>;
var<workgroup> hi: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) l: u32) {
  var a = 3.402823e38; var b = -3.402823e38;
  for (var i = l; i < P[0]; i += 256u) { a = min(a, X0[i]); b = max(b, X0[i]); }
  lo[l] = a; hi[l] = b;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (l < s) { lo[l] = min(lo[l], lo[l + s]); hi[l] = max(hi[l], hi[l + s]); }
    workgroupBarrier();
  }
  if (l == 0u) {
    let L = bitcast<f32>(P[1]);
    let mn = min(lo[0], 0.0); let mx = max(hi[0], 0.0);
    let scale = select(1.0, (mx - mn) / L, mx > mn);
    Y[0] = scale; Y[1] = clamp(floor(-mn / scale + 0.5), 0.0, L); Y[2] = L; Y[3] = 1.0 / scale;
  }
}`, [n, f32((1 << bits) - 1)], [x, out], 1);
  return out;
}

/** What both variants need for one layer: its GEMM geometry, input on the device, range and scale-back. */
export function prepareCodes(ins: Arg[], node: Node, ctx: OpContext, run: GpuRun) {
  const q = ctx.quant!, l = layerQuant(q, node), L = (1 << l.bits) - 1;
  const xt = ins[0]!, wt = ins[1] as Tensor, bt = ins[2] as Tensor | undefined;
  const dense = node.op === 'Gemm';
  const w = weightsOf(wt, l.weightBits), O = wt.shape[0];
  const xShape = dense ? [xt.shape[0], xt.shape[1], 1, 1] : xt.shape;
  const wShape = dense ? [wt.shape[0], wt.shape[1], 1, 1] : wt.shape;
  const win = dense ? { out: [1, 1], strides: [1, 1], dilations: [1, 1], begin: [0, 0], end: [0, 0] } : windowOf(node, xt.shape, wt.shape.slice(2));
  const c = convGemm(xShape, wShape, win, dense ? 1 : attrInt(node, 'group', 1), false);
  const x = run.onDevice(xt);
  const bias = bt?.data as Float32Array | undefined, correction = q.biasCorrection?.[node.name];
  let qp: GPUBuffer, scaleBack: GPUBuffer[];
  if (l.range) {
    // Static range: the CPU's record; sums over every tap (padding reads the zero code) as the CPU forms them.
    const { scale, zero } = activationQuant(l.range, l.bits);
    qp = run.record([f32(Math.fround(scale)), f32(zero), f32(L), f32(Math.fround(1 / Math.fround(scale))), O]);
    scaleBack = [run.constantArray(recordFor(w, Math.fround(scale), zero, bias, correction)), run.constantArray(w.sums)];
  } else {
    // Measured range: scale and zero exist only on the device; the record is formed there (float32, not the CPU's float64).
    qp = measuredRange(run, x.buffer, sizeOf(xt.shape), l.bits);
    scaleBack = [run.constantArray(w.int.scales), run.constantArray(w.sums), run.constantArray(biasMinusCorrection(w, O, bias, correction))];
  }
  const y = run.tensor(dense ? [xt.shape[0], O] : c.out);
  const done = () => {
    if (!l.range) run.free(qp);
    q.choices?.set(node.name, { ...q.choices?.get(node.name), bits: l.bits, macs: sizeOf(y.shape) * (w.q.length / O) });
  };
  return { l, w, c, x, y, qp, scaleBack, done, static: l.range !== undefined, dense, win, xShape, wShape };
}

/** The scale-back of `full` (the sum of code x w over every tap) at output channel o, statically or with a measured range. */
export const scaleBackWgsl = (stat: boolean) => (stat
  ? 'var v = f32(full) * R[o] + R[bitcast<u32>(Q[4]) + o];'
  : 'var v = f32(full - i32(Q[1]) * i32(S[o])) * (Q[0] * R[o]) + T[o];');

for (const op of ['Conv', 'Gemm']) {
  registerGpuKernel({
    op, variant: 'codes-i32-gemm-tiled',
    supports: codesSupport,
    run(ins, node, ctx, run) {
      const p = prepareCodes(ins, node, ctx, run);
      const g: Gemm = {
        ...p.c.g,
        type: 'i32',
        more: p.static ? ['Q', 'R', 'S'] : ['Q', 'R', 'S', 'T'],
        helpers: `fn xAt(z: u32, k: u32, n: u32) -> f32 { ${p.c.g.loadB} }
${CODE}`,
        loadA: `return A[(z * p(14u) + m) * P[2] + k];`,
        loadB: 'return i32(clamp(code(xAt(z, k, n), Q[0], Q[3]) + Q[1], 0.0, Q[2]) - Q[1]);',
        // a sums (code - zero) x w over the taps: the zero code's share added back.
        epilogue: `let o = z * P[0] + m; let full = a + i32(Q[1]) * i32(S[o]); ${scaleBackWgsl(p.static)}`,
      };
      gemm(run, `${p.c.key}/${p.static ? 'static' : 'measured'}`, g, fusedActivation(node), p.c.dims, run.constantArray(p.w.q), p.x.buffer, undefined, p.y, [p.qp, ...p.scaleBack]);
      p.done();
      return [p.y];
    },
  });

  /**
   * The same layer with dot4U8Packed: codes packed four a word as they are read, weights + 128 as
   * unsigned bytes; sum(code x w) = dot(code, w + 128) - 128 x sum(code), both exact in 32 bits.
   * Where the adapter has the packed dot product and K x 255 x 255 fits 31 bits.
   */
  registerGpuKernel({
    op, variant: 'codes-dot4-gemm-tiled',
    supports: (ins, node, ctx) => (ctx.device?.dot4 ?? false) && codesSupport(ins, node, ctx)
      && (node.op === 'Gemm' ? ins[1]!.shape[1] : sizeOf(ins[1]!.shape.slice(1))) * 255 * 255 < 2 ** 31,
    run(ins, node, ctx, run) {
      const p = prepareCodes(ins, node, ctx, run), act = fusedActivation(node), g = p.c.g;
      const K = p.c.dims.K;
      // The static record needs no channel sums here (the full sums come out of the dot products).
      const more = p.static ? ['Q', 'R'] : ['Q', 'R', 'S', 'T'], scaleBack = p.static ? p.scaleBack.slice(0, 1) : p.scaleBack;
      const code = () => `@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> A: array<u32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
${more.map((n, i) => `@group(0) @binding(${3 + i}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${3 + more.length}) var<storage, read_write> Y: array<f32>;
var<workgroup> As: array<u32, 256>;
var<workgroup> Bs: array<u32, 256>;
fn p(i: u32) -> u32 { return P[7u + i]; }
fn xAt(z: u32, k: u32, n: u32) -> f32 { ${g.loadB} }
fn outIndex(z: u32, m: u32, n: u32) -> u32 { ${g.outIndex} }
${CODE}
fn codeAt(z: u32, k: u32, n: u32) -> u32 {
  if (k >= P[2]) { return 0u; }
  return u32(clamp(code(xAt(z, k, n), Q[0], Q[3]) + Q[1], 0.0, Q[2]));
}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = P[0]; let N = P[1]; let K4 = (P[2] + 3u) / 4u;
  let act0 = bitcast<f32>(P[3]); let act1 = bitcast<f32>(P[4]);
  let z = wg.z; let m0 = wg.y * 64u; let n0 = wg.x * 64u;
  var acc: array<i32, 16>;
  var csum: array<u32, 4>;
  for (var w0 = 0u; w0 < K4; w0 += 4u) {
    let kk = li % 4u; let rr = li / 4u;
    var a = 0u;
    if (m0 + rr < M && w0 + kk < K4) { a = A[(z * M + m0 + rr) * K4 + w0 + kk]; }
    As[kk * 64u + rr] = a;
    var b = 0u;
    if (n0 + rr < N && w0 + kk < K4) {
      let k = (w0 + kk) * 4u; let n = n0 + rr;
      b = codeAt(z, k, n) | (codeAt(z, k + 1u, n) << 8u) | (codeAt(z, k + 2u, n) << 16u) | (codeAt(z, k + 3u, n) << 24u);
    }
    Bs[kk * 64u + rr] = b;
    workgroupBarrier();
    for (var k = 0u; k < 4u; k++) {
      for (var j = 0u; j < 4u; j++) {
        let bw = Bs[k * 64u + l.x * 4u + j];
        csum[j] += dot4U8Packed(bw, 0x01010101u);
        for (var i = 0u; i < 4u; i++) { acc[i * 4u + j] += i32(dot4U8Packed(As[k * 64u + l.y * 4u + i], bw)); }
      }
    }
    workgroupBarrier();
  }
  ${storeTileWgsl(`let o = z * M + m; let full = acc[i * 4u + j] - 128 * i32(csum[j]); ${scaleBackWgsl(p.static)}`, activationWgsl(act))}
}`;
      const words = [p.c.dims.M, p.c.dims.N, K, ...activationParams(act), f32(1), f32(1), ...g.extra];
      run.dispatch(`codes-dot4/${p.c.key}/${p.static ? 'static' : 'measured'}/${act.kind}`, code, words,
        [run.constantArray(packedOf(p.w, K)), p.x.buffer, p.qp, ...scaleBack, p.y.buffer], [Math.ceil(p.c.dims.N / 64), Math.ceil(p.c.dims.M / 64), p.c.dims.Z]);
      p.done();
      return [p.y];
    },
  });
}

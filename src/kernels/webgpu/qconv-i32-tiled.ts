import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import { fusedActivation } from '../../ops/conv.js';
import { attrInt, type OpContext } from '../../ops/registry.js';
import { windowOf } from '../../ops/window.js';
import { INT32_MAX } from '../../conv/geometry.js';
import { activationQuant, layerQuant, quantizePerChannel, takesCodes } from '../wasm/int-conv.js';
import { convGemm, gemm, type Gemm } from './gemm-f32-tiled.js';
import { f32, registerGpuKernel, type GpuRun, type Meta } from './gpu.js';

/**
 * Convolutions and dense layers on activation codes on the GPU (a model run with activation bits,
 * `backend: 'webgpu'`): the tiled GEMM of gemm-f32-tiled.ts on integers. Its loader quantizes each
 * input value to its code as it reads it (c = clamp(round(x / scale) + zero, 0, 2^bits - 1)) and
 * multiplies (c - zero) by the layer's int8 per-channel weights with int32 sums, exact; padding reads
 * real 0, i.e. c = zero, so it adds nothing, as the CPU's padded codes do. The epilogue scales the
 * sums back: sum * scale * w_scale[o] + bias[o] - correction[o], then the fused activation.
 * Ranges: static (calibrated) from the record, else measured on the device per input (min/max
 * reduction, then scale and zero as activationQuant computes them). Non-uniform levels stay on the
 * CPU. Twin: the CPU's layers on codes (src/kernels/wasm/int-conv.ts), within float tolerance (the
 * division x / scale is not correctly rounded in WGSL, so a value on a rounding edge may take the
 * neighbouring code).
 */

interface GpuWeights {
  q: Int32Array; scales: Float32Array; maxAbsSum: number;
  /** Each output channel's sum of integer weights (exact in float32: at most 127 x K). */
  sums: Float32Array;
  bc: WeakMap<object, WeakMap<object, Float32Array>>;
  /** Static-range scale-back records [k | c] by range and bias/correction arrays. */
  records: Map<string, Float32Array>;
}
const weights = new WeakMap<Float32Array, Map<number, GpuWeights>>();

function weightsOf(w: Tensor, bits: number): GpuWeights {
  const data = w.data as Float32Array;
  let had = weights.get(data)?.get(bits);
  if (!had) {
    const { q, scales, maxAbsSum, sums } = quantizePerChannel(data, w.shape[0], 2 ** (bits - 1) - 1);
    had = { q: Int32Array.from(q), scales, maxAbsSum, sums: Float32Array.from(sums), bc: new WeakMap(), records: new Map() };
    weights.set(data, (weights.get(data) ?? new Map()).set(bits, had));
  }
  return had;
}

const NO_BIAS = {};
const ids = new WeakMap<object, number>();
let nextId = 1;
const idOf = (o: object | undefined): number => {
  if (!o) return 0;
  if (!ids.has(o)) ids.set(o, nextId++);
  return ids.get(o)!;
};

/**
 * The CPU's scale-back record for a static range: k[o] = scale * w_scale[o] and
 * c[o] = bias[o] - correction[o] - zero * sum(w[o]) * k[o], in float64 and then float32, as
 * requantRecord computes them; the kernel then computes float32(sum of codes x w) * k + c as the
 * CPU does, so that layers on codes give the CPU's outputs bit for bit where the codes agree.
 */
function recordFor(w: GpuWeights, scale: number, zero: number, bias: Float32Array | undefined, correction: ArrayLike<number> | undefined): Float32Array {
  const key = `${scale}/${zero}/${idOf(bias)}/${idOf(correction as object | undefined)}`;
  let r = w.records.get(key);
  if (!r) {
    const O = w.scales.length;
    const corr = correction?.length === O ? correction : undefined;
    r = new Float32Array(2 * O);
    for (let o = 0; o < O; o++) {
      const k = scale * w.scales[o];
      r[o] = k;
      r[O + o] = (bias ? bias[o] : 0) - (corr ? corr[o] : 0) - zero * w.sums[o] * k;
    }
    w.records.set(key, r);
  }
  return r;
}

/** bias - correction per output channel, once per weights, bias and correction arrays. */
function biasMinusCorrection(w: GpuWeights, O: number, bias: Float32Array | undefined, correction: ArrayLike<number> | undefined): Float32Array {
  const key = bias ?? NO_BIAS;
  let byCorr = w.bc.get(key);
  if (!byCorr) w.bc.set(key, (byCorr = new WeakMap()));
  const ck = (correction as object | undefined) ?? NO_BIAS;
  let v = byCorr.get(ck);
  if (!v) {
    // A correction for another number of channels (a stale calibration) is not applied, as on the CPU.
    const corr = correction?.length === O ? correction : undefined;
    v = Float32Array.from({ length: O }, (_, o) => (bias ? bias[o] : 0) - (corr ? corr[o] : 0));
    byCorr.set(ck, v);
  }
  return v;
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
const CODE = `fn code(x: f32, s: f32, inv: f32) -> f32 {
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

function supports(ins: (Meta | undefined)[], node: Node, ctx: OpContext): boolean {
  const [x, w, b] = ins;
  const q = ctx.quant;
  if (!q || x?.dtype !== 'float32' || !w?.data || (b && !b.data) || !takesCodes(node, w as Tensor) || !(ctx.constant?.(w as Tensor) ?? false)) return false;
  const l = layerQuant(q, node);
  // An explicit kernel ('pcilt' or 'direct') asks for the single-layer WebGPU kernels (look-ups or dot4I8Packed), through the CPU path.
  if (!l.bits || l.levels || (q.kernel !== undefined && q.kernel !== 'auto')) return false;
  if (node.op === 'Conv' ? x.shape.length !== 4 : x.shape.length !== 2 || (b !== undefined && b.shape.length !== 1)) return false;
  // int32 sums: at most 2^bits - 1 times the largest sum of |w| over a channel.
  return weightsOf(w as Tensor, l.weightBits).maxAbsSum * ((1 << l.bits) - 1) <= INT32_MAX;
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

for (const op of ['Conv', 'Gemm']) {
  registerGpuKernel({
    op, variant: 'codes-i32-gemm-tiled',
    supports,
    run(ins, node, ctx, run) {
      const q = ctx.quant!, l = layerQuant(q, node), L = (1 << l.bits) - 1;
      const xt = ins[0]!, wt = ins[1] as Tensor, bt = ins[2] as Tensor | undefined;
      const dense = node.op === 'Gemm';
      const w = weightsOf(wt, l.weightBits), O = wt.shape[0];
      const xShape = dense ? [xt.shape[0], xt.shape[1], 1, 1] : xt.shape;
      const wShape = dense ? [wt.shape[0], wt.shape[1], 1, 1] : wt.shape;
      const win = dense ? { out: [1, 1], strides: [1, 1], dilations: [1, 1], begin: [0, 0], end: [0, 0] } : windowOf(node, xt.shape, wt.shape.slice(2));
      const c = convGemm(xShape, wShape, win, dense ? 1 : attrInt(node, 'group', 1), false);
      const x = run.onDevice(xt, !('gpu' in xt) && (ctx.constant?.(xt) ?? false));
      const bias = bt?.data as Float32Array | undefined, correction = q.biasCorrection?.[node.name];
      let qp: GPUBuffer, more: GPUBuffer[], epilogue: string;
      if (l.range) {
        // Static range: the CPU's record; the sum over every tap (padding reads the zero code) as the CPU forms it.
        const { scale, zero } = activationQuant(l.range, l.bits);
        qp = run.record([f32(Math.fround(scale)), f32(zero), f32(L), f32(Math.fround(1 / Math.fround(scale))), O]);
        more = [qp, run.constantArray(recordFor(w, Math.fround(scale), zero, bias, correction)), run.constantArray(w.sums)];
        epilogue = 'let o = z * P[0] + m; let full = a + i32(Q[1]) * i32(S[o]); var v = f32(full) * R[o] + R[bitcast<u32>(Q[4]) + o];';
      } else {
        // Measured range: scale and zero exist only on the device; the record is formed there (float32, not the CPU's float64).
        qp = measuredRange(run, x.buffer, sizeOf(xt.shape), l.bits);
        more = [qp, run.constantArray(w.scales), run.constantArray(biasMinusCorrection(w, O, bias, correction))];
        epilogue = 'let o = z * P[0] + m; var v = f32(a) * (Q[0] * R[o]) + S[o];';
      }
      const g: Gemm = {
        ...c.g,
        type: 'i32',
        more: ['Q', 'R', 'S'],
        helpers: `fn xAt(z: u32, k: u32, n: u32) -> f32 { ${c.g.loadB} }
${CODE}`,
        loadA: `return A[(z * p(14u) + m) * P[2] + k];`,
        loadB: 'return i32(clamp(code(xAt(z, k, n), Q[0], Q[3]) + Q[1], 0.0, Q[2]) - Q[1]);',
        epilogue,
      };
      const y = run.tensor(dense ? [xt.shape[0], O] : c.out);
      gemm(run, `${c.key}/${l.range ? 'static' : 'measured'}`, g, fusedActivation(node), c.dims, run.constantArray(w.q), x.buffer, undefined, y, more);
      if (!l.range) run.free(qp);
      q.choices?.set(node.name, { kernel: 'webgpu:codes-i32-gemm-tiled', bits: l.bits, macs: sizeOf(y.shape) * (w.q.length / O) });
      return [y];
    },
  });
}

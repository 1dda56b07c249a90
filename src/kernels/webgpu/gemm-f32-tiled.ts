import type { Node } from '../../ir/graph.js';
import { sizeOf, type Tensor } from '../../ir/tensor.js';
import { fusedActivation, type FusedActivation } from '../../ops/conv.js';
import { attrFloat, attrInt, type OpContext } from '../../ops/registry.js';
import { windowOf } from '../../ops/window.js';
import { takesCodes } from '../wasm/int-conv.js';
import { isF32, f32, registerGpuKernel, type GpuRun, type GpuTensor, type Meta } from './gpu.js';

/**
 * Float32 products on the GPU as one tiled GEMM: Conv (im2col read on the fly, one GEMM per group
 * along z), Gemm and MatMul. A workgroup of 16 x 16 invocations computes a 64 x 64 tile of C, each
 * invocation 4 x 4 of it; the K dimension goes through workgroup memory 16 at a time. The row
 * operand (A: weights for Conv) and the column operand (B: the input's receptive fields) are read
 * by generated functions, and the epilogue adds bias, scales and applies the fused activation.
 * Twins: the reference Conv, Gemm and MatMul (src/ops).
 */

const TILE = 64, TK = 16;

/** WGSL for a fused activation of `v` (parameters act0, act1 from the record). */
export function activationWgsl(a: FusedActivation): string {
  switch (a.kind) {
    case 'relu': return 'max(v, 0.0)';
    case 'clip': return 'clamp(v, act0, act1)';
    case 'leaky': return 'select(v * act0, v, v >= 0.0)';
    case 'sigmoid': return '1.0 / (1.0 + exp(-v))';
    case 'hardswish': return 'v * clamp(v / 6.0 + 0.5, 0.0, 1.0)';
    case 'tanh': return 'tanh(clamp(v, -15.0, 15.0))';
    case 'silu': return 'v / (1.0 + exp(-v))';
    default: return 'v';
  }
}

/** The two float parameters an activation reads (act0, act1). */
export function activationParams(a: FusedActivation): [number, number] {
  return a.kind === 'clip' ? [f32(Math.max(a.min, -3.4e38)), f32(Math.min(a.max, 3.4e38))] : [f32(a.alpha), 0];
}

export interface Gemm {
  /** Record words after the fixed ones (M, N, K, act0, act1, alpha, beta); read as P[7 + i]. */
  extra: number[];
  /** WGSL bodies: loadA(z, m, k) and loadB(z, k, n) (called in range only), outIndex(z, m, n), biasAt(z, m, n). */
  loadA: string;
  loadB: string;
  outIndex: string;
  /** Absent: no bias binding. */
  biasAt?: string;
  /** 'i32': the tiles and sums are integers (layers on activation codes; A then holds int32 weights). Default f32. */
  type?: 'f32' | 'i32';
  /** More read-only f32 bindings after the bias (their names), read by the loaders and the epilogue. */
  more?: string[];
  /** WGSL: the output value v from the sum a at (z, m, n) before the activation; default alpha * a (+ beta * bias). */
  epilogue?: string;
  /** More WGSL functions the loaders call. */
  helpers?: string;
}

/**
 * WGSL: an invocation's 4 x 4 outputs of its tile (rows m0 + 4 l.y + i, columns n0 + 4 l.x + j), each
 * computed by `value` (statements that define v from i, j, m, n), activated and stored.
 */
export function storeTileWgsl(value: string, act: string): string {
  return `for (var i = 0u; i < 4u; i++) {
    let m = m0 + l.y * 4u + i;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + l.x * 4u + j;
      if (n >= N) { continue; }
      ${value}
      Y[outIndex(z, m, n)] = ${act};
    }
  }`;
}

function shader(g: Gemm, act: string): string {
  const bias = g.biasAt !== undefined, t = g.type ?? 'f32', more = g.more ?? [];
  const names = [...(bias ? ['Bias'] : []), ...more];
  const epilogue = g.epilogue ?? `var v = alpha * a;${bias ? ' v += beta * biasAt(z, m, n);' : ''}`;
  return `
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> A: array<${t}>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
${names.map((n, i) => `@group(0) @binding(${3 + i}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${3 + names.length}) var<storage, read_write> Y: array<f32>;
var<workgroup> As: array<${t}, ${TK * TILE}>;
var<workgroup> Bs: array<${t}, ${TK * TILE}>;
fn p(i: u32) -> u32 { return P[7u + i]; }
fn loadA(z: u32, m: u32, k: u32) -> ${t} { ${g.loadA} }
fn loadB(z: u32, k: u32, n: u32) -> ${t} { ${g.loadB} }
fn outIndex(z: u32, m: u32, n: u32) -> u32 { ${g.outIndex} }
${bias ? `fn biasAt(z: u32, m: u32, n: u32) -> f32 { ${g.biasAt} }` : ''}
fn epilogue(z: u32, m: u32, n: u32, a: ${t}, alpha: f32, beta: f32) -> f32 { ${epilogue} return v; }
${g.helpers ?? ''}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = P[0]; let N = P[1]; let K = P[2];
  let act0 = bitcast<f32>(P[3]); let act1 = bitcast<f32>(P[4]);
  let alpha = bitcast<f32>(P[5]); let beta = bitcast<f32>(P[6]);
  let z = wg.z; let m0 = wg.y * ${TILE}u; let n0 = wg.x * ${TILE}u;
  var acc: array<${t}, 16>;
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    for (var r = 0u; r < 4u; r++) {
      let e = li + r * 256u;
      // A along k (rows of the weights are contiguous), B along n (pixels are).
      let ka = e % ${TK}u; let ma = e / ${TK}u;
      var a = ${t}(0);
      if (m0 + ma < M && k0 + ka < K) { a = loadA(z, m0 + ma, k0 + ka); }
      As[ka * ${TILE}u + ma] = a;
      let kb = e / ${TILE}u; let nb = e % ${TILE}u;
      var b = ${t}(0);
      if (n0 + nb < N && k0 + kb < K) { b = loadB(z, k0 + kb, n0 + nb); }
      Bs[kb * ${TILE}u + nb] = b;
    }
    workgroupBarrier();
    for (var k = 0u; k < ${TK}u; k++) {
      let a = vec4<${t}>(As[k * ${TILE}u + l.y * 4u], As[k * ${TILE}u + l.y * 4u + 1u], As[k * ${TILE}u + l.y * 4u + 2u], As[k * ${TILE}u + l.y * 4u + 3u]);
      let b = vec4<${t}>(Bs[k * ${TILE}u + l.x * 4u], Bs[k * ${TILE}u + l.x * 4u + 1u], Bs[k * ${TILE}u + l.x * 4u + 2u], Bs[k * ${TILE}u + l.x * 4u + 3u]);
      for (var i = 0u; i < 4u; i++) {
        acc[i * 4u] += a[i] * b.x; acc[i * 4u + 1u] += a[i] * b.y; acc[i * 4u + 2u] += a[i] * b.z; acc[i * 4u + 3u] += a[i] * b.w;
      }
    }
    workgroupBarrier();
  }
  ${storeTileWgsl('let v = epilogue(z, m, n, acc[i * 4u + j], alpha, beta);', act)}
}`;
}

/** One tiled GEMM dispatch; `more`: the buffers of g.more, in order. */
export function gemm(run: GpuRun, key: string, g: Gemm, act: FusedActivation, dims: { M: number; N: number; K: number; Z: number; alpha?: number; beta?: number },
  a: GPUBuffer, b: GPUBuffer, bias: GPUBuffer | undefined, out: GpuTensor, more: GPUBuffer[] = []): void {
  const words = [dims.M, dims.N, dims.K, ...activationParams(act), f32(dims.alpha ?? 1), f32(dims.beta ?? 1), ...g.extra];
  run.dispatch(`gemm-${g.type ?? 'f32'}/${key}/${act.kind}/${bias ? 'b' : ''}`, () => shader(g, activationWgsl(act)), words,
    [a, b, ...(bias ? [bias] : []), ...more, out.buffer], [Math.ceil(dims.N / TILE), Math.ceil(dims.M / TILE), dims.Z]);
}


/** Where Conv runs as a GEMM: 2-d, any groups, strides, dilations and padding; depthwise layers go to their own kernel. */
function convSupports(ins: (Meta | undefined)[], node: Node): boolean {
  const [x, w, b] = ins;
  if (!isF32(x) || !isF32(w) || (b && !isF32(b)) || x!.shape.length !== 4 || w!.shape.length !== 4) return false;
  const groups = attrInt(node, 'group', 1);
  return !(w!.shape[1] === 1 && groups > 1);
}

/**
 * A 2-d convolution [N, C, H, W] x [O, C/groups, KH, KW] as GEMMs over (z = group, m = output channel
 * of the group, n = output pixel): the record words, the loaders (im2col read on the fly; a plain read
 * for 1x1 without stride or padding) and the output's shape. Dense layers are 1x1 convolutions of [N, K, 1, 1].
 */
export function convGemm(xShape: number[], wShape: number[], win: { out: number[]; strides: number[]; dilations: number[]; begin: number[]; end: number[] }, groups: number, bias: boolean)
  : { g: Gemm; dims: { M: number; N: number; K: number; Z: number }; out: number[]; key: string } {
  const [Nb, C, H, W] = xShape, [O, Cg, KH, KW] = wShape, Og = O / groups;
  const [OH, OW] = win.out;
  const pointwise = KH === 1 && KW === 1 && win.strides.every((s) => s === 1) && win.begin.every((p) => p === 0) && win.end.every((p) => p === 0);
  const g: Gemm = {
    // extra: C, H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, Cg, Og
    extra: [C, H, W, OH, OW, KH, KW, win.strides[0], win.strides[1], win.dilations[0], win.dilations[1], win.begin[0], win.begin[1], Cg, Og],
    loadA: `return A[(z * p(14u) + m) * P[2] + k];`,
    loadB: pointwise
      ? `let hw = p(3u) * p(4u); let bn = n / hw; return B[(bn * p(0u) + z * p(13u) + k) * hw + n % hw];`
      : `let ohw = p(3u) * p(4u); let bn = n / ohw; let q = n % ohw; let oy = q / p(4u); let ox = q % p(4u);
         let kk = p(5u) * p(6u); let c = k / kk; let r = k % kk; let ky = r / p(6u); let kx = r % p(6u);
         let iy = i32(oy * p(7u) + ky * p(9u)) - i32(p(11u)); let ix = i32(ox * p(8u) + kx * p(10u)) - i32(p(12u));
         if (iy < 0 || ix < 0 || iy >= i32(p(1u)) || ix >= i32(p(2u))) { return 0.0; }
         return B[((bn * p(0u) + z * p(13u) + c) * p(1u) + u32(iy)) * p(2u) + u32(ix)];`,
    outIndex: `let ohw = p(3u) * p(4u); return ((n / ohw) * (P[0] * ${groups}u) + z * P[0] + m) * ohw + n % ohw;`,
    biasAt: bias ? 'return Bias[z * P[0] + m];' : undefined,
  };
  return { g, dims: { M: Og, N: Nb * OH * OW, K: Cg * KH * KW, Z: groups }, out: [Nb, O, OH, OW], key: `conv/${pointwise ? '1x1' : 'im2col'}/g${groups}` };
}

registerGpuKernel({
  op: 'Conv', variant: 'f32-gemm-tiled',
  supports: (ins, node, ctx) => convSupports(ins, node) && !quantized(node, ctx, ins[1]),
  run(ins, node, _ctx, run) {
    const xt = ins[0]!, wt = ins[1]!, bt = ins[2];
    const groups = attrInt(node, 'group', 1);
    const c = convGemm(xt.shape, wt.shape, windowOf(node, xt.shape, wt.shape.slice(2)), groups, bt !== undefined);
    const x = run.onDevice(xt), w = run.onDevice(wt), b = bt && run.onDevice(bt);
    const y = run.tensor(c.out);
    gemm(run, c.key, c.g, fusedActivation(node), c.dims, w.buffer, x.buffer, b?.buffer, y);
    return [y];
  },
});

/** Whether the CPU path would run this layer on activation codes (then the kernels on codes take it, or the CPU). */
export function quantized(node: Node, ctx: OpContext, w: Meta | undefined): boolean {
  const q = ctx.quant;
  return Boolean(q && (q.layers?.[node.name]?.bits ?? q.bits ?? 0) > 0 && w && takesCodes(node, w as Tensor));
}

registerGpuKernel({
  op: 'Gemm', variant: 'f32-gemm-tiled',
  supports: (ins, node, ctx) => {
    const [a, b, c] = ins;
    if (!isF32(a) || !isF32(b) || a!.shape.length !== 2 || b!.shape.length !== 2 || quantized(node, ctx, b)) return false;
    if (!c) return true;
    const M = attrInt(node, 'transA', 0) ? a!.shape[1] : a!.shape[0], N = attrInt(node, 'transB', 0) ? b!.shape[0] : b!.shape[1];
    return isF32(c) && c.shape.length <= 2 && broadcastsTo(c.shape, M, N);
  },
  run(ins, node, _ctx, run) {
    const at = ins[0]!, bt = ins[1]!, ct = ins[2];
    const tA = attrInt(node, 'transA', 0), tB = attrInt(node, 'transB', 0);
    const M = tA ? at.shape[1] : at.shape[0], K = tA ? at.shape[0] : at.shape[1], N = tB ? bt.shape[0] : bt.shape[1];
    const a = run.onDevice(at), b = run.onDevice(bt), c = ct && run.onDevice(ct);
    const y = run.tensor([M, N]);
    const cs = ct ? biasStrides(ct.shape, M, N) : [0, 0];
    const g: Gemm = {
      extra: [tA, tB, cs[0], cs[1]],
      loadA: tA ? 'return A[k * P[0] + m];' : 'return A[m * P[2] + k];',
      loadB: tB ? 'return B[n * P[2] + k];' : 'return B[k * P[1] + n];',
      outIndex: 'return m * P[1] + n;',
      biasAt: c ? 'return Bias[m * p(2u) + n * p(3u)];' : undefined,
    };
    gemm(run, `gemm/${tA}${tB}`, g, fusedActivation(node), { M, N, K, Z: 1, alpha: attrFloat(node, 'alpha', 1), beta: attrFloat(node, 'beta', 1) }, a.buffer, b.buffer, c?.buffer, y);
    return [y];
  },
});

function broadcastsTo(s: number[], M: number, N: number): boolean {
  const full = [...new Array(2 - s.length).fill(1), ...s];
  return (full[0] === 1 || full[0] === M) && (full[1] === 1 || full[1] === N);
}

/** Element strides of a bias broadcast to [M, N] (0 along a broadcast axis). */
function biasStrides(s: number[], M: number, N: number): [number, number] {
  const full = [...new Array(2 - s.length).fill(1), ...s];
  return [full[0] === M && M > 1 ? full[1] : 0, full[1] === N && N > 1 ? 1 : 0];
}

/** MatMul of [..., M, K] by a 2-d [K, N] (with the optimizer's fused bias of N values) or by [..., K, N] with the same leading dims. */
registerGpuKernel({
  op: 'MatMul', variant: 'f32-gemm-tiled',
  supports: (ins) => {
    const [a, b, c] = ins;
    if (!isF32(a) || !isF32(b) || a!.shape.length < 2 || b!.shape.length < 2) return false;
    const ra = a!.shape.length, rb = b!.shape.length;
    if (a!.shape[ra - 1] !== b!.shape[rb - 2]) return false;
    if (c) return rb === 2 && isF32(c) && sizeOf(c.shape) === b!.shape[1];
    return rb === 2 || (ra === rb && a!.shape.slice(0, -2).every((d, i) => d === b!.shape[i]));
  },
  run(ins, _node, _ctx, run) {
    const at = ins[0]!, bt = ins[1]!, ct = ins[2];
    const ra = at.shape.length, rb = bt.shape.length;
    const M = at.shape[ra - 2], K = at.shape[ra - 1], N = bt.shape[rb - 1];
    const Z = sizeOf(at.shape.slice(0, -2));
    const a = run.onDevice(at), b = run.onDevice(bt), c = ct && run.onDevice(ct);
    const y = run.tensor([...at.shape.slice(0, -1), N]);
    const g: Gemm = {
      extra: [rb === 2 ? 0 : K * N],
      loadA: 'return A[(z * P[0] + m) * P[2] + k];',
      loadB: 'return B[z * p(0u) + k * P[1] + n];',
      outIndex: 'return (z * P[0] + m) * P[1] + n;',
      biasAt: c ? 'return Bias[n];' : undefined,
    };
    gemm(run, 'matmul', g, { kind: 'none', min: 0, max: 0, alpha: 0 }, { M, N, K, Z }, a.buffer, b.buffer, c?.buffer, y);
    return [y];
  },
});

import { paddedPlanes, pciltSteps, pciltSupport } from '../../backends/webgpu/backend.js';
import { convGeometry } from '../../conv/geometry.js';
import { fusedActivation } from '../../ops/conv.js';
import { layerQuant } from '../wasm/int-conv.js';
import { buildPcilt, type PciltTables } from '../../tables/pcilt.js';
import type { Tensor } from '../../ir/tensor.js';
import { activationParams, activationWgsl } from './gemm-f32-tiled.js';
import { CODE, codesSupport, prepareCodes, scaleBackWgsl, weightsOf, type GpuWeights } from './qconv-i32-tiled.js';
import { registerGpuKernel, WG } from './gpu.js';

/**
 * Layers on codes by table look-ups on the GPU (`webgpu:codes-pcilt`): the input is quantized and
 * padded with the zero code on the device (codes as bytes), the single-layer PCILT kernel's index
 * and look-up passes (src/backends/webgpu/backend.ts: bit-serial tables of 32 entries,
 * int16 entries two channels a word) add the tables' entries into int32 sums over every tap, and a
 * last pass scales them back as the other variants do. The executor measures it against them per
 * layer. Twin: the CPU's layers on codes, bit for bit with calibrated ranges.
 */

/** GPU tables per weights and width: bit-serial, 5 activations an index (32 entries), or null where the kernel refuses them. */
const tables = new WeakMap<GpuWeights, Map<number, PciltTables | null>>();
function tablesFor(w: GpuWeights, bits: number): PciltTables | null {
  const byBits = tables.get(w) ?? new Map<number, PciltTables | null>();
  tables.set(w, byBits);
  if (!byBits.has(bits)) {
    const t = buildPcilt(w.int.weight, { activationBits: bits, backend: 'webgpu' });
    byBits.set(bits, pciltSupport(t) === null ? t : null);
  }
  return byBits.get(bits)!;
}

/** Widest codes the look-up variant is measured for. */
const MAX_BITS = 2;

for (const op of ['Conv', 'Gemm']) {
  registerGpuKernel({
    op, variant: 'codes-pcilt',
    supports: (ins, node, ctx) => {
      if (!codesSupport(ins, node, ctx)) return false;
      const l = layerQuant(ctx.quant, node);
      // A candidate at 1 and 2 bits only: each extra bit costs look-ups a whole plane while the
      // multiplying kernels cost the same at every width (on an H100 the look-ups lost from 2 bits on,
      // docs/perf-notes.md section 25), and each layer shape compiles a pass of its own.
      if (l.bits > MAX_BITS) return false;
      return tablesFor(weightsOf(ins[1] as Tensor, l.weightBits), l.bits) !== null;
    },
    run(ins, node, ctx, run) {
      const p = prepareCodes(ins, node, ctx, run), act = fusedActivation(node);
      const t = tablesFor(p.w, p.l.bits)!;
      const g = convGeometry(p.xShape as [number, number, number, number], p.wShape as [number, number, number, number], {
        padding: [p.win.begin[0], p.win.begin[1], p.win.end[0], p.win.end[1]], stride: [p.win.strides[0], p.win.strides[1]],
        dilation: [p.win.dilations[0], p.win.dilations[1]], groups: p.c.dims.Z,
      });
      // Codes, padded with the zero code, as bytes in planes of Hp x Wp (and 4 bytes of slack).
      const { Hp, Wp } = paddedPlanes(g);
      const bytes = g.N * g.C * Hp * Wp, words = Math.ceil((bytes + 4) / 4);
      const codes = run.alloc(words * 4);
      run.dispatch('codes-pad', () => `@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X0: array<f32>;
@group(0) @binding(2) var<storage, read> Q: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<u32>;
${CODE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wgId: vec3<u32>, @builtin(num_workgroups) wgCount: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wgId.y * wgCount.x + wgId.x) * ${WG}u + lid;
  if (i >= P[0]) { return; }
  let H = P[2]; let W = P[3]; let Hp = P[4]; let Wp = P[5]; let pt = i32(P[6]); let pl = i32(P[7]);
  let zero = u32(Q[1]);
  var word = 0u;
  for (var b = 0u; b < 4u; b++) {
    let at = i * 4u + b;
    if (at >= P[1]) { break; }
    let plane = at / (Hp * Wp); let r = at % (Hp * Wp);
    let y = i32(r / Wp) - pt; let x = i32(r % Wp) - pl;
    var c = zero;
    if (y >= 0 && y < i32(H) && x >= 0 && x < i32(W)) {
      c = u32(clamp(code(X0[(plane * H + u32(y)) * W + u32(x)], Q[0], Q[3]) + Q[1], 0.0, Q[2]));
    }
    word |= c << (8u * b);
  }
  Y[i] = word;
}`, [words, bytes, g.H, g.W, Hp, Wp, g.padT, g.padL], [p.x.buffer, p.qp, codes], Math.ceil(words / WG));
      const pre = pciltSteps(run.ctx, t, g, codes, undefined);
      for (const s of pre.steps) run.encode(s);
      for (const b of pre.temps) run.temp(b);
      // Scale-back of the sums over every tap (the padding's zero codes included), as the other variants do.
      const n = g.N * g.O * g.OH * g.OW;
      const more = p.static ? ['R'] : ['R', 'S', 'T'], scaleBack = p.static ? p.scaleBack.slice(0, 1) : p.scaleBack;
      run.dispatch(`codes-scaleback/${p.static ? 'static' : 'measured'}/${act.kind}`, () => `@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> A: array<i32>;
@group(0) @binding(2) var<storage, read> Q: array<f32>;
${more.map((m, i) => `@group(0) @binding(${3 + i}) var<storage, read> ${m}: array<f32>;`).join('\n')}
@group(0) @binding(${3 + more.length}) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wgId: vec3<u32>, @builtin(num_workgroups) wgCount: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wgId.y * wgCount.x + wgId.x) * ${WG}u + lid;
  if (i >= P[0]) { return; }
  let act0 = bitcast<f32>(P[3]); let act1 = bitcast<f32>(P[4]);
  let o = (i / P[2]) % P[1];
  let full = A[i];
  ${scaleBackWgsl(p.static)}
  Y[i] = ${activationWgsl(act)};
}`, [n, g.O, g.OH * g.OW, ...activationParams(act)], [pre.out, p.qp, ...scaleBack, p.y.buffer], Math.ceil(n / WG));
      run.free(codes);
      p.done();
      return [p.y];
    },
  });
}

import { sizeOf } from '../../ir/tensor.js';
import { fusedActivation, transposeGeometry } from '../../ops/conv.js';
import { attrInt } from '../../ops/registry.js';
import { windowOf } from '../../ops/window.js';
import { activationParams, activationWgsl, quantized } from './gemm-f32-tiled.js';
import { isF32, MAIN, groupsFor, header, registerGpuKernel } from './gpu.js';

/**
 * Float32 window kernels on the GPU, one invocation an output element: depthwise convolution (one
 * input channel a group, any multiplier), MaxPool/AveragePool (2-d, any padding, dilation and ceil
 * mode) and the global pools. Twins: the reference Conv, MaxPool, AveragePool, Global*Pool.
 */


/** Record words shared by the window kernels: N, C, H, W, O, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl, then per kernel. */
const WINDOW = `
  let C = P[1]; let H = P[2]; let W = P[3]; let O = P[4]; let OH = P[5]; let OW = P[6];
  let KH = P[7]; let KW = P[8]; let sh = P[9]; let sw = P[10]; let dh = P[11]; let dw = P[12]; let pt = i32(P[13]); let pl = i32(P[14]);
  if (i >= P[0] * O * OH * OW) { return; }
  let ox = i % OW; let oy = (i / OW) % OH; let o = (i / (OW * OH)) % O; let b = i / (OW * OH * O);`;

registerGpuKernel({
  op: 'Conv', variant: 'f32-depthwise',
  supports: (ins, node, ctx) => {
    const [x, w, b] = ins;
    return isF32(x) && isF32(w) && (!b || isF32(b)) && x!.shape.length === 4 && w!.shape.length === 4 && w!.shape[1] === 1 && attrInt(node, 'group', 1) > 1 && !quantized(node, ctx, w);
  },
  run(ins, node, _ctx, run) {
    const xt = ins[0]!, wt = ins[1]!, bt = ins[2];
    const [N, C, H, W] = xt.shape, [O, , KH, KW] = wt.shape;
    const groups = attrInt(node, 'group', 1), mult = O / groups;
    const win = windowOf(node, xt.shape, [KH, KW]);
    const [OH, OW] = win.out;
    const x = run.onDevice(xt), w = run.onDevice(wt), b = bt && run.onDevice(bt);
    const y = run.tensor([N, O, OH, OW]);
    const act = fusedActivation(node);
    const words = [N, C, H, W, O, OH, OW, KH, KW, win.strides[0], win.strides[1], win.dilations[0], win.dilations[1], win.begin[0], win.begin[1], mult, ...activationParams(act)];
    run.dispatch(`dwconv-f32/${act.kind}/${b ? 'b' : ''}`, () => `${header(b ? 3 : 2)}
${MAIN}
  ${WINDOW}
  let c = o / P[15];
  let act0 = bitcast<f32>(P[16]); let act1 = bitcast<f32>(P[17]);
  var v = ${b ? 'X2[o]' : '0.0'};
  let base = (b * C + c) * H;
  for (var ky = 0u; ky < KH; ky++) {
    let iy = i32(oy * sh + ky * dh) - pt;
    if (iy < 0 || iy >= i32(H)) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let ix = i32(ox * sw + kx * dw) - pl;
      if (ix < 0 || ix >= i32(W)) { continue; }
      v += X0[(base + u32(iy)) * W + u32(ix)] * X1[(o * KH + ky) * KW + kx];
    }
  }
  Y[i] = ${activationWgsl(act)};
}`, words, [x.buffer, w.buffer, ...(b ? [b.buffer] : []), y.buffer], groupsFor(sizeOf(y.shape)));
    return [y];
  },
});

for (const [op, max] of [['MaxPool', true], ['AveragePool', false]] as const) {
  registerGpuKernel({
    op, variant: 'f32-pool-2d',
    supports: (ins, node) => isF32(ins[0]) && ins[0]!.shape.length === 4 && node.outputs.length === 1,
    run(ins, node, _ctx, run) {
      const xt = ins[0]!;
      const [N, C, H, W] = xt.shape;
      const win = windowOf(node, xt.shape);
      const [OH, OW] = win.out;
      const x = run.onDevice(xt);
      const y = run.tensor([N, C, OH, OW]);
      const countPad = attrInt(node, 'count_include_pad', 0);
      const words = [N, C, H, W, C, OH, OW, win.kernel[0], win.kernel[1], win.strides[0], win.strides[1], win.dilations[0], win.dilations[1], win.begin[0], win.begin[1], win.end[0], win.end[1], countPad];
      run.dispatch(`pool-f32/${max ? 'max' : 'avg'}`, () => `${header(1)}
${MAIN}
  ${WINDOW}
  let pb = i32(P[15]); let pr = i32(P[16]);
  var v = ${max ? '-3.402823e38' : '0.0'};
  var cells = 0u; var padded = 0u;
  let base = (b * C + o) * H;
  for (var ky = 0u; ky < KH; ky++) {
    let iy = i32(oy * sh + ky * dh) - pt;
    for (var kx = 0u; kx < KW; kx++) {
      let ix = i32(ox * sw + kx * dw) - pl;
      if (iy >= -pt && iy < i32(H) + pb && ix >= -pl && ix < i32(W) + pr) { padded++; }
      if (iy < 0 || iy >= i32(H) || ix < 0 || ix >= i32(W)) { continue; }
      let x = X0[(base + u32(iy)) * W + u32(ix)];
      ${max ? 'v = max(v, x);' : 'v += x;'}
      cells++;
    }
  }
  ${max ? '' : 'v = v / f32(select(cells, padded, P[17] == 1u));'}
  Y[i] = v;
}`, words, [x.buffer, y.buffer], groupsFor(sizeOf(y.shape)));
      return [y];
    },
  });
}

for (const [op, max] of [['GlobalAveragePool', false], ['GlobalMaxPool', true]] as const) {
  registerGpuKernel({
    op, variant: 'f32-global-pool',
    supports: (ins) => isF32(ins[0]) && ins[0]!.shape.length >= 3,
    run(ins, _node, _ctx, run) {
      const xt = ins[0]!;
      const [N, C] = xt.shape, S = sizeOf(xt.shape.slice(2));
      const x = run.onDevice(xt);
      const y = run.tensor([N, C, ...xt.shape.slice(2).map(() => 1)]);
      run.dispatch(`global-pool-f32/${max ? 'max' : 'avg'}`, () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  let S = P[1];
  var v = ${max ? '-3.402823e38' : '0.0'};
  for (var s = 0u; s < S; s++) { ${max ? 'v = max(v, X0[i * S + s]);' : 'v += X0[i * S + s];'} }
  Y[i] = ${max ? 'v' : 'v / f32(S)'};
}`, [N * C, S], [x.buffer, y.buffer], groupsFor(N * C));
      return [y];
    },
  });
}

/**
 * ConvTranspose (2-d, any groups) one invocation an output element: it gathers the input pixels
 * whose taps reach it (ih = (oh + pad - kh * dilation) / stride where that divides). Geometry: the reference's.
 */
registerGpuKernel({
  op: 'ConvTranspose', variant: 'f32-gather',
  supports: (ins) => isF32(ins[0]) && isF32(ins[1]) && (!ins[2] || isF32(ins[2])) && ins[0]!.shape.length === 4 && ins[1]!.shape.length === 4,
  run(ins, node, _ctx, run) {
    const xt = ins[0]!, wt = ins[1]!, bt = ins[2];
    const [N, C, H, W] = xt.shape, [, Og, KH, KW] = wt.shape;
    const groups = attrInt(node, 'group', 1), Cg = C / groups, O = Og * groups;
    const geo = transposeGeometry(node, xt.shape, wt.shape);
    const [OH, OW] = geo.out;
    const x = run.onDevice(xt), w = run.onDevice(wt), b = bt && run.onDevice(bt);
    const y = run.tensor([N, O, OH, OW]);
    const words = [N, C, H, W, O, OH, OW, KH, KW, geo.strides[0], geo.strides[1], geo.dilations[0], geo.dilations[1], geo.begin[0], geo.begin[1], Cg, Og];
    run.dispatch(`convtranspose-f32/${b ? 'b' : ''}`, () => `${header(b ? 3 : 2)}
${MAIN}
  ${WINDOW}
  let Cg = P[15]; let Og = P[16]; let grp = o / Og; let oo = o % Og;
  var v = ${b ? 'X2[o]' : '0.0'};
  for (var ky = 0u; ky < KH; ky++) {
    let ty = i32(oy) + pt - i32(ky * dh);
    if (ty < 0 || ty % i32(sh) != 0) { continue; }
    let iy = u32(ty) / sh;
    if (iy >= H) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let tx = i32(ox) + pl - i32(kx * dw);
      if (tx < 0 || tx % i32(sw) != 0) { continue; }
      let ix = u32(tx) / sw;
      if (ix >= W) { continue; }
      for (var c = 0u; c < Cg; c++) {
        let ci = grp * Cg + c;
        v += X0[((b * C + ci) * H + iy) * W + ix] * X1[((ci * Og + oo) * KH + ky) * KW + kx];
      }
    }
  }
  Y[i] = v;
}`, words, [x.buffer, w.buffer, ...(b ? [b.buffer] : []), y.buffer], groupsFor(sizeOf(y.shape)));
    return [y];
  },
});

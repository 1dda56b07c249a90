import type { Node } from '../../ir/graph.js';
import { sizeOf, stridesOf } from '../../ir/tensor.js';
import { broadcastShapes } from '../../ops/broadcast.js';
import { attrFloat, attrInt, attrStr } from '../../ops/registry.js';
import { isF32, f32, MAIN, MAX_RANK, groupsFor, header, registerGpuKernel, type GpuRun, type GpuTensor } from './gpu.js';

/**
 * Float32 elementwise kernels on the GPU: unary functions (their attributes as record words) and
 * binary arithmetic with broadcasting over up to 6 axes. Twins: src/ops/unary.ts, src/ops/binary.ts.
 */


/** erf as the reference computes it (Abramowitz and Stegun 7.1.26). */
const ERF = `fn erf_(x: f32) -> f32 {
  let a = abs(x); let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * exp(-a * a);
  return select(y, -y, x < 0.0);
}`;

/** Softplus without overflow. */
const SOFTPLUS = 'select(log(1.0 + exp(v)), v, v > 20.0)';

/** WGSL of each unary op on `v`, with its attributes as a0, a1 (read from the node by `attrs`). */
const UNARY: Record<string, { f: string; attrs?: (n: Node) => [number, number] }> = {
  Relu: { f: 'max(v, 0.0)' },
  Sigmoid: { f: '1.0 / (1.0 + exp(-v))' },
  Tanh: { f: 'tanh(clamp(v, -15.0, 15.0))' },
  Exp: { f: 'exp(v)' }, Log: { f: 'log(v)' }, Sqrt: { f: 'sqrt(v)' }, Erf: { f: 'erf_(v)' },
  Sin: { f: 'sin(v)' }, Cos: { f: 'cos(v)' },
  Reciprocal: { f: '1.0 / v' },
  Softplus: { f: SOFTPLUS },
  Softsign: { f: 'v / (1.0 + abs(v))' },
  HardSwish: { f: 'v * clamp(v / 6.0 + 0.5, 0.0, 1.0)' },
  Mish: { f: `v * tanh(clamp(${SOFTPLUS}, -15.0, 15.0))` },
  _SiLU: { f: 'v / (1.0 + exp(-v))' },
  Abs: { f: 'abs(v)' }, Neg: { f: '-v' }, Floor: { f: 'floor(v)' }, Ceil: { f: 'ceil(v)' }, Round: { f: 'round(v)' }, Sign: { f: 'sign(v)' },
  LeakyRelu: { f: 'select(v * a0, v, v >= 0.0)', attrs: (n) => [attrFloat(n, 'alpha', 0.01), 0] },
  Elu: { f: 'select(a0 * (exp(v) - 1.0), v, v >= 0.0)', attrs: (n) => [attrFloat(n, 'alpha', 1), 0] },
  Selu: { f: 'a0 * select(a1 * (exp(v) - 1.0), v, v > 0.0)', attrs: (n) => [attrFloat(n, 'gamma', 1.0507009873554805), attrFloat(n, 'alpha', 1.6732632423543772)] },
  HardSigmoid: { f: 'clamp(a0 * v + a1, 0.0, 1.0)', attrs: (n) => [attrFloat(n, 'alpha', 0.2), attrFloat(n, 'beta', 0.5)] },
  ThresholdedRelu: { f: 'select(0.0, v, v > a0)', attrs: (n) => [attrFloat(n, 'alpha', 1), 0] },
  Gelu: { f: '0.5 * v * (1.0 + erf_(v * 0.70710678118654752))' },
};

for (const [op, { f, attrs }] of Object.entries(UNARY)) {
  registerGpuKernel({
    op, variant: 'f32-unary',
    supports: (ins, node) => isF32(ins[0]) && (op !== 'Gelu' || attrStr(node, 'approximate', 'none') === 'none'),
    run(ins, node, _ctx, run) {
      const x = run.onDevice(ins[0]!);
      const y = run.tensor(x.shape.slice());
      const n = sizeOf(x.shape), [a0, a1] = attrs?.(node) ?? [0, 0];
      run.dispatch(`unary-f32/${op}`, () => `${header(1)}${f.includes('erf_') ? ERF : ''}
${MAIN}
  if (i >= P[0]) { return; }
  let a0 = bitcast<f32>(P[1]); let a1 = bitcast<f32>(P[2]);
  let v = X0[i];
  Y[i] = ${f};
}`, [n, f32(a0), f32(a1)], [x.buffer, y.buffer], groupsFor(n));
      return [y];
    },
  });
}

/** Clip with its bounds as inputs (opset 11 on, constants) or attributes. */
registerGpuKernel({
  op: 'Clip', variant: 'f32-unary',
  supports: (ins) => isF32(ins[0]) && [ins[1], ins[2]].every((b) => b === undefined || (b.data !== undefined && b.data.length === 1)),
  run(ins, node, _ctx, run) {
    const lo = ins[1] && !('gpu' in ins[1]) ? Number(ins[1].data[0]) : attrFloat(node, 'min', -3.4e38);
    const hi = ins[2] && !('gpu' in ins[2]) ? Number(ins[2].data[0]) : attrFloat(node, 'max', 3.4e38);
    const x = run.onDevice(ins[0]!);
    const y = run.tensor(x.shape.slice());
    const n = sizeOf(x.shape);
    run.dispatch('unary-f32/Clip', () => `${header(1)}
${MAIN}
  if (i >= P[0]) { return; }
  Y[i] = min(max(X0[i], bitcast<f32>(P[1])), bitcast<f32>(P[2]));
}`, [n, f32(Math.max(lo, -3.4e38)), f32(Math.min(hi, 3.4e38))], [x.buffer, y.buffer], groupsFor(n));
    return [y];
  },
});

const BINARY: Record<string, string> = {
  Add: 'a + b', Sub: 'a - b', Mul: 'a * b', Div: 'a / b', Max: 'max(a, b)', Min: 'min(a, b)',
  Pow: 'select(pow(a, b), pow(abs(a), b) * select(1.0, -1.0, (i32(b) & 1) == 1), a < 0.0 && b == floor(b))',
  PRelu: 'select(a, a * b, a < 0.0)',
};

/** Record of a broadcast: rank, the output's dims and both inputs' element strides (0 along broadcast axes), padded to MAX_RANK. */
function broadcastWords(out: number[], as: number[], bs: number[]): number[] {
  const pad = (s: number[]) => [...new Array(out.length - s.length).fill(1), ...s];
  const st = (s: number[]) => {
    const p = pad(s), k = stridesOf(p);
    return p.map((d, i) => (d === 1 ? 0 : k[i]));
  };
  const fill = (v: number[]) => [...new Array(MAX_RANK - v.length).fill(0), ...v];
  return [out.length, ...fill(out), ...fill(st(as)), ...fill(st(bs))];
}

/** One binary op with broadcasting: Y = f(a, b) over `out` (the broadcast of both shapes). */
export function binary(run: GpuRun, op: string, a: GpuTensor, b: GpuTensor, out: number[]): GpuTensor {
  const y = run.tensor(out), n = sizeOf(out);
  // Same shapes: no index arithmetic.
  const same = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  run.dispatch(`binary-f32/${op}/${same ? 'same' : 'bcast'}`, () => `${header(2)}
${MAIN}
  if (i >= P[0]) { return; }
  ${same ? 'let ia = i; let ib = i;' : `var rem = i; var ia = 0u; var ib = 0u;
  for (var d = ${MAX_RANK - 1}; d >= 0; d--) {
    let dim = P[2 + d];
    if (dim == 0u) { break; }
    let c = rem % dim; rem = rem / dim;
    ia += c * P[${2 + MAX_RANK} + d]; ib += c * P[${2 + 2 * MAX_RANK} + d];
  }`}
  let a = X0[ia]; let b = X1[ib];
  Y[i] = ${BINARY[op]};
}`, [n, ...broadcastWords(out, a.shape, b.shape)], [a.buffer, b.buffer, y.buffer], groupsFor(n));
  return y;
}

for (const op of Object.keys(BINARY)) {
  registerGpuKernel({
    op, variant: 'f32-binary-broadcast',
    supports: (ins, node, ctx) => {
      const [a, b] = ins;
      if (node.inputs.length !== 2 || !isF32(a) || !isF32(b)) return false;
      // Before opset 7 a PRelu slope is per channel: the reference reshapes it (left to the CPU).
      if (op === 'PRelu' && ctx.opset < 7) return false;
      return Math.max(a!.shape.length, b!.shape.length) <= MAX_RANK;
    },
    run(ins, node, _ctx, run) {
      const [at, bt] = [ins[0]!, ins[1]!];
      return [binary(run, op, run.onDevice(at), run.onDevice(bt), broadcastShapes(node, [at.shape, bt.shape]))];
    },
  });
}

/** Inference batch normalization over axis 1: y = (x - mean) / sqrt(var + eps) * scale + bias. */
registerGpuKernel({
  op: 'BatchNormalization', variant: 'f32-affine',
  supports: (ins, node) => ins.every((t) => isF32(t)) && ins[0]!.shape.length >= 2 && node.outputs.length === 1 && attrInt(node, 'training_mode', 0) === 0,
  run(ins, node, _ctx, run) {
    const [x, s, b, m, v] = ins.map((t) => run.onDevice(t!));
    const y = run.tensor(x.shape.slice());
    const n = sizeOf(x.shape), C = x.shape[1], S = sizeOf(x.shape.slice(2));
    run.dispatch('batchnorm-f32', () => `${header(5)}
${MAIN}
  if (i >= P[0]) { return; }
  let c = (i / P[2]) % P[1];
  Y[i] = (X0[i] - X3[c]) / sqrt(X4[c] + bitcast<f32>(P[3])) * X1[c] + X2[c];
}`, [n, C, S, f32(attrFloat(node, 'epsilon', 1e-5))], [x.buffer, s.buffer, b.buffer, m.buffer, v.buffer, y.buffer], groupsFor(n));
    return [y];
  },
});

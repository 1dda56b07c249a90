import type { Node } from '../../ir/graph.js';
import { numberAt, sizeOf, zeros } from '../../ir/tensor.js';
import { broadcastRuns, broadcastShapes } from '../../ops/broadcast.js';
import { erf } from '../../ops/unary.js';
import { attrFloat, registerKernel, type Inputs } from '../../ops/registry.js';

/**
 * Float32 elementwise ops as tight typed-array loops: one loop per op behind a switch, so
 * that no per-element function call is left (the reference maps a closure over every element;
 * it is this kernel's twin). Broadcasting collapses to an outer odometer and an inner run in
 * which each operand steps by 0 or 1.
 */

const UNARY = ['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Sqrt', 'Erf', 'HardSigmoid', 'HardSwish', 'Neg', 'Abs', 'Reciprocal', 'LeakyRelu', 'Log', 'Clip', 'Gelu'] as const;
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'PRelu'] as const;

function unaryLoop(op: string, x: Float32Array, y: Float32Array, p: number, q: number): void {
  const n = x.length;
  switch (op) {
    case 'Relu': for (let i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0; break;
    case 'Sigmoid': for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-x[i])); break;
    case 'Tanh': for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]); break;
    case 'Exp': for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]); break;
    case 'Sqrt': for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]); break;
    case 'Log': for (let i = 0; i < n; i++) y[i] = Math.log(x[i]); break;
    case 'Erf': for (let i = 0; i < n; i++) y[i] = erf(x[i]); break;
    case 'Gelu': for (let i = 0; i < n; i++) y[i] = 0.5 * x[i] * (1 + erf(x[i] * Math.SQRT1_2)); break;
    case 'HardSigmoid': for (let i = 0; i < n; i++) y[i] = Math.max(0, Math.min(1, p * x[i] + q)); break;
    case 'HardSwish': for (let i = 0; i < n; i++) y[i] = x[i] * Math.max(0, Math.min(1, x[i] / 6 + 0.5)); break;
    case 'Neg': for (let i = 0; i < n; i++) y[i] = -x[i]; break;
    case 'Abs': for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]); break;
    case 'Reciprocal': for (let i = 0; i < n; i++) y[i] = 1 / x[i]; break;
    case 'LeakyRelu': for (let i = 0; i < n; i++) y[i] = x[i] >= 0 ? x[i] : x[i] * p; break;
    case 'Clip': for (let i = 0; i < n; i++) {
      const v = x[i] < p ? p : x[i];
      y[i] = v > q ? q : v;
    } break;
    default: throw new Error(`no loop for ${op}`);
  }
}

/** The parameters a unary op reads: (alpha, beta) of HardSigmoid, alpha of LeakyRelu, Clip's bounds. */
function unaryParams(op: string, ins: Inputs, node: Node): [number, number] {
  if (op === 'HardSigmoid') return [attrFloat(node, 'alpha', 0.2), attrFloat(node, 'beta', 0.5)];
  if (op === 'LeakyRelu') return [attrFloat(node, 'alpha', 0.01), 0];
  if (op === 'Clip') return [ins[1] ? numberAt(ins[1], 0) : attrFloat(node, 'min', -Infinity), ins[2] ? numberAt(ins[2], 0) : attrFloat(node, 'max', Infinity)];
  return [0, 0];
}

for (const op of UNARY) {
  registerKernel({
    op, backend: 'js', variant: 'f32-loop',
    supports: (ins, node) => ins[0]?.dtype === 'float32' && (op !== 'Clip' || ins.slice(1).every((t) => !t || (t.dtype === 'float32' && t.data.length === 1)))
      && (op !== 'Gelu' || (node.attrs.approximate ?? 'none') === 'none'),
    async run(ins, node) {
      const x = ins[0]!, y = zeros('float32', x.shape);
      const [p, q] = unaryParams(op, ins, node);
      unaryLoop(op, x.data as Float32Array, y.data as Float32Array, p, q);
      return [y];
    },
  });
}

/** y[yo + i] = a[ao + i * sa] (op) b[bo + i * sb] for i < n. */
function binaryRun(op: string, y: Float32Array, yo: number, a: Float32Array, ao: number, sa: number, b: Float32Array, bo: number, sb: number, n: number): void {
  switch (op) {
    case 'Add': for (let i = 0; i < n; i++) y[yo + i] = a[ao + i * sa] + b[bo + i * sb]; break;
    case 'Sub': for (let i = 0; i < n; i++) y[yo + i] = a[ao + i * sa] - b[bo + i * sb]; break;
    case 'Mul': for (let i = 0; i < n; i++) y[yo + i] = a[ao + i * sa] * b[bo + i * sb]; break;
    case 'Div': for (let i = 0; i < n; i++) y[yo + i] = a[ao + i * sa] / b[bo + i * sb]; break;
    case 'Max': for (let i = 0; i < n; i++) {
      const p = a[ao + i * sa], q = b[bo + i * sb];
      y[yo + i] = p !== p || q !== q ? NaN : p > q ? p : q;
    } break;
    case 'Min': for (let i = 0; i < n; i++) {
      const p = a[ao + i * sa], q = b[bo + i * sb];
      y[yo + i] = p !== p || q !== q ? NaN : p < q ? p : q;
    } break;
    case 'PRelu': for (let i = 0; i < n; i++) {
      const p = a[ao + i * sa];
      y[yo + i] = p < 0 ? p * b[bo + i * sb] : p;
    } break;
    default: throw new Error(`no loop for ${op}`);
  }
}

for (const op of BINARY) {
  registerKernel({
    op, backend: 'js', variant: 'f32-runs',
    supports: (ins) => ins.length === 2 && ins[0]?.dtype === 'float32' && ins[1]?.dtype === 'float32',
    async run(ins, node, ctx) {
      const a = ins[0]!;
      let b = ins[1]!;
      if (op === 'PRelu' && ctx.opset < 7 && b.shape.length === 1 && a.shape.length > 2 && b.shape[0] === a.shape[1]) b = { ...b, shape: [b.shape[0], ...a.shape.slice(2).map(() => 1)] };
      const shape = broadcastShapes(node, [a.shape, b.shape]);
      const y = zeros('float32', shape);
      if (sizeOf(shape) === 0) return [y];
      const yd = y.data as Float32Array, ad = a.data as Float32Array, bd = b.data as Float32Array;
      broadcastRuns(shape, a.shape, b.shape, (yo, ao, sa, bo, sb, n) => binaryRun(op, yd, yo, ad, ao, sa, bd, bo, sb, n));
      return [y];
    },
  });
}

import type { Node } from '../ir/graph.js';
import { numberAt, zeros, type Tensor } from '../ir/tensor.js';
import { mapBroadcast } from './broadcast.js';
import { attrFloat, attrStr, checkDType, defineOp, fail, need } from './registry.js';

/** erf to float32 precision: Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7). */
export function erf(x: number): number {
  const a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const y = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-a * a);
  return x < 0 ? -y : y;
}

/** Round half to even, as ONNX Round and numpy do. */
export function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** An elementwise function, its attributes read once per node. */
type Fn = (node: Node) => (v: number) => number;
const plain = (f: (v: number) => number): Fn => () => f;

/** Float elementwise functions by op name. */
const FLOAT: Record<string, Fn> = {
  Relu: plain((v) => (v > 0 ? v : 0)),
  Sigmoid: plain((v) => 1 / (1 + Math.exp(-v))),
  Tanh: plain(Math.tanh), Exp: plain(Math.exp), Log: plain(Math.log), Sqrt: plain(Math.sqrt), Erf: plain(erf),
  Sin: plain(Math.sin), Cos: plain(Math.cos), Tan: plain(Math.tan), Asin: plain(Math.asin), Acos: plain(Math.acos), Atan: plain(Math.atan),
  Sinh: plain(Math.sinh), Cosh: plain(Math.cosh), Asinh: plain(Math.asinh), Acosh: plain(Math.acosh), Atanh: plain(Math.atanh),
  Reciprocal: plain((v) => 1 / v),
  Softplus: plain((v) => (v > 20 ? v : Math.log1p(Math.exp(v)))),
  Softsign: plain((v) => v / (1 + Math.abs(v))),
  HardSwish: plain((v) => v * Math.max(0, Math.min(1, v / 6 + 0.5))),
  Mish: plain((v) => v * Math.tanh(v > 20 ? v : Math.log1p(Math.exp(v)))),
  // x * sigmoid(x): what the fusion pass makes of that pair where no Conv takes it (no ONNX op of its own).
  _SiLU: plain((v) => v / (1 + Math.exp(-v))),
  LeakyRelu: (n) => {
    const a = attrFloat(n, 'alpha', 0.01);
    return (v) => (v >= 0 ? v : v * a);
  },
  Elu: (n) => {
    const a = attrFloat(n, 'alpha', 1);
    return (v) => (v >= 0 ? v : a * Math.expm1(v));
  },
  Celu: (n) => {
    const a = attrFloat(n, 'alpha', 1);
    return (v) => Math.max(0, v) + Math.min(0, a * Math.expm1(v / a));
  },
  Selu: (n) => {
    const g = attrFloat(n, 'gamma', 1.0507009873554805), a = attrFloat(n, 'alpha', 1.6732632423543772);
    return (v) => g * (v > 0 ? v : a * Math.expm1(v));
  },
  HardSigmoid: (n) => {
    const a = attrFloat(n, 'alpha', 0.2), b = attrFloat(n, 'beta', 0.5);
    return (v) => Math.max(0, Math.min(1, a * v + b));
  },
  ThresholdedRelu: (n) => {
    const a = attrFloat(n, 'alpha', 1);
    return (v) => (v > a ? v : 0);
  },
  Gelu: (n) => (attrStr(n, 'approximate', 'none', ['none', 'tanh']) === 'tanh'
    ? (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))
    : (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))),
};

/** Functions defined for numbers of any dtype (the result keeps the input's dtype). */
const ANY: Record<string, Fn> = {
  Abs: plain(Math.abs), Neg: plain((v) => -v), Sign: plain(Math.sign), Identity: plain((v) => v),
  Floor: plain(Math.floor), Ceil: plain(Math.ceil), Round: plain(roundEven),
};

const NUMERIC = ['float32', 'int32', 'int64', 'uint8', 'int8'];

function unary(op: string, f: Fn, dtypes: string[]): void {
  defineOp({
    op, inputs: [1, 1],
    run(ins, node) {
      const x = need(ins, 0, node);
      checkDType(node, x, dtypes);
      if (op === 'Identity') return [x];
      return [mapBroadcast(node, [x], x.dtype, f(node))];
    },
  });
}

for (const [op, f] of Object.entries(FLOAT)) unary(op, f, ['float32']);
for (const [op, f] of Object.entries(ANY)) unary(op, f, op === 'Identity' ? [...NUMERIC, 'bool'] : NUMERIC);

defineOp({
  op: 'Not', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node);
    checkDType(node, x, ['bool']);
    return [mapBroadcast(node, [x], 'bool', (v) => (v ? 0 : 1))];
  },
});

for (const op of ['IsNaN', 'IsInf']) {
  defineOp({
    op, inputs: [1, 1],
    run(ins, node) {
      const x = need(ins, 0, node);
      checkDType(node, x, ['float32']);
      const pos = node.attrs.detect_positive !== 0, neg = node.attrs.detect_negative !== 0;
      const f = op === 'IsNaN' ? (v: number) => (Number.isNaN(v) ? 1 : 0) : (v: number) => ((v === Infinity && pos) || (v === -Infinity && neg) ? 1 : 0);
      return [mapBroadcast(node, [x], 'bool', f)];
    },
  });
}

/** Dropout at inference: the input itself, and an all-true mask when asked for. */
defineOp({
  op: 'Dropout', inputs: [1, 3],
  run(ins, node) {
    const x = need(ins, 0, node);
    // In training mode only a ratio of 0 is deterministic (nothing dropped).
    if (ins[2] && numberAt(ins[2], 0) && (ins[1] ? numberAt(ins[1], 0) : 0.5) !== 0) fail(node, 'training_mode with a non-zero ratio is not supported (random masks; inference only)');
    const mask = zeros('bool', x.shape);
    (mask.data as Uint8Array).fill(1);
    return node.outputs.length > 1 ? [x, mask] : [x];
  },
});

export type { Tensor };

import type { Node } from '../ir/graph.js';
import type { DType, Tensor } from '../ir/tensor.js';
import { mapBroadcast } from './broadcast.js';
import { checkDType, defineOp, fail, need } from './registry.js';

const NUMERIC = ['float32', 'int32', 'int64', 'uint8', 'int8'];

/** Integer division as ONNX computes it (numpy's true division, truncated to the integer type). */
const intDiv = (a: number, b: number) => (b === 0 ? 0 : Math.trunc(a / b));

type Bin = (node: Node, dtype: DType) => (a: number, b: number) => number;

/** Arithmetic with broadcasting: the result has the inputs' dtype. */
const ARITH: Record<string, Bin> = {
  Add: () => (a, b) => a + b,
  Sub: () => (a, b) => a - b,
  Mul: () => (a, b) => a * b,
  Div: (_, t) => (t === 'float32' ? (a, b) => a / b : intDiv),
  Pow: () => Math.pow,
  Mod: (n, t) => (n.attrs.fmod === 1 || t === 'float32'
    ? (n.attrs.fmod !== 1 && t === 'float32' ? fail(n, 'fmod must be 1 for float inputs') : (a, b) => a % b)
    : (a, b) => (b === 0 ? 0 : a - Math.floor(a / b) * b)),
  PRelu: () => (a, s) => (a < 0 ? a * s : a),
  // TF's Atan2 (no ONNX op): the angle of the point (b, a), float only.
  Atan2: () => Math.atan2,
};

/** Comparisons and logic: the result is bool. */
const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  Equal: (a, b) => a === b, Less: (a, b) => a < b, Greater: (a, b) => a > b,
  LessOrEqual: (a, b) => a <= b, GreaterOrEqual: (a, b) => a >= b,
};
const LOGIC: Record<string, (a: number, b: number) => boolean> = {
  And: (a, b) => Boolean(a && b), Or: (a, b) => Boolean(a || b), Xor: (a, b) => Boolean(a) !== Boolean(b),
};

function sameDType(node: Node, ins: Tensor[]): DType {
  const t = ins[0].dtype;
  for (const x of ins) if (x.dtype !== t) fail(node, `inputs are ${ins.map((i) => i.dtype).join(' and ')}; they must have one dtype`);
  return t;
}

for (const [op, f] of Object.entries(ARITH)) {
  defineOp({
    op, inputs: [2, 2],
    run(ins, node, ctx) {
      const x = [need(ins, 0, node), need(ins, 1, node)];
      // Pow may raise to an exponent of another type; everything else wants one dtype.
      const t = op === 'Pow' ? x[0].dtype : sameDType(node, x);
      checkDType(node, x[0], op === 'PRelu' || op === 'Atan2' ? ['float32'] : NUMERIC);
      // Before opset 7 a PRelu slope of C values applies per channel (axis 1), not to the last axis.
      if (op === 'PRelu' && ctx.opset < 7 && x[1].shape.length === 1 && x[0].shape.length > 2 && x[1].shape[0] === x[0].shape[1]) {
        x[1] = { ...x[1], shape: [x[1].shape[0], ...x[0].shape.slice(2).map(() => 1)] };
      }
      return [mapBroadcast(node, x, t, f(node, t))];
    },
  });
}

for (const [op, f] of Object.entries(COMPARE)) {
  defineOp({
    op, inputs: [2, 2],
    run(ins, node) {
      const x = [need(ins, 0, node), need(ins, 1, node)];
      sameDType(node, x);
      return [mapBroadcast(node, x, 'bool', (a, b) => (f(a, b) ? 1 : 0))];
    },
  });
}

for (const [op, f] of Object.entries(LOGIC)) {
  defineOp({
    op, inputs: [2, 2],
    run(ins, node) {
      const x = [need(ins, 0, node), need(ins, 1, node)];
      for (const t of x) checkDType(node, t, ['bool']);
      return [mapBroadcast(node, x, 'bool', (a, b) => (f(a, b) ? 1 : 0))];
    },
  });
}

/** Variadic elementwise ops over any number of broadcast inputs. */
const VARIADIC: Record<string, (v: number[]) => number> = {
  Sum: (v) => v.reduce((a, b) => a + b, 0),
  Mean: (v) => v.reduce((a, b) => a + b, 0) / v.length,
  Max: (v) => (v.some(Number.isNaN) ? NaN : Math.max(...v)),
  Min: (v) => (v.some(Number.isNaN) ? NaN : Math.min(...v)),
};
for (const [op, f] of Object.entries(VARIADIC)) {
  defineOp({
    op, inputs: [1, 1 << 10],
    run(ins, node) {
      const x = ins.map((t, i) => t ?? need(ins, i, node));
      const t = sameDType(node, x);
      checkDType(node, x[0], op === 'Sum' || op === 'Mean' ? ['float32'] : NUMERIC);
      return [mapBroadcast(node, x, t, (...v) => f(v))];
    },
  });
}

defineOp({
  op: 'Where', inputs: [3, 3],
  run(ins, node) {
    const [c, a, b] = [need(ins, 0, node), need(ins, 1, node), need(ins, 2, node)];
    checkDType(node, c, ['bool']);
    const t = sameDType(node, [a, b]);
    return [mapBroadcast(node, [c, a, b], t, (k, p, q) => (k ? p : q))];
  },
});

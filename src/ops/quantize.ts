import type { Node } from '../ir/graph.js';
import { numbers, sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import { convRef } from './conv.js';
import { matmulRef } from './matmul.js';
import { attrInt, axisOf, checkDType, defineOp, fail, need } from './registry.js';
import { roundEven } from './unary.js';

/** Per-tensor or per-axis parameter p for element i of x: a function of the flat index. */
function perAxis(node: Node, x: Tensor, p: Tensor, axisAttr: number): (i: number) => number {
  const v = numbers(p);
  if (sizeOf(p.shape) === 1) return () => v[0];
  const axis = axisOf(node, axisAttr, x.shape.length);
  const D = x.shape[axis], inner = sizeOf(x.shape.slice(axis + 1));
  if (v.length !== D) fail(node, `${v.length} scales or zero points for axis ${axis} of size ${D}`);
  return (i) => v[Math.floor(i / inner) % D];
}

const RANGE: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127], int32: [-2147483648, 2147483647] };

export function quantizeLinear(node: Node, x: Tensor, scale: Tensor, zero: Tensor | undefined): Tensor {
  const axis = attrInt(node, 'axis', 1);
  const s = perAxis(node, x, scale, axis), z = zero ? perAxis(node, x, zero, axis) : () => 0;
  const dtype = zero?.dtype ?? 'uint8';
  const [lo, hi] = RANGE[dtype] ?? fail(node, `zero point is ${dtype}; allowed: uint8, int8, int32`);
  const v = numbers(x), y = zeros(dtype, x.shape), yd = y.data as Int32Array;
  // The quotient rounded to float32 first, as the runtimes divide.
  for (let i = 0; i < v.length; i++) yd[i] = Math.min(hi, Math.max(lo, roundEven(Math.fround(v[i] / s(i))) + z(i)));
  return y;
}

export function dequantizeLinear(node: Node, x: Tensor, scale: Tensor, zero: Tensor | undefined): Tensor {
  const axis = attrInt(node, 'axis', 1);
  const s = perAxis(node, x, scale, axis), z = zero ? perAxis(node, x, zero, axis) : () => 0;
  const v = numbers(x), y = zeros('float32', x.shape), yd = y.data as Float32Array;
  for (let i = 0; i < v.length; i++) yd[i] = (v[i] - z(i)) * s(i);
  return y;
}

defineOp({
  op: 'QuantizeLinear', inputs: [2, 3],
  run(ins, node) {
    const x = need(ins, 0, node);
    checkDType(node, x, ['float32', 'int32']);
    return [quantizeLinear(node, x, need(ins, 1, node), ins[2])];
  },
});

defineOp({
  op: 'DequantizeLinear', inputs: [2, 3],
  run(ins, node) {
    const x = need(ins, 0, node);
    checkDType(node, x, ['uint8', 'int8', 'int32']);
    return [dequantizeLinear(node, x, need(ins, 1, node), ins[2])];
  },
});

/**
 * QLinearConv and QLinearMatMul as ONNX defines them: dequantize, compute in float, quantize.
 * Integer sums are exact in float64 here for the sizes these ops see, so the result equals the
 * integer definition (sum, rescale, round half to even, saturate).
 */
function rescaled(node: Node, f: (a: Tensor, b: Tensor) => Tensor, ins: (Tensor | undefined)[], bias?: Tensor): Tensor {
  const [a, as, az, b, bs, bz, ys, yz] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => need(ins, i, node));
  const deq = (t: Tensor, z: Tensor) => {
    // Zero points subtracted, values kept integral: scales applied after the sum.
    const v = numbers(t), zp = perAxis(node, t, z, t === b && node.op === 'QLinearConv' ? 0 : 1);
    const out = zeros('float32', t.shape), od = out.data as Float32Array;
    for (let i = 0; i < v.length; i++) od[i] = v[i] - zp(i);
    return out;
  };
  const acc = f(deq(a, az), deq(b, bz));
  const O = node.op === 'QLinearConv' ? b.shape[0] : b.shape[b.shape.length - 1];
  const inner = node.op === 'QLinearConv' ? sizeOf(acc.shape.slice(2)) : 1;
  const sa = numbers(as)[0], sb = numbers(bs), sy = numbers(ys)[0], bd = bias ? numbers(bias) : null;
  const zy = numbers(yz)[0], [lo, hi] = RANGE[yz.dtype];
  const v = acc.data as Float32Array, y = zeros(yz.dtype, acc.shape), yd = y.data as Int32Array;
  for (let i = 0; i < v.length; i++) {
    const o = Math.floor(i / inner) % O;
    const k = (sa * (sb.length > 1 ? sb[o] : sb[0])) / sy;
    yd[i] = Math.min(hi, Math.max(lo, roundEven((v[i] + (bd ? bd[o] : 0)) * k) + zy));
  }
  return y;
}

defineOp({
  op: 'QLinearConv', inputs: [8, 9],
  run(ins, node) {
    return [rescaled(node, (a, b) => convRef(node, a, b, undefined), ins, ins[8])];
  },
});

defineOp({
  op: 'QLinearMatMul', inputs: [8, 8],
  run(ins, node) {
    return [rescaled(node, (a, b) => matmulRef(node, a, b), ins)];
  },
});

import { fromNumbers, numbers, type DType, type Tensor } from '../ir/tensor.js';
import { defineOp, fail, need } from './registry.js';

/** ONNX TensorProto.DataType codes of the dtypes the runtime computes with. */
export const ONNX_DTYPE: Record<number, DType> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool' };

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  if (x.dtype === 'int64' && to !== 'float32' && to !== 'bool') {
    // Through BigInt so that large values wrap as a C cast does.
    const d = x.data as BigInt64Array, v = new Float64Array(d.length);
    const bits = to === 'int32' ? 32 : 8;
    for (let i = 0; i < d.length; i++) v[i] = Number(to === 'uint8' ? BigInt.asUintN(8, d[i]) : BigInt.asIntN(bits, d[i]));
    return fromNumbers(to, x.shape, v);
  }
  return fromNumbers(to, x.shape, numbers(x));
}

defineOp({
  op: 'Cast', inputs: [1, 1],
  run(ins, node) {
    const to = ONNX_DTYPE[node.attrs.to as number] ?? fail(node, `cannot cast to ONNX type ${node.attrs.to} (supported: ${Object.values(ONNX_DTYPE).join(', ')})`);
    return [cast(need(ins, 0, node), to)];
  },
});

defineOp({
  op: 'CastLike', inputs: [2, 2],
  run(ins, node) {
    return [cast(need(ins, 0, node), need(ins, 1, node).dtype)];
  },
});

import type { Tensor } from '../ir/tensor.js';
import { fromNumbers, ints, numberAt, zeros } from '../ir/tensor.js';
import { defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Constant', inputs: [0, 0],
  run(_, node) {
    const a = node.attrs;
    if (a.value && typeof a.value === 'object' && 'dtype' in a.value) return [a.value as Tensor];
    if (typeof a.value_float === 'number') return [fromNumbers('float32', [], [a.value_float])];
    if (typeof a.value_int === 'number') return [fromNumbers('int64', [], [a.value_int])];
    if (Array.isArray(a.value_floats)) return [fromNumbers('float32', [a.value_floats.length], a.value_floats as number[])];
    if (Array.isArray(a.value_ints)) return [fromNumbers('int64', [a.value_ints.length], a.value_ints as number[])];
    return fail(node, 'needs a value, value_float(s) or value_int(s) attribute (sparse and string values are not supported)');
  },
});

defineOp({
  op: 'ConstantOfShape', inputs: [1, 1],
  run(ins, node) {
    const shape = ints(need(ins, 0, node));
    if (shape.some((d) => d < 0)) fail(node, `shape [${shape}] has a negative size`);
    const v = node.attrs.value as Tensor | undefined;
    const out = zeros(v?.dtype ?? 'float32', shape);
    if (v) {
      if (v.dtype === 'int64') (out.data as BigInt64Array).fill((v.data as BigInt64Array)[0]);
      else (out.data as Float32Array).fill(numberAt(v, 0));
    }
    return [out];
  },
});

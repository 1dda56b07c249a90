import { fromNumbers, numberAt } from '../ir/tensor.js';
import { defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Range', inputs: [3, 3],
  run(ins, node) {
    const [s, l, d] = [0, 1, 2].map((i) => need(ins, i, node));
    const start = numberAt(s, 0), limit = numberAt(l, 0), delta = numberAt(d, 0);
    if (delta === 0) fail(node, 'delta is 0');
    const n = Math.max(Math.ceil((limit - start) / delta), 0);
    if (n > 1 << 28) fail(node, `${n} elements`);
    const v = new Float64Array(n);
    // As onnxruntime: accumulate in the dtype so that float results match step by step.
    let x = start;
    for (let i = 0; i < n; i++, x += delta) v[i] = s.dtype === 'float32' ? Math.fround(x) : x;
    return [fromNumbers(s.dtype, [n], v)];
  },
});

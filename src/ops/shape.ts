import { fromNumbers, sizeOf } from '../ir/tensor.js';
import { attrInt, defineOp, need } from './registry.js';

defineOp({
  op: 'Shape', inputs: [1, 1],
  run(ins, node) {
    const s = need(ins, 0, node).shape, r = s.length;
    const clampAxis = (a: number) => Math.min(r, Math.max(0, a < 0 ? a + r : a));
    const from = clampAxis(attrInt(node, 'start', 0)), to = clampAxis(attrInt(node, 'end', r));
    const dims = s.slice(from, Math.max(from, to));
    return [fromNumbers('int64', [dims.length], dims)];
  },
});

defineOp({
  op: 'Size', inputs: [1, 1],
  run(ins, node) {
    return [fromNumbers('int64', [], [sizeOf(need(ins, 0, node).shape)])];
  },
});

import { stridesOf } from '../ir/tensor.js';
import { take, viewIndex } from './take.js';
import { attrInts, defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Transpose', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length;
    // _swapLast (TF.js MatMul's transpose_a / transpose_b): the last two axes, whatever the rank.
    const swap = r >= 2 && node.attrs._swapLast === 1 ? x.shape.map((_, i) => (i < r - 2 ? i : 2 * r - 3 - i)) : undefined;
    const perm = swap ?? attrInts(node, 'perm') ?? x.shape.map((_, i) => r - 1 - i);
    if (perm.length !== r || [...perm].sort((a, b) => a - b).some((v, i) => v !== i)) fail(node, `perm [${perm}] is not a permutation of ${r} axes`);
    const st = stridesOf(x.shape);
    const shape = perm.map((p) => x.shape[p]);
    return [take(x, shape, viewIndex(shape, 0, perm.map((p) => st[p])))];
  },
});

import { ints, sizeOf, stridesOf } from '../ir/tensor.js';
import { broadcastIndex, broadcastShapes } from './broadcast.js';
import { take } from './take.js';
import { defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Expand', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node);
    const shape = broadcastShapes(node, [x.shape, ints(need(ins, 1, node))]);
    return [take(x, shape, broadcastIndex(shape, x.shape))];
  },
});

defineOp({
  op: 'Tile', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), reps = ints(need(ins, 1, node));
    if (reps.length !== x.shape.length || reps.some((k) => k < 0)) fail(node, `repeats [${reps}] must be ${x.shape.length} non-negative counts`);
    const shape = x.shape.map((d, i) => d * reps[i]);
    const st = stridesOf(x.shape), n = sizeOf(shape);
    const idx = new Int32Array(n);
    // Each output coordinate reads the input at that coordinate modulo the input's size.
    const os = stridesOf(shape);
    for (let i = 0; i < n; i++) {
      let rem = i, p = 0;
      for (let a = 0; a < shape.length; a++) {
        const c = Math.floor(rem / os[a]);
        rem -= c * os[a];
        p += (c % x.shape[a]) * st[a];
      }
      idx[i] = p;
    }
    return [take(x, shape, idx)];
  },
});

import { stridesOf } from '../ir/tensor.js';
import { defineOp, need } from './registry.js';

/** NonZero: the coordinates of the non-zero elements, [rank, count] int64, in row-major order. */
defineOp({
  op: 'NonZero', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length, st = stridesOf(x.shape);
    const d = x.data as ArrayLike<number | bigint>;
    const hits: number[] = [];
    for (let i = 0; i < d.length; i++) if (Number(d[i]) !== 0) hits.push(i);
    const out = new BigInt64Array(Math.max(r, 1) * hits.length);
    hits.forEach((flat, k) => {
      let rem = flat;
      for (let a = 0; a < r; a++) {
        out[a * hits.length + k] = BigInt(Math.floor(rem / st[a]));
        rem %= st[a];
      }
    });
    return [{ dtype: 'int64', shape: [Math.max(r, 1), hits.length], data: out }];
  },
});

import { zeros } from '../../ir/tensor.js';
import { registerKernel } from '../../ops/registry.js';
import { softmaxRowLength } from '../../ops/softmax.js';

/**
 * Softmax and LogSoftmax over contiguous rows (the last axis; before opset 13, the axes from `axis` on), row by row: each exponential computed
 * once (into a float64 row) where the reference computes it twice and walks rows by stride. The
 * same arithmetic in the same order, so the same float32 results.
 */
for (const op of ['Softmax', 'LogSoftmax']) {
  registerKernel({
    op, backend: 'js', variant: 'f32-rows',
    supports: (ins, node, ctx) => softmaxRowLength(ins, node, ctx) !== undefined,
    async run(ins, node, ctx) {
      const x = ins[0]!, len = softmaxRowLength(ins, node, ctx)!;
      const y = zeros('float32', x.shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
      const e = new Float64Array(len), log = op === 'LogSoftmax';
      for (let base = 0; base < xd.length; base += len) {
        let m = -Infinity;
        for (let i = 0; i < len; i++) if (xd[base + i] > m) m = xd[base + i];
        let s = 0;
        for (let i = 0; i < len; i++) s += e[i] = Math.exp(xd[base + i] - m);
        if (log) {
          const ls = Math.log(s);
          for (let i = 0; i < len; i++) yd[base + i] = xd[base + i] - m - ls;
        } else {
          for (let i = 0; i < len; i++) yd[base + i] = e[i] / s;
        }
      }
      return [y];
    },
  });
}

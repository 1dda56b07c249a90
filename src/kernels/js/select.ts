import { fromNumbers, numbers, sizeOf } from '../../ir/tensor.js';
import { attrInt, registerKernel } from '../../ops/registry.js';
import { broadcastRuns, broadcastShapes } from '../../ops/broadcast.js';
import { zeros } from '../../ir/tensor.js';

/**
 * TopK by a bounded heap (n log k instead of sorting every row), and comparisons of float32
 * tensors as runs. Ties keep the lower index first, as the reference and onnxruntime do.
 */
registerKernel({
  op: 'TopK', backend: 'js', variant: 'heap',
  supports: (ins, node) => {
    const x = ins[0], r = x?.shape.length ?? 0;
    if (!x || x.dtype === 'int64' || !ins[1] || r === 0) return false;
    const a = attrInt(node, 'axis', -1), axis = a < 0 ? a + r : a;
    const k = Number(numbers(ins[1])[0]);
    return axis >= 0 && axis < r && Number.isInteger(k) && k >= 0 && k <= x.shape[axis] && attrInt(node, 'sorted', 1) === 1;
  },
  async run(ins, node) {
    const x = ins[0]!, r = x.shape.length, a = attrInt(node, 'axis', -1), axis = a < 0 ? a + r : a;
    const k = Number(numbers(ins[1]!)[0]), largest = attrInt(node, 'largest', 1) === 1;
    const D = x.shape[axis], inner = sizeOf(x.shape.slice(axis + 1)), outer = sizeOf(x.shape.slice(0, axis));
    const v = x.data as Float32Array;
    const vals = new Float64Array(outer * k * inner), idx = new Float64Array(outer * k * inner);
    // "a before b" in the output order: larger (or smaller) value first, then lower index.
    const before = (va: number, ia: number, vb: number, ib: number) => (va !== vb ? (largest ? va > vb : va < vb) : ia < ib);
    const hv = new Float64Array(k), hi = new Int32Array(k);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        // A heap whose root is the worst of the k kept so far.
        let n = 0;
        const sift = (p: number) => {
          for (;;) {
            const l = 2 * p + 1, rr = l + 1;
            let w = p;
            if (l < n && before(hv[w], hi[w], hv[l], hi[l])) w = l;
            if (rr < n && before(hv[w], hi[w], hv[rr], hi[rr])) w = rr;
            if (w === p) return;
            [hv[p], hv[w]] = [hv[w], hv[p]];
            [hi[p], hi[w]] = [hi[w], hi[p]];
            p = w;
          }
        };
        for (let d = 0; d < D; d++) {
          const val = v[(o * D + d) * inner + i];
          if (n < k) {
            let c = n++;
            hv[c] = val;
            hi[c] = d;
            while (c > 0) {
              const p = (c - 1) >> 1;
              if (!before(hv[p], hi[p], hv[c], hi[c])) break;
              [hv[p], hv[c]] = [hv[c], hv[p]];
              [hi[p], hi[c]] = [hi[c], hi[p]];
              c = p;
            }
          } else if (k > 0 && before(val, d, hv[0], hi[0])) {
            hv[0] = val;
            hi[0] = d;
            sift(0);
          }
        }
        // Pop worst-first into the tail.
        for (let j = k - 1; j >= 0; j--) {
          vals[(o * k + j) * inner + i] = hv[0];
          idx[(o * k + j) * inner + i] = hi[0];
          n--;
          hv[0] = hv[n];
          hi[0] = hi[n];
          sift(0);
        }
      }
    }
    const shape = x.shape.map((d, q) => (q === axis ? k : d));
    return [fromNumbers(x.dtype, shape, vals), fromNumbers('int64', shape, idx)];
  },
});

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  Equal: (a, b) => a === b, Less: (a, b) => a < b, Greater: (a, b) => a > b, LessOrEqual: (a, b) => a <= b, GreaterOrEqual: (a, b) => a >= b,
};

for (const op of Object.keys(COMPARE)) {
  registerKernel({
    op, backend: 'js', variant: 'f32-runs',
    supports: (ins) => ins[0]?.dtype === 'float32' && ins[1]?.dtype === 'float32',
    async run(ins, node) {
      const a = ins[0]!, b = ins[1]!, shape = broadcastShapes(node, [a.shape, b.shape]);
      const y = zeros('bool', shape), yd = y.data as Uint8Array, ad = a.data as Float32Array, bd = b.data as Float32Array;
      if (sizeOf(shape) === 0) return [y];
      broadcastRuns(shape, a.shape, b.shape, (yo, ao, sa, bo, sb, n) => {
        switch (op) {
          case 'Equal': for (let i = 0; i < n; i++) yd[yo + i] = ad[ao + i * sa] === bd[bo + i * sb] ? 1 : 0; break;
          case 'Less': for (let i = 0; i < n; i++) yd[yo + i] = ad[ao + i * sa] < bd[bo + i * sb] ? 1 : 0; break;
          case 'Greater': for (let i = 0; i < n; i++) yd[yo + i] = ad[ao + i * sa] > bd[bo + i * sb] ? 1 : 0; break;
          case 'LessOrEqual': for (let i = 0; i < n; i++) yd[yo + i] = ad[ao + i * sa] <= bd[bo + i * sb] ? 1 : 0; break;
          default: for (let i = 0; i < n; i++) yd[yo + i] = ad[ao + i * sa] >= bd[bo + i * sb] ? 1 : 0;
        }
      });
      return [y];
    },
  });
}

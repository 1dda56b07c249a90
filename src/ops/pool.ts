import { sizeOf, zeros } from '../ir/tensor.js';
import { attrFloat, attrInt, checkDType, defineOp, fail, need } from './registry.js';
import { forEachWindow, windowOf } from './window.js';

for (const op of ['MaxPool', 'AveragePool', 'LpPool']) {
  defineOp({
    op, inputs: [1, 1],
    run(ins, node) {
      const x = need(ins, 0, node);
      checkDType(node, x, op === 'MaxPool' ? ['float32', 'int8', 'uint8'] : ['float32']);
      const w = windowOf(node, x.shape);
      const [N, C] = x.shape, S = sizeOf(w.spatial), P = sizeOf(w.out);
      const countPad = attrInt(node, 'count_include_pad', 0) === 1, p = attrFloat(node, 'p', 2);
      // Indices count row-major, or column-major over the spatial axes with storage_order 1.
      const colMajor = attrInt(node, 'storage_order', 0) === 1;
      if (colMajor && w.spatial.length !== 2) fail(node, 'storage_order 1 needs two spatial axes');
      const H = w.spatial[0], W = w.spatial[1];
      const y = zeros(x.dtype, [N, C, ...w.out]), idx = zeros('int64', [N, C, ...w.out]);
      const xd = x.data as Float32Array, yd = y.data as Float32Array, id = idx.data as BigInt64Array;
      const wins: [number[], number][] = [];
      forEachWindow(w, (_, cells, __, padded) => wins.push([cells, padded]));
      for (let nc = 0; nc < N * C; nc++) {
        const base = nc * S;
        for (let o = 0; o < P; o++) {
          const [cells, padded] = wins[o];
          let v: number;
          if (op === 'MaxPool') {
            v = -Infinity;
            let at = -1;
            for (const c of cells) if (xd[base + c] > v || at < 0) [v, at] = [xd[base + c], c];
            id[nc * P + o] = BigInt(base + (colMajor ? (at % W) * H + Math.floor(at / W) : at));
          } else if (op === 'AveragePool') {
            v = 0;
            for (const c of cells) v += xd[base + c];
            v /= countPad ? padded : cells.length;
          } else {
            v = 0;
            for (const c of cells) v += Math.abs(xd[base + c]) ** p;
            v = v ** (1 / p);
          }
          yd[nc * P + o] = v;
        }
      }
      return node.outputs.length > 1 && op === 'MaxPool' ? [y, idx] : [y];
    },
  });
}

for (const op of ['GlobalAveragePool', 'GlobalMaxPool']) {
  defineOp({
    op, inputs: [1, 1],
    run(ins, node) {
      const x = need(ins, 0, node);
      checkDType(node, x, ['float32']);
      if (x.shape.length < 3) fail(node, `needs spatial axes, got [${x.shape}]`);
      const [N, C] = x.shape, S = sizeOf(x.shape.slice(2));
      const y = zeros('float32', [N, C, ...x.shape.slice(2).map(() => 1)]);
      const xd = x.data as Float32Array, yd = y.data as Float32Array;
      for (let i = 0; i < N * C; i++) {
        let v = op === 'GlobalMaxPool' ? -Infinity : 0;
        for (let s = i * S; s < (i + 1) * S; s++) v = op === 'GlobalMaxPool' ? Math.max(v, xd[s]) : v + xd[s];
        yd[i] = op === 'GlobalMaxPool' ? v : v / S;
      }
      return [y];
    },
  });
}

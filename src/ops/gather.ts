import { numbers, sizeOf, stridesOf } from '../ir/tensor.js';
import { take } from './take.js';
import { attrInt, axisOf, checkDType, defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Gather', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), ix = need(ins, 1, node);
    checkDType(node, ix, ['int32', 'int64'], 'indices');
    const axis = axisOf(node, attrInt(node, 'axis', 0), x.shape.length);
    const D = x.shape[axis], outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1));
    const v = numbers(ix), K = v.length;
    const idx = new Int32Array(outer * K * inner);
    let p = 0;
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < K; k++) {
        const j = v[k] < 0 ? v[k] + D : v[k];
        if (!(j >= 0 && j < D)) fail(node, `index ${v[k]} is outside [-${D}, ${D})`);
        const base = (o * D + j) * inner;
        for (let i = 0; i < inner; i++) idx[p++] = base + i;
      }
    }
    return [take(x, [...x.shape.slice(0, axis), ...ix.shape, ...x.shape.slice(axis + 1)], idx)];
  },
});

defineOp({
  op: 'GatherElements', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), ix = need(ins, 1, node);
    checkDType(node, ix, ['int32', 'int64'], 'indices');
    const r = x.shape.length;
    if (ix.shape.length !== r) fail(node, `indices have rank ${ix.shape.length}, data ${r}`);
    const axis = axisOf(node, attrInt(node, 'axis', 0), r);
    const xs = stridesOf(x.shape), is = stridesOf(ix.shape), v = numbers(ix), D = x.shape[axis];
    const idx = new Int32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      let p = 0, rem = i;
      for (let a = 0; a < r; a++) {
        const c = Math.floor(rem / is[a]);
        rem -= c * is[a];
        if (a === axis) {
          const j = v[i] < 0 ? v[i] + D : v[i];
          if (!(j >= 0 && j < D)) fail(node, `index ${v[i]} is outside [-${D}, ${D})`);
          p += j * xs[a];
        } else p += c * xs[a];
      }
      idx[i] = p;
    }
    return [take(x, ix.shape.slice(), idx)];
  },
});

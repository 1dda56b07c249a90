import { ints, numberAt, sizeOf, stridesOf, zeros } from '../ir/tensor.js';
import { attrFloat, attrInts, attrStr, axisOf, defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Pad', inputs: [1, 4],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length;
    const mode = attrStr(node, 'mode', 'constant', ['constant', 'reflect', 'edge', 'wrap']);
    const given = ins[1] ? ints(ins[1]) : attrInts(node, 'pads') ?? fail(node, 'needs pads');
    const axes = ins[3] ? ints(ins[3]).map((a) => axisOf(node, a, r)) : x.shape.map((_, i) => i);
    if (given.length !== 2 * axes.length) fail(node, `pads [${given}] must hold ${2 * axes.length} numbers`);
    const begin = new Array<number>(r).fill(0), end = new Array<number>(r).fill(0);
    axes.forEach((a, i) => {
      begin[a] = given[i];
      end[a] = given[i + axes.length];
    });
    const shape = x.shape.map((d, i) => d + begin[i] + end[i]);
    if (shape.some((d) => d < 0)) fail(node, `pads [${given}] cut more than [${x.shape}] holds`);
    if (mode !== 'constant' && x.shape.some((d, i) => d === 0 && shape[i] > 0)) fail(node, `${mode} padding of an empty axis`);
    const out = zeros(x.dtype, shape);
    const value = ins[2] && sizeOf(ins[2].shape) > 0 ? numberAt(ins[2], 0) : attrFloat(node, 'value', 0);
    const src = x.data as Float32Array, dst = out.data as Float32Array;
    const xs = stridesOf(x.shape), n = sizeOf(shape), os = stridesOf(shape);
    const fill = x.dtype === 'int64' ? BigInt(Math.trunc(value)) : value;
    for (let i = 0; i < n; i++) {
      let rem = i, p = 0, inside = true;
      for (let a = 0; a < r; a++) {
        const c = Math.floor(rem / os[a]);
        rem -= c * os[a];
        let j = c - begin[a];
        const d = x.shape[a];
        if (j < 0 || j >= d) {
          if (mode === 'constant') {
            inside = false;
            break;
          }
          if (mode === 'edge') j = j < 0 ? 0 : d - 1;
          else if (mode === 'wrap') j = ((j % d) + d) % d;
          else {
            // reflect: mirror without repeating the edge
            const period = 2 * (d - 1) || 1;
            j = ((j % period) + period) % period;
            if (j >= d) j = period - j;
          }
        }
        p += j * xs[a];
      }
      (dst as unknown as unknown[])[i] = inside ? src[p] : fill;
    }
    return [out];
  },
});

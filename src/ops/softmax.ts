import type { Node } from '../ir/graph.js';
import { sizeOf, zeros } from '../ir/tensor.js';
import { attrInt, axisOf, checkDType, defineOp, need, type Inputs, type OpContext } from './registry.js';

/**
 * Softmax, LogSoftmax, Hardmax. From opset 13 over one axis (default -1); before it, over the
 * input flattened to 2-d at `axis` (default 1).
 */
for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
  defineOp({
    op, inputs: [1, 1],
    run(ins, node, ctx) {
      const x = need(ins, 0, node);
      checkDType(node, x, ['float32']);
      const r = x.shape.length;
      const old = ctx.opset < 13;
      const axis = axisOf(node, attrInt(node, 'axis', old ? 1 : -1), r);
      // Rows of `len` values `stride` apart: a single axis, or (before 13) every axis from `axis` on.
      const len = old ? sizeOf(x.shape.slice(axis)) : x.shape[axis];
      const stride = old ? 1 : sizeOf(x.shape.slice(axis + 1));
      const rows = sizeOf(x.shape) / Math.max(len, 1);
      const y = zeros('float32', x.shape), xd = x.data as Float32Array, yd = y.data as Float32Array;
      for (let row = 0; row < rows; row++) {
        const base = Math.floor(row / stride) * len * stride + (row % stride);
        let m = -Infinity, at = 0;
        for (let i = 0; i < len; i++) if (xd[base + i * stride] > m) [m, at] = [xd[base + i * stride], i];
        if (op === 'Hardmax') {
          yd[base + at * stride] = 1;
          continue;
        }
        let s = 0;
        for (let i = 0; i < len; i++) s += Math.exp(xd[base + i * stride] - m);
        for (let i = 0; i < len; i++) {
          const v = xd[base + i * stride] - m;
          yd[base + i * stride] = op === 'Softmax' ? Math.exp(v) / s : v - Math.log(s);
        }
      }
      return [y];
    },
  });
}

/**
 * The length of the contiguous rows a float32 Softmax or LogSoftmax normalizes, where they are
 * contiguous (what the row kernels run): from opset 13 over the last axis only; before it, every axis
 * from `axis` on (default 1), flattened. undefined otherwise, or for an empty input.
 */
export function softmaxRowLength(ins: Inputs, node: Node, ctx: OpContext): number | undefined {
  const x = ins[0], r = x?.shape.length ?? 0;
  if (x?.dtype !== 'float32' || r === 0 || sizeOf(x.shape) === 0) return undefined;
  if (ctx.opset < 13) return sizeOf(x.shape.slice(axisOf(node, attrInt(node, 'axis', 1), r)));
  const a = attrInt(node, 'axis', -1);
  return a === -1 || a === r - 1 ? x.shape[r - 1] : undefined;
}

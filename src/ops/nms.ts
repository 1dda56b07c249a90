import { fromNumbers, numbers } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { attrInt, defineOp, fail, need, type Inputs } from './registry.js';

/** Intersection over union of two boxes, each [y1, x1, y2, x2] (corners in any order) or [cx, cy, w, h]. */
function iou(b: ArrayLike<number>, i: number, j: number, center: boolean): number {
  const box = (k: number) => {
    const [p, q, r, s] = [b[k], b[k + 1], b[k + 2], b[k + 3]];
    return center ? [q - s / 2, p - r / 2, q + s / 2, p + r / 2] : [Math.min(p, r), Math.min(q, s), Math.max(p, r), Math.max(q, s)];
  };
  const [ay1, ax1, ay2, ax2] = box(i), [by1, bx1, by2, bx2] = box(j);
  const ih = Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1)), iw = Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1));
  const inter = ih * iw, union = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - inter;
  return union > 0 ? inter / union : 0;
}

/** The boxes kept per class at most, the IoU above which a box is dropped, the score a box must exceed, and the box format. */
export function nmsSettings(ins: Inputs, node: Node): { maxOut: number; iouMax: number; minScore: number; center: boolean } {
  return {
    maxOut: ins[2] && ins[2].data.length ? numbers(ins[2])[0] : 0,
    iouMax: ins[3] && ins[3].data.length ? numbers(ins[3])[0] : 0,
    minScore: ins[4] && ins[4].data.length ? numbers(ins[4])[0] : -Infinity,
    center: attrInt(node, 'center_point_box', 0) === 1,
  };
}

defineOp({
  op: 'NonMaxSuppression', inputs: [2, 5],
  run(ins, node) {
    const boxes = need(ins, 0, node), scores = need(ins, 1, node);
    const [B, N] = boxes.shape, [B2, C, N2] = scores.shape;
    if (boxes.shape.length !== 3 || boxes.shape[2] !== 4 || B2 !== B || N2 !== N) fail(node, `boxes [${boxes.shape}] and scores [${scores.shape}] do not match`);
    const { maxOut, iouMax, minScore, center } = nmsSettings(ins, node);
    const bv = numbers(boxes), sv = numbers(scores);
    const picked: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const base = (b * C + c) * N;
        const order = Array.from({ length: N }, (_, i) => i).filter((i) => sv[base + i] > minScore)
          .sort((p, q) => sv[base + q] - sv[base + p] || p - q);
        const kept: number[] = [];
        for (const i of order) {
          if (kept.length >= maxOut) break;
          if (kept.every((k) => iou(bv, (b * N + i) * 4, (b * N + k) * 4, center) <= iouMax)) kept.push(i);
        }
        for (const k of kept) picked.push(b, c, k);
      }
    }
    return [fromNumbers('int64', [picked.length / 3, 3], picked)];
  },
});

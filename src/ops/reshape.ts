import { ints, sizeOf } from '../ir/tensor.js';
import { reshaped } from './take.js';
import { attrInt, attrInts, axisOf, defineOp, fail, need } from './registry.js';

defineOp({
  op: 'Reshape', inputs: [2, 2],
  run(ins, node) {
    const x = need(ins, 0, node), want = ints(need(ins, 1, node));
    const allowZero = attrInt(node, 'allowzero', 0) === 1;
    const s = want.map((d, i) => (d === 0 && !allowZero ? x.shape[i] ?? fail(node, `0 at axis ${i} copies no input axis of [${x.shape}]`) : d));
    const free = s.filter((d) => d === -1).length;
    const known = sizeOf(s.filter((d) => d !== -1));
    if (free > 1 || s.some((d) => d < -1)) fail(node, `shape [${want}] is not a valid target`);
    const out = s.map((d) => (d === -1 ? (known === 0 ? 0 : sizeOf(x.shape) / known) : d));
    if (!out.every(Number.isInteger) || sizeOf(out) !== sizeOf(x.shape)) fail(node, `cannot reshape [${x.shape}] to [${want}]`);
    return [reshaped(x, out)];
  },
});

defineOp({
  op: 'Flatten', inputs: [1, 1],
  run(ins, node) {
    const x = need(ins, 0, node);
    const r = x.shape.length, a = attrInt(node, 'axis', 1);
    const axis = a < 0 ? a + r : a;
    if (axis < 0 || axis > r) fail(node, `axis ${a} is outside [-${r}, ${r}]`);
    return [reshaped(x, [sizeOf(x.shape.slice(0, axis)), sizeOf(x.shape.slice(axis))])];
  },
});

/** Axes from the attribute (older opsets) or the second input (opset 13 on). */
function axesOf(ins: Parameters<typeof need>[0], node: Parameters<typeof need>[2]): number[] | undefined {
  return ins[1] ? ints(ins[1]) : attrInts(node, 'axes');
}

defineOp({
  op: 'Squeeze', inputs: [1, 2],
  run(ins, node) {
    const x = need(ins, 0, node), r = x.shape.length;
    const given = axesOf(ins, node);
    const axes = given ? given.map((a) => axisOf(node, a, r)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
    for (const a of axes) if (x.shape[a] !== 1) fail(node, `cannot squeeze axis ${a} of [${x.shape}]`);
    return [reshaped(x, x.shape.filter((_, i) => !axes.includes(i)))];
  },
});

defineOp({
  op: 'Unsqueeze', inputs: [1, 2],
  run(ins, node) {
    const x = need(ins, 0, node);
    const given = axesOf(ins, node) ?? fail(node, 'needs axes');
    const r = x.shape.length + given.length;
    const axes = given.map((a) => axisOf(node, a, r));
    if (new Set(axes).size !== axes.length) fail(node, `axes [${given}] repeat an axis`);
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : x.shape[k++]);
    return [reshaped(x, out)];
  },
});

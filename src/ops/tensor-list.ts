import type { Node } from '../ir/graph.js';
import { isDType, numbers, sizeOf, zeros, type DType, type Tensor } from '../ir/tensor.js';
import { attrStr, defineOp, fail, need } from './registry.js';

/**
 * TF's tensor arrays and tensor lists (TensorArrayV3..., TensorList...), which tf.map_fn and
 * while loops write one element per iteration, as plain values: a list of n elements is the tensor
 * [n, ...element] of them stacked (scalars: [n]). A list nothing was written to yet is [n, 0] (its
 * element shape comes with the first write). Every op returns a new list; none changes its input.
 */
const started = (l: Tensor) => !(l.shape.length === 2 && l.shape[1] === 0);

function indexOf(node: Node, list: Tensor, i: number): number {
  const n = list.shape[0];
  if (!(Number.isInteger(i) && i >= 0 && i < n)) fail(node, `index ${i} is outside the list's ${n} elements`);
  return i;
}

/** The list with its element shape fixed by `item` (copied, or made where nothing was written yet). */
function writable(node: Node, list: Tensor, item: number[], dtype: DType): Tensor {
  const n = list.shape[0];
  if (!started(list)) return zeros(dtype, [n, ...item]);
  const elem = list.shape.slice(1);
  if (elem.length !== item.length || elem.some((d, k) => d !== item[k]) || list.dtype !== dtype) {
    fail(node, `writes a ${dtype} [${item}] element into a list of ${list.dtype} [${elem}]`);
  }
  return { dtype: list.dtype, shape: list.shape.slice(), data: list.data.slice() } as Tensor;
}

function rowsOf(list: Tensor, rows: number[]): Tensor {
  const elem = sizeOf(list.shape.slice(1));
  const out = zeros(list.dtype, [rows.length, ...list.shape.slice(1)]);
  rows.forEach((r, k) => (out.data as Float32Array).set((list.data as Float32Array).subarray(r * elem, (r + 1) * elem), k * elem));
  return out;
}

defineOp({
  op: '_ListNew', inputs: [1, 1],
  run(ins, node) {
    const n = Number(numbers(need(ins, 0, node))[0]);
    const dtype = attrStr(node, 'dtype', 'float32');
    if (!isDType(dtype) || !(Number.isInteger(n) && n >= 0)) fail(node, `a list of ${n} ${dtype} elements`);
    return [zeros(dtype, [n, 0])];
  },
});

defineOp({
  op: '_ListSet', inputs: [3, 3],
  run(ins, node) {
    const list = need(ins, 0, node), item = need(ins, 2, node);
    const i = indexOf(node, list, Number(numbers(need(ins, 1, node))[0]));
    const out = writable(node, list, item.shape, item.dtype);
    (out.data as Float32Array).set(item.data as Float32Array, i * sizeOf(item.shape));
    return [out];
  },
});

defineOp({
  op: '_ListScatter', inputs: [3, 3],
  run(ins, node) {
    const list = need(ins, 0, node), idx = Array.from(numbers(need(ins, 1, node))), value = need(ins, 2, node);
    if (value.shape[0] !== idx.length) fail(node, `scatters ${value.shape[0]} rows to ${idx.length} indices`);
    const elem = value.shape.slice(1), size = sizeOf(elem);
    const out = writable(node, list, elem, value.dtype);
    idx.forEach((i, k) => (out.data as Float32Array).set((value.data as Float32Array).subarray(k * size, (k + 1) * size), indexOf(node, list, i) * size));
    return [out];
  },
});

defineOp({
  op: '_ListGet', inputs: [2, 2],
  run(ins, node) {
    const list = need(ins, 0, node);
    const i = indexOf(node, list, Number(numbers(need(ins, 1, node))[0]));
    if (!started(list)) fail(node, `reads element ${i} before any was written`);
    const r = rowsOf(list, [i]);
    return [{ ...r, shape: r.shape.slice(1) }];
  },
});

/** Elements stacked; from a list nothing was written to, none, shaped by the `element_shape` the op declares. */
defineOp({
  op: '_ListGather', inputs: [2, 2],
  run(ins, node) {
    const list = need(ins, 0, node), idx = Array.from(numbers(need(ins, 1, node)));
    idx.forEach((i) => indexOf(node, list, i));
    if (!started(list)) {
      const elem = (node.attrs.element_shape as number[] | undefined) ?? [];
      if (idx.length || elem.some((d) => !(d >= 0))) fail(node, 'reads elements before any was written');
      return [zeros(list.dtype, [0, ...elem])];
    }
    return [rowsOf(list, idx)];
  },
});

defineOp({
  op: '_ListSize', inputs: [1, 1],
  run: (ins, node) => [{ dtype: 'int32', shape: [], data: Int32Array.of(need(ins, 0, node).shape[0]) }],
});

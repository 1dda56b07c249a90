import { numbers, sizeOf, stridesOf, zeros } from '../ir/tensor.js';
import type { Node } from '../ir/graph.js';
import { defineOp, fail, need } from './registry.js';

/**
 * TF's SpaceToBatchND and BatchToSpaceND (no ONNX ops; converters wrap dilated convolutions in
 * them): the M axes after the batch are cut into blocks, and each position within a block becomes
 * its own batch entry, outer to the original batch: batch ((k_1 * b_2 + k_2) ... ) * N + n.
 */
function blockOf(node: Node, block: number[], pairs: number[], rank: number): void {
  const M = block.length;
  if (M < 1 || M > rank - 1 || pairs.length !== 2 * M) fail(node, `block_shape [${block}] and its pairs [${pairs}] do not fit an input of rank ${rank}`);
  if (block.some((b) => !(Number.isInteger(b) && b >= 1)) || pairs.some((p) => !(Number.isInteger(p) && p >= 0))) fail(node, `block_shape [${block}] must be >= 1 and pads/crops [${pairs}] >= 0`);
}

/** Flat indices of the batch-major tensor `big` (blocks in the batch) for every element of the spatial tensor `small`'s window. */
function mapping(small: number[], block: number[], start: number[], big: number[], count: number[]): { idxSmall: Int32Array; idxBig: Int32Array } {
  // Walks every element of the blocked tensor (shape `big`) whose spatial position lies inside the
  // window of `small` that starts at `start` (the pad or crop) and holds `count` positions per axis.
  const M = block.length, N = small[0], rest = sizeOf(small.slice(M + 1));
  const ss = stridesOf(small), bs = stridesOf(big);
  const idxSmall: number[] = [], idxBig: number[] = [];
  const blocks = sizeOf(block), outer = sizeOf(big.slice(1, M + 1));
  for (let k = 0; k < blocks; k++) {
    // Position within the block, per axis (row-major over the block axes).
    const pos: number[] = [];
    for (let a = M - 1, r = k; a >= 0; a--) {
      pos[a] = r % block[a];
      r = Math.floor(r / block[a]);
    }
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < outer; o++) {
        let bigAt = (k * N + n) * bs[0], smallAt = n * ss[0], inside = true;
        for (let a = M - 1, r = o; a >= 0; a--) {
          const q = r % big[a + 1];
          r = Math.floor(r / big[a + 1]);
          const p = q * block[a] + pos[a] - start[a];
          if (p < 0 || p >= count[a]) inside = false;
          bigAt += q * bs[a + 1];
          smallAt += p * ss[a + 1];
        }
        if (!inside) continue;
        for (let i = 0; i < rest; i++) {
          idxBig.push(bigAt + i);
          idxSmall.push(smallAt + i);
        }
      }
    }
  }
  return { idxSmall: Int32Array.from(idxSmall), idxBig: Int32Array.from(idxBig) };
}

defineOp({
  op: 'SpaceToBatchND', inputs: [3, 3],
  run(ins, node) {
    const x = need(ins, 0, node), block = Array.from(numbers(need(ins, 1, node))), pads = Array.from(numbers(need(ins, 2, node)));
    blockOf(node, block, pads, x.shape.length);
    const M = block.length;
    const padded = block.map((_, a) => x.shape[a + 1] + pads[2 * a] + pads[2 * a + 1]);
    if (padded.some((p, a) => p % block[a] !== 0)) fail(node, `padded sizes [${padded}] are not multiples of block_shape [${block}]`);
    const shape = [x.shape[0] * sizeOf(block), ...padded.map((p, a) => p / block[a]), ...x.shape.slice(M + 1)];
    const { idxSmall, idxBig } = mapping(x.shape, block, pads.filter((_, i) => i % 2 === 0), shape, x.shape.slice(1, M + 1));
    // Padding positions stay zero: start from a zero tensor and place the input's elements.
    const out = zeros(x.dtype, shape);
    const src = x.data as Float32Array, dst = out.data as Float32Array;
    for (let i = 0; i < idxBig.length; i++) dst[idxBig[i]] = src[idxSmall[i]];
    return [out];
  },
});

defineOp({
  op: 'BatchToSpaceND', inputs: [3, 3],
  run(ins, node) {
    const x = need(ins, 0, node), block = Array.from(numbers(need(ins, 1, node))), crops = Array.from(numbers(need(ins, 2, node)));
    blockOf(node, block, crops, x.shape.length);
    const M = block.length, blocks = sizeOf(block);
    if (x.shape[0] % blocks !== 0) fail(node, `batch ${x.shape[0]} is not a multiple of the block size ${blocks}`);
    const full = block.map((b, a) => x.shape[a + 1] * b);
    const kept = full.map((f, a) => f - crops[2 * a] - crops[2 * a + 1]);
    if (kept.some((k) => k < 0)) fail(node, `crops [${crops}] exceed the sizes [${full}]`);
    const shape = [x.shape[0] / blocks, ...kept, ...x.shape.slice(M + 1)];
    const { idxSmall, idxBig } = mapping(shape, block, crops.filter((_, i) => i % 2 === 0), x.shape, kept);
    const out = zeros(x.dtype, shape);
    const src = x.data as Float32Array, dst = out.data as Float32Array;
    for (let i = 0; i < idxSmall.length; i++) dst[idxSmall[i]] = src[idxBig[i]];
    return [out];
  },
});

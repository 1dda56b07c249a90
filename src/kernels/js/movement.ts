import { ints, numbers, sizeOf, stridesOf, zeros, type Tensor } from '../../ir/tensor.js';
import { attrInt, attrStr, axisOf, indexIn, registerKernel } from '../../ops/registry.js';
import { mergedAxes, permOf, sliceByInputs, sliceOf } from '../strided.js';
import { splitParts } from '../../ops/concat.js';

/**
 * Data movement as row copies and strided loops (the reference computes a flat index per
 * element): Transpose with its innermost output axis as a strided run, constant Pad as row
 * copies, Gather and Split as block copies. Any dtype, int64 included (typed arrays copy their own elements).
 */

/** A strided view of x copied out: output shape `shape`, element (c0..cr) at offset + sum c_a * strides[a]; the last axis as one run. */
function stridedCopy(x: Tensor, outShape: number[], offset: number, outStrides: number[]): Tensor {
  const y = zeros(x.dtype, outShape);
  const { shape, strides } = mergedAxes(outShape, outStrides);
  const r = shape.length;
  const src = x.data as Float32Array, dst = y.data as Float32Array;
  const inner = shape[r - 1] ?? 1, step = strides[r - 1] ?? 1;
  const outer = inner > 0 ? sizeOf(shape) / inner : 0;
  const ctr = new Array<number>(Math.max(r - 1, 0)).fill(0);
  let p = offset, o = 0;
  for (let k = 0; k < outer; k++) {
    if (step === 1) dst.set(src.subarray(p, p + inner), o);
    else for (let i = 0; i < inner; i++) dst[o + i] = src[p + i * step];
    o += inner;
    for (let a = r - 2; a >= 0; a--) {
      p += strides[a];
      if (++ctr[a] < shape[a]) break;
      p -= strides[a] * shape[a];
      ctr[a] = 0;
    }
  }
  return y;
}

function transpose(x: Tensor, perm: number[]): Tensor {
  const st = stridesOf(x.shape);
  return stridedCopy(x, perm.map((p) => x.shape[p]), 0, perm.map((p) => st[p]));
}

registerKernel({
  op: 'Slice', backend: 'js', variant: 'strided-rows',
  supports: sliceByInputs,
  async run(ins, node) {
    const { shape, offset, strides } = sliceOf(ins, node);
    return [stridedCopy(ins[0]!, shape, offset, strides)];
  },
});

registerKernel({
  op: 'Transpose', backend: 'js', variant: 'strided-rows',
  supports: (ins, node) => !!ins[0] && ins[0].shape.length >= 1 && sizeOf(ins[0].shape) > 0 && !!permOf(node, ins[0].shape.length),
  async run(ins, node) {
    return [transpose(ins[0]!, permOf(node, ins[0]!.shape.length)!)];
  },
});

registerKernel({
  op: 'Pad', backend: 'js', variant: 'constant-rows',
  supports: (ins, node) => !!ins[0] && !!ins[1] && !ins[3] && attrStr(node, 'mode', 'constant') === 'constant' && ins[0].dtype !== 'int64'
    && ints(ins[1]).length === 2 * ins[0].shape.length && ints(ins[1]).every((p) => p >= 0) && ins[0].shape.length >= 1,
  async run(ins) {
    const x = ins[0]!, pads = ints(ins[1]!);
    const value = ins[2] && ins[2].data.length ? Number(ins[2].data[0]) : 0;
    const y = zeros(x.dtype, x.shape.map((d, i) => d + pads[i] + pads[i + x.shape.length]));
    const dst = y.data as Float32Array, src = x.data as Float32Array;
    if (value !== 0) dst.fill(value);
    // Trailing axes without padding are one run with the axis before them (NHWC's channels: rows of
    // W * C values, not W rows of C; copying 3 values at a time took 6 ms for a 224x224 image).
    const dims = [...x.shape], begin = pads.slice(0, dims.length), end = pads.slice(dims.length);
    while (dims.length > 1 && begin[dims.length - 1] === 0 && end[dims.length - 1] === 0) {
      const n = dims.pop()!;
      begin.pop();
      end.pop();
      dims[dims.length - 1] *= n;
      begin[dims.length - 1] *= n;
      end[dims.length - 1] *= n;
    }
    // Rows of the last axis copied whole, at their padded offsets.
    const r = dims.length, W = dims[r - 1], rows = sizeOf(dims) / Math.max(W, 1), ys = stridesOf(dims.map((d, i) => d + begin[i] + end[i]));
    const ctr = new Array<number>(r - 1).fill(0);
    for (let k = 0; k < rows; k++) {
      let o = begin[r - 1];
      for (let a = 0; a < r - 1; a++) o += (ctr[a] + begin[a]) * ys[a];
      dst.set(src.subarray(k * W, (k + 1) * W), o);
      for (let a = r - 2; a >= 0; a--) {
        if (++ctr[a] < dims[a]) break;
        ctr[a] = 0;
      }
    }
    return [y];
  },
});

/**
 * Gather with whole blocks after the axis (a [3, B, H, N, d] tensor split into q, k and v by scalar
 * indices): one copy per index and outer position, where the reference lists every element's offset.
 */
registerKernel({
  op: 'Gather', backend: 'js', variant: 'blocks',
  supports: (ins, node) => {
    const x = ins[0], ix = ins[1];
    if (!x || !ix || (ix.dtype !== 'int32' && ix.dtype !== 'int64')) return false;
    const a = attrInt(node, 'axis', 0), r = x.shape.length;
    return a >= -r && a < r && sizeOf(x.shape.slice((a < 0 ? a + r : a) + 1)) >= 8;
  },
  async run(ins, node) {
    const x = ins[0]!, ix = ins[1]!;
    const axis = axisOf(node, attrInt(node, 'axis', 0), x.shape.length);
    const D = x.shape[axis], outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1));
    const v = numbers(ix), K = v.length;
    const y = zeros(x.dtype, [...x.shape.slice(0, axis), ...ix.shape, ...x.shape.slice(axis + 1)]);
    const src = x.data as Float32Array, dst = y.data as Float32Array;
    const at = Array.from(v, (k) => indexIn(node, k, D));
    let p = 0;
    for (let o = 0; o < outer; o++) {
      for (let k = 0; k < K; k++, p += inner) {
        const from = (o * D + at[k]) * inner;
        dst.set(src.subarray(from, from + inner), p);
      }
    }
    return [y];
  },
});

/** Split as one block copy per output and outer position, where the reference lists every element's offset. */
registerKernel({
  op: 'Split', backend: 'js', variant: 'blocks',
  supports: (ins, node) => {
    const x = ins[0], r = x?.shape.length ?? 0, a = attrInt(node, 'axis', 0);
    return !!x && a >= -r && a < r && typeof splitParts(ins, node, x.shape[a < 0 ? a + r : a]) !== 'string';
  },
  async run(ins, node) {
    const x = ins[0]!, axis = axisOf(node, attrInt(node, 'axis', 0), x.shape.length), D = x.shape[axis];
    const parts = splitParts(ins, node, D) as number[];
    const outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1)), src = x.data as Float32Array;
    let at = 0;
    return parts.map((p) => {
      const y = zeros(x.dtype, x.shape.map((d, i) => (i === axis ? p : d))), dst = y.data as Float32Array, len = p * inner;
      for (let o = 0; o < outer; o++) dst.set(src.subarray((o * D + at) * inner, (o * D + at) * inner + len), o * len);
      at += p;
      return y;
    });
  },
});

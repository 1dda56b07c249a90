import { engineIfReady, stageF32 } from '../../backends/wasm/engine.js';
import { sizeOf, stridesOf, type Tensor } from '../../ir/tensor.js';
import { registerKernel } from '../../ops/registry.js';
import { mergedAxes, permOf, sliceByInputs, sliceOf } from '../strided.js';
import { finish } from './eltwise.js';

/**
 * Float32 Transpose and Slice in wasm (copy_strided_x32): the strided-rows twins' walk
 * (src/kernels/js/movement.ts), each run of the last axis moved as v128 words instead of one
 * typed-array copy per run (Swin-T's window transposes are runs of 32-96 floats), and the output
 * kept in wasm memory for the next kernel.
 */
function stridedCopy(x: Tensor, outShape: number[], offset: number, outStrides: number[]): Tensor {
  const e = engineIfReady()!;
  const { shape, strides } = mergedAxes(outShape, outStrides);
  const r = shape.length, src = stageF32(e, x.data as Float32Array), axes = e.heap.alloc(12 * r);
  try {
    new Int32Array(e.memory.buffer, axes, 2 * r).set([...shape, ...strides]);
    const out = e.heap.alloc(sizeOf(outShape) * 4);
    e.kernels.copy_strided_x32(src.ptr + 4 * offset, out, r, axes, axes + 4 * r, axes + 8 * r);
    return finish(e, out, outShape);
  } finally {
    src.release();
    e.heap.release(axes);
  }
}

registerKernel({
  op: 'Transpose', backend: 'wasm', variant: 'x32-strided',
  supports: (ins, node) => !!engineIfReady() && ins[0]?.dtype === 'float32' && sizeOf(ins[0].shape) > 0 && !!permOf(node, ins[0].shape.length),
  async run(ins, node) {
    const x = ins[0]!, perm = permOf(node, x.shape.length)!, st = stridesOf(x.shape);
    return [stridedCopy(x, perm.map((p) => x.shape[p]), 0, perm.map((p) => st[p]))];
  },
});

registerKernel({
  op: 'Slice', backend: 'wasm', variant: 'x32-strided',
  supports: (ins) => !!engineIfReady() && ins[0]?.dtype === 'float32' && sliceByInputs(ins),
  async run(ins, node) {
    const { shape, offset, strides } = sliceOf(ins, node);
    if (sizeOf(shape) === 0) return [{ dtype: 'float32', shape, data: new Float32Array(0) }];
    return [stridedCopy(ins[0]!, shape, offset, strides)];
  },
});

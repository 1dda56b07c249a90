import { engineIfReady, stageF32 } from '../../backends/wasm/engine.js';
import { sizeOf } from '../../ir/tensor.js';
import { registerKernel } from '../../ops/registry.js';
import { contiguousRun } from '../../ops/reduce.js';
import { finish } from './eltwise.js';

/**
 * Means and sums over a contiguous run of axes in wasm SIMD (sum_middle_f32): GlobalAveragePool (a
 * squeeze-excite block's mean over each plane), ReduceMean and ReduceSum. float32 sums, so within float
 * tolerance of their twins (src/ops/pool.ts, src/ops/reduce.ts), which add in float64.
 */
registerKernel({
  op: 'GlobalAveragePool', backend: 'wasm', variant: 'f32-simd-rows',
  supports: (ins) => !!engineIfReady() && ins[0]?.dtype === 'float32' && ins[0].shape.length >= 3 && sizeOf(ins[0].shape) > 0,
  async run(ins) {
    const x = ins[0]!, [N, C] = x.shape, P = sizeOf(x.shape.slice(2));
    return [sumMiddle(x.data as Float32Array, N * C, P, 1, P, [N, C, ...x.shape.slice(2).map(() => 1)])];
  },
});

for (const op of ['ReduceMean', 'ReduceSum']) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-simd',
    supports: (ins, node) => !!engineIfReady() && contiguousRun(ins, node) !== undefined,
    async run(ins, node) {
      const { outer, R, inner, shape } = contiguousRun(ins, node)!;
      return [sumMiddle(ins[0]!.data as Float32Array, outer, R, inner, op === 'ReduceMean' ? R : 1, shape)];
    },
  });
}

function sumMiddle(x: Float32Array, outer: number, R: number, inner: number, divisor: number, shape: number[]) {
  const e = engineIfReady()!, src = stageF32(e, x);
  try {
    const out = e.heap.alloc(outer * inner * 4);
    e.kernels.sum_middle_f32(src.ptr, out, outer, R, inner, divisor);
    return finish(e, out, shape);
  } finally {
    src.release();
  }
}

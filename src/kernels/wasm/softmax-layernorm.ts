import { engineIfReady, stageF32 } from '../../backends/wasm/engine.js';
import { sizeOf } from '../../ir/tensor.js';
import { lastAxisLayerNorm } from '../../ops/normalization.js';
import { attrFloat, registerKernel } from '../../ops/registry.js';
import { softmaxRowLength } from '../../ops/softmax.js';
import { finish } from './eltwise.js';

/**
 * Softmax and LogSoftmax over contiguous rows (the last axis; before opset 13, the axes from `axis` on)
 * and LayerNormalization over the last axis in wasm SIMD
 * (softmax_rows_f32, layernorm_rows_f32): exponentials by a polynomial and float32 outputs, so
 * within float tolerance of their twins (src/ops/softmax.ts, src/ops/normalization.ts).
 */
for (const op of ['Softmax', 'LogSoftmax']) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-simd-rows',
    supports: (ins, node, ctx) => !!engineIfReady() && softmaxRowLength(ins, node, ctx) !== undefined,
    async run(ins, node, ctx) {
      const e = engineIfReady()!, x = ins[0]!, len = softmaxRowLength(ins, node, ctx)!, n = sizeOf(x.shape);
      const src = stageF32(e, x.data as Float32Array);
      try {
        const out = e.heap.alloc(n * 4);
        e.kernels.softmax_rows_f32(src.ptr, out, n / len, len, op === 'LogSoftmax' ? 1 : 0);
        return [finish(e, out, x.shape)];
      } finally {
        src.release();
      }
    },
  });
}

registerKernel({
  op: 'LayerNormalization', backend: 'wasm', variant: 'f32-simd-rows',
  supports: (ins, node) => !!engineIfReady() && lastAxisLayerNorm(ins, node) && sizeOf(ins[0]!.shape) > 0,
  async run(ins, node) {
    const e = engineIfReady()!, x = ins[0]!, D = sizeOf(ins[1]!.shape), n = sizeOf(x.shape);
    const staged = [x, ins[1]!, ins[2]].map((t) => (t ? stageF32(e, t.data as Float32Array) : undefined));
    try {
      const out = e.heap.alloc(n * 4);
      e.kernels.layernorm_rows_f32(staged[0]!.ptr, out, n / D, D, staged[1]!.ptr, staged[2]?.ptr ?? 0, attrFloat(node, 'epsilon', 1e-5));
      return [finish(e, out, x.shape)];
    } finally {
      for (const s of staged) s?.release();
    }
  },
});

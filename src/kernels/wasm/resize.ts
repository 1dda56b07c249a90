import { engineIfReady, stageF32 } from '../../backends/wasm/engine.js';
import { sizeOf } from '../../ir/tensor.js';
import { registerKernel } from '../../ops/registry.js';
import { resizePlan, type ResizeStep } from '../../ops/resize.js';
import { finish } from './eltwise.js';

/**
 * Resize and Upsample with at most two taps per output position (nearest and linear; cubic and
 * crop-and-resize stay with the reference) in wasm: each changed axis in turn, as the reference
 * does, in the same float64 arithmetic (resize_axis_f32), so the outputs are equal. The input is
 * read in place where the previous kernel left it in wasm memory, and the output stays there.
 */
const TAP = 24;

/** Whether every output position of every step has one or two taps. */
const twoTaps = (steps: ResizeStep[]) => steps.every((s) => s.taps.every((t) => t !== null && t[0].length <= 2));

for (const op of ['Resize', 'Upsample']) {
  registerKernel({
    op, backend: 'wasm', variant: 'f32-two-tap-rows',
    supports: (ins, node, ctx) => !!engineIfReady() && ins[0]?.dtype === 'float32' && sizeOf(ins[0].shape) > 0 && twoTaps(resizePlan(node, ins, ctx.opset).steps),
    async run(ins, node, ctx) {
      const e = engineIfReady()!, x = ins[0]!;
      const { steps } = resizePlan(node, ins, ctx.opset);
      let shape = x.shape.slice();
      const src = stageF32(e, x.data as Float32Array);
      let at = src.ptr, release = src.release;
      try {
        for (const s of steps) {
          const taps = e.heap.alloc(s.lenOut * TAP), view = new DataView(e.memory.buffer, taps, s.lenOut * TAP);
          s.taps.forEach((t, j) => {
            const [idx, w] = t!;
            view.setInt32(j * TAP, idx[0], true);
            view.setInt32(j * TAP + 4, idx.length === 2 ? idx[1] : -1, true);
            view.setFloat64(j * TAP + 8, w[0], true);
            view.setFloat64(j * TAP + 16, idx.length === 2 ? w[1] : 0, true);
          });
          const next = shape.map((d, i) => (i === s.axis ? s.lenOut : d));
          const out = e.heap.alloc(sizeOf(next) * 4);
          e.kernels.resize_axis_f32(at, out, sizeOf(shape.slice(0, s.axis)), shape[s.axis], sizeOf(shape.slice(s.axis + 1)), s.lenOut, taps);
          e.heap.release(taps);
          release();
          [at, shape] = [out, next];
          release = () => e.heap.release(out);
        }
        if (!steps.length) {
          // No axis changes: a copy, as the reference makes.
          const out = e.heap.alloc(sizeOf(shape) * 4);
          new Float32Array(e.memory.buffer, out, sizeOf(shape)).set(new Float32Array(e.memory.buffer, at, sizeOf(shape)));
          release();
          at = out;
        }
        release = () => {};
        return [finish(e, at, shape)];
      } finally {
        release();
      }
    },
  });
}

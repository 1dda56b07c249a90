import { engineIfReady } from '../../backends/wasm/engine.js';
import { sizeOf } from '../../ir/tensor.js';
import { attrInt, registerKernel } from '../../ops/registry.js';
import { finish } from './eltwise.js';

/**
 * Float32 Concat into wasm memory: the reference's block copies (src/ops/concat.ts), written into a
 * heap block the next kernel reads in place, instead of a fresh array (page faults on first touch)
 * that the next kernel would copy into wasm memory again.
 */
registerKernel({
  op: 'Concat', backend: 'wasm', variant: 'f32-blocks',
  supports: (ins, node) => {
    const x0 = ins[0], r = x0?.shape.length ?? 0;
    if (!engineIfReady() || r === 0 || node.attrs.axis === undefined) return false;
    const a = attrInt(node, 'axis', 0), axis = a < 0 ? a + r : a;
    return axis >= 0 && axis < r && ins.every((x) => x?.dtype === 'float32' && x.shape.length === r && x.shape.every((d, i) => i === axis || d === x0!.shape[i]))
      && ins.some((x) => sizeOf(x!.shape) > 0);
  },
  async run(ins, node) {
    const e = engineIfReady()!, xs = ins.map((x) => x!), r = xs[0].shape.length;
    const a = attrInt(node, 'axis', 0), axis = a < 0 ? a + r : a;
    const shape = xs[0].shape.slice();
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
    // Inputs already in wasm memory are read by address: the allocation below may grow (and, unshared, detach) it.
    const at = xs.map((x) => (x.data.buffer === e.memory.buffer ? x.data.byteOffset : -1));
    const n = sizeOf(shape), out = e.heap.alloc(n * 4);
    const mem = new Float32Array(e.memory.buffer), dst = mem.subarray(out / 4, out / 4 + n);
    const outer = sizeOf(shape.slice(0, axis)), row = sizeOf(shape.slice(axis));
    let pos = 0;
    for (const [i, x] of xs.entries()) {
      const chunk = sizeOf(x.shape.slice(axis));
      const src = at[i] >= 0 ? mem.subarray(at[i] / 4, at[i] / 4 + outer * chunk) : (x.data as Float32Array);
      for (let o = 0; o < outer; o++) dst.set(src.subarray(o * chunk, (o + 1) * chunk), o * row + pos);
      pos += chunk;
    }
    return [finish(e, out, shape)];
  },
});

import { getEngine } from './dist/backends/wasm/engine.js';
const e = await getEngine();
console.log(e.features);
for (const rel of [0,1]) {
  e.kernels.swizzle_bench(1e6, rel);
  const n = 2e7; const t0 = performance.now(); e.kernels.swizzle_bench(n, rel); const dt = performance.now()-t0;
  console.log(rel ? 'relaxed' : 'plain', (n*8*16/dt/1e6).toFixed(1), 'G lookups/s');
}
const buf = e.heap.alloc(16384); new Uint8Array(e.memory.buffer, buf, 16384).forEach((_, i, a) => a[i] = (i*7)&15);
e.kernels.swizzle_stream_bench(buf, 1e6);
{ const n = 5e7; const t0 = performance.now(); e.kernels.swizzle_stream_bench(buf, n); const dt = performance.now()-t0; console.log('stream', (n*64/dt/1e6).toFixed(1), 'G lookups/s'); }

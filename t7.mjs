import { profileKernel } from './dist/backends/wasm/backend.js';
import { convGeometry } from './dist/index.js';
import { LAYERS, layerData } from './dist/bench/layers.js';
import { benchTables } from './dist/bench/worker.js';
const l = LAYERS.seed;
const geometry = convGeometry([l.N, l.C, l.H, l.W], [l.O, l.C, l.K, l.K], { padding: l.pad });
for (const bits of (process.argv[2]??'1').split(',').map(Number)) {
  const { input, weight } = layerData(l, bits);
  const tables = benchTables(weight, l, bits);
  for (const threads of [1]) {
    const p = await profileKernel('pcilt', { input, tables, geometry, integer: true, threads }, 5);
    console.log(bits, threads, Object.entries(p).map(([k,v])=>`${k}=${v.toFixed(2)}`).join(' '));
  }
}

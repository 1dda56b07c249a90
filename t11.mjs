import { gpuKernelMs } from './dist/backends/webgpu/backend.js';
import { convGeometry, buildPcilt } from './dist/index.js';
import { LAYERS, layerData } from './dist/bench/layers.js';
const l = LAYERS[process.argv[2] ?? 'mnist-b64'];
const geometry = convGeometry([l.N, l.C, l.H, l.W], [l.O, l.C, l.K, l.K], { padding: l.pad });
for (const bits of [1, 8]) {
  const { input, weight } = layerData(l, bits);
  const tables = buildPcilt({data: weight, shape:[l.O,l.C,l.K,l.K]}, {activationBits: bits, bitSerial: true, groupSize: 4});
  const t0 = performance.now();
  const a = await gpuKernelMs('pcilt', { input, tables, geometry, integer: true }, 3);
  const b = await gpuKernelMs('direct', { input, weight, geometry, integer: true, activationBits: bits }, 3);
  console.log(bits, a, b, (performance.now()-t0).toFixed(0));
}

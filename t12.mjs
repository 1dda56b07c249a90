import { buildPcilt, pciltConv2d } from 'faster-cnn';
import { getGpu } from './dist/backends/webgpu/device.js';
const w = { data: Int8Array.from({ length: 8 * 4 * 9 }, (_, i) => (i % 13) - 6), shape: [8, 4, 3, 3] };
const x = { data: Uint8Array.from({ length: 4 * 10 * 10 }, (_, i) => i % 4), shape: [1, 4, 10, 10] };
const t = buildPcilt(w, { activationBits: 2, bitSerial: true, groupSize: 4 });
const good = await pciltConv2d(x, t, { padding: 1, backend: 'webgpu' });
const ctx = await getGpu();
const pending = pciltConv2d(x, t, { padding: 1, backend: 'webgpu' });
ctx.device.destroy();
try { const y = await pending; console.log('resolved', y.data.slice(0,5), good.data.slice(0,5), ctx.lost); } catch (e) { console.log('rejected', e.message); }

import { performance } from 'node:perf_hooks';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { buildPcilt } from '../tables/pcilt.js';
import { formatBytes } from '../errors.js';
import { seedTableBytes } from './tables.js';
import { seededRandom } from '../nn/tensor.js';

/** `faster-cnn demo`: builds tables for the seed's layer and checks PCILT against direct multiplication. */
export async function demoCommand(): Promise<void> {
  const rand = seededRandom(1).uniform;
  const seedW = { data: Int8Array.from({ length: 128 * 64 * 9 }, () => Math.floor(rand() * 255) - 127), shape: [128, 64, 3, 3] };
  console.log(`Seed layer 64 -> 128, 3x3: the seed held ${formatBytes(seedTableBytes(128, 64, 3))} of float32 tables.`);
  for (const bits of [1, 2, 4, 8]) {
    const t = buildPcilt(seedW, { activationBits: bits, bitSerial: bits > 1, groupSize: 4 });
    console.log(`  ${bits}-bit activations: ${t.variant}, ${t.numTables} tables x ${t.tableSize} ${t.entryType} = ${formatBytes(t.bytes)}`);
  }
  console.log('\nMNIST-style layer 1x32x14x14 -> 64, 3x3, pad 1 (reference JS kernels):');
  const w = { data: Int8Array.from({ length: 64 * 32 * 9 }, () => Math.floor(rand() * 255) - 127), shape: [64, 32, 3, 3] };
  for (const bits of [1, 2, 4, 8]) {
    const x = { data: Uint8Array.from({ length: 32 * 14 * 14 }, () => Math.floor(rand() * (1 << bits))), shape: [1, 32, 14, 14] };
    const t = buildPcilt(w, { activationBits: bits });
    const t0 = performance.now();
    const y = await pciltConv2d(x, t, { padding: 1, backend: 'js' });
    const t1 = performance.now();
    const z = await conv2dDirect(x, w, { padding: 1, backend: 'js' });
    const t2 = performance.now();
    const same = y.data.every((v, i) => v === z.data[i]);
    console.log(`  ${bits}-bit: PCILT ${(t1 - t0).toFixed(1)} ms (${t.variant} g=${t.groupSize}, ${formatBytes(t.bytes)}), direct ${(t2 - t1).toFixed(1)} ms, outputs ${same ? 'identical' : 'DIFFER'}`);
    if (!same) process.exitCode = 1;
  }
}

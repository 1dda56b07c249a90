import { writeFileSync } from 'node:fs';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { convGeometry } from '../conv/geometry.js';
import { buildPcilt } from '../tables/pcilt.js';
import { formatBytes } from '../errors.js';
import { LAYERS, layerData, macs } from './layers.js';

export interface GpuResult {
  impl: 'pcilt-webgpu' | 'direct-webgpu';
  layer: string;
  bits: number;
  medianMs: number;
  gmacs: number;
  tableBytes: number;
  method: string;
  outputOk: boolean;
}

/**
 * `faster-cnn bench --backend webgpu`: PCILT against direct dot4I8Packed on the GPU, same data,
 * one process; GPU time from timestamp queries where the adapter has them. Outputs are checked
 * against the wasm direct kernel (itself tested exact against the JS reference).
 */
export async function benchWebgpu(layers: string[], bitsList: number[], runs: number, json: boolean, report?: string) {
  const { gpuKernelMs } = await import('../backends/webgpu/backend.js');
  const { getGpu } = await import('../backends/webgpu/device.js');
  const ctx = await getGpu();
  const results: GpuResult[] = [];
  for (const layer of layers) {
    const l = LAYERS[layer];
    const shape = [l.O, l.C, l.K, l.K];
    const geometry = convGeometry([l.N, l.C, l.H, l.W], shape as never, { padding: l.pad });
    for (const bits of bitsList) {
      const { input, weight } = layerData(l, bits);
      const tables = buildPcilt({ data: weight, shape }, { activationBits: bits, bitSerial: true, groupSize: 4 });
      const x = { data: input, shape: [l.N, l.C, l.H, l.W] };
      const ref = await conv2dDirect(x, { data: weight, shape }, { padding: l.pad, backend: 'wasm' });
      const y = await pciltConv2d(x, tables, { padding: l.pad, backend: 'webgpu' });
      const z = await conv2dDirect(x, { data: weight, shape }, { padding: l.pad, activationBits: bits, backend: 'webgpu' });
      const same = (a: ArrayLike<number>) => a.length === ref.data.length && ref.data.every((v, i) => v === a[i]);
      for (const [impl, op, job, ok] of [
        ['pcilt-webgpu', 'pcilt', { input, tables, geometry, integer: true }, same(y.data)],
        ['direct-webgpu', 'direct', { input, weight, geometry, integer: true, activationBits: bits }, same(z.data)],
      ] as const) {
        const t = await gpuKernelMs(op, job as never, runs);
        const r: GpuResult = { impl, layer, bits, medianMs: t.ms, gmacs: macs(l) / t.ms / 1e6, tableBytes: impl === 'pcilt-webgpu' ? tables.bytes : 0, method: t.method, outputOk: ok };
        results.push(r);
        process.stderr.write(`[bench webgpu] ${layer} ${impl.padEnd(14)} bits=${bits} ${t.ms.toFixed(3).padStart(10)} ms ${r.gmacs.toFixed(1).padStart(8)} GMAC/s ${ok ? 'output ok' : 'OUTPUT MISMATCH'}\n`);
      }
    }
  }
  const out = { adapter: ctx.adapterName, timing: results[0]?.method, results };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`\nWebGPU on ${ctx.adapterName} (${out.timing}):`);
    for (const r of results) console.log(`${r.layer.padEnd(10)} ${r.impl.padEnd(14)} ${r.bits}-bit ${r.medianMs.toFixed(3).padStart(10)} ms ${r.gmacs.toFixed(1).padStart(8)} GMAC/s`);
  }
  if (report) {
    const rows = results.map((r) => `| ${r.layer} | ${r.impl} | ${r.bits} | ${r.medianMs.toFixed(3)} | ${r.gmacs.toFixed(1)} | ${r.tableBytes ? formatBytes(r.tableBytes) : '-'} | ${r.outputOk ? 'matches' : 'MISMATCH'} |`);
    writeFileSync(report, `# WebGPU benchmark\n\nAdapter: ${ctx.adapterName}. Timing: ${out.timing}.\n` +
      `PCILT uses bit-serial tables with 4 activations per index (16 entries, staged in workgroup memory).\n\n` +
      `| layer | impl | bits | GPU ms | GMAC/s | tables | output |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`);
  }
  if (results.some((r) => !r.outputOk)) throw new Error('WebGPU outputs disagree with the reference');
  return out;
}

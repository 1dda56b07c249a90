import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { convGeometry } from '../conv/geometry.js';
import { buildPcilt, type PciltTables } from '../tables/pcilt.js';
import type { DirectJob, PciltJob } from '../backends/types.js';
import { ArgumentError, formatBytes } from '../errors.js';
import { LAYERS, layerData, macs } from './layers.js';
import { DIRECT_CONFIG, PCILT_CONFIG, type DirectGpuConfig, type PciltGpuConfig } from '../backends/webgpu/shaders.js';

export interface GpuResult {
  impl: 'pcilt-webgpu' | 'direct-webgpu';
  layer: string;
  bits: number;
  medianMs: number;
  gmacs: number;
  tableBytes: number;
  method: string;
  outputOk: boolean;
  /** The kernel's workgroup shape: pixels (invocations) x channels; PCILT: and activations per index. */
  shape?: string;
  /** PCILT: the time of its index pass alone (part of medianMs). */
  indexPassMs?: number;
  /** The default kernel shape and tables (not a --sweep variant). */
  main?: boolean;
  /** Each round's median, where medianMs is the best of several rounds. */
  roundMs?: number[];
}

/**
 * Activations per index of the bench's bit-serial tables, by activation bits: measured on an H100
 * (docs/perf-notes.md section 25), 4 (16 entries) at 1 bit, 5 (32 entries: 20% fewer look-ups,
 * twice the staging) above.
 */
const groupFor = (bits: number) => (bits === 1 ? 4 : 5);

interface Variant {
  cfg: PciltGpuConfig;
  group: number;
}

/** Direct kernel shapes `--sweep` times besides the default. */
const SWEEP_DIRECT: DirectGpuConfig[] = [
  { threads: 128, channels: 32 }, { threads: 512, channels: 32 }, { threads: 768, channels: 32 }, { threads: 256, channels: 64 }, { threads: 256, channels: 16 },
];

/** PCILT kernel shapes and table groups `--sweep` times (the default's shape again with the other group). */
const SWEEP: Variant[] = [4, 5].flatMap((group) => [
  { threads: 256, pairs: 32 }, { threads: 384, pairs: 16 }, { threads: 512, pairs: 16 }, { threads: 512, pairs: 32 }, { threads: 768, pairs: 16 }, { threads: 1024, pairs: 16 },
].map((cfg) => ({ cfg, group })));

/**
 * `faster-cnn bench --backend webgpu`: PCILT against direct dot4I8Packed on the GPU, same data,
 * one process; GPU time from timestamp queries where the adapter has them. Outputs are checked
 * against the wasm direct kernel (itself tested exact against the JS reference).
 */
export async function benchWebgpu(layers: string[], bitsList: number[], runs: number, json: boolean, report?: string, sweep = false, anchorFile?: string) {
  const anchors = anchorFile ? readAnchors(anchorFile) : [];
  const { gpuKernelMs, pciltWith, directWith } = await import('../backends/webgpu/backend.js');
  const { getGpu } = await import('../backends/webgpu/device.js');
  const ctx = await getGpu();
  process.stderr.write(`[bench webgpu] ${ctx.adapterName}: ${JSON.stringify(ctx.facts)}\n`);
  const results: GpuResult[] = [];
  for (const layer of layers) {
    const l = LAYERS[layer];
    const shape = [l.O, l.C, l.K, l.K];
    const geometry = convGeometry([l.N, l.C, l.H, l.W], shape as never, { padding: l.pad });
    for (const bits of bitsList) {
      const { input, weight } = layerData(l, bits);
      const tables = new Map<number, PciltTables>();
      const tablesOf = (group: number) => {
        if (!tables.has(group)) tables.set(group, buildPcilt({ data: weight, shape }, { activationBits: bits, bitSerial: true, groupSize: group }));
        return tables.get(group)!;
      };
      const x = { data: input, shape: [l.N, l.C, l.H, l.W] };
      const ref = await conv2dDirect(x, { data: weight, shape }, { padding: l.pad, backend: 'wasm' });
      const same = (a: ArrayLike<number>) => a.length === ref.data.length && ref.data.every((v, i) => v === a[i]);
      const y = await pciltConv2d(x, tablesOf(groupFor(bits)), { padding: l.pad, backend: 'webgpu' });
      const z = await conv2dDirect(x, { data: weight, shape }, { padding: l.pad, activationBits: bits, backend: 'webgpu' });
      const log = (r: GpuResult) => {
        results.push(r);
        process.stderr.write(`[bench webgpu] ${layer} ${r.impl.padEnd(14)} bits=${bits} ${r.medianMs.toFixed(4).padStart(10)} ms ${r.gmacs.toFixed(1).padStart(8)} GMAC/s ${r.outputOk ? 'output ok' : 'OUTPUT MISMATCH'}${r.shape ? ` (${r.shape}${r.indexPassMs !== undefined ? `; index pass ${r.indexPassMs.toFixed(4)} ms` : ''})` : ''}\n`);
      };
      /** Times a kernel `rounds` times (each a median of `runs` passes) and records the best. */
      const time = async (impl: GpuResult['impl'], job: PciltJob | DirectJob, ok: boolean, cfg: PciltGpuConfig | DirectGpuConfig, rounds: number) => {
        const t = [];
        for (let k = 0; k < rounds; k++) t.push(await gpuKernelMs(impl === 'pcilt-webgpu' ? 'pcilt' : 'direct', job, runs, cfg));
        const ms = Math.min(...t.map((x) => x.ms));
        const r: GpuResult = { impl, layer, bits, medianMs: ms, gmacs: macs(l) / ms / 1e6, tableBytes: 0, method: t[0].method, outputOk: ok };
        if (rounds > 1) r.roundMs = t.map((x) => x.ms);
        return r;
      };
      const pciltJob = (group: number): PciltJob => ({ input, tables: tablesOf(group), geometry, integer: true });
      const timePcilt = async (v: Variant, ok: boolean, rounds = 1) => {
        const job = pciltJob(v.group);
        const r = await time('pcilt-webgpu', job, ok, v.cfg, rounds);
        r.tableBytes = job.tables.bytes;
        r.shape = `${v.cfg.threads} px x ${2 * v.cfg.pairs} ch, ${v.group} activations an index`;
        r.indexPassMs = (await gpuKernelMs('pcilt-index', job, runs, v.cfg)).ms;
        log(r);
        return r;
      };
      const direct: DirectJob = { input, weight, geometry, integer: true, activationBits: bits };
      const timeDirect = async (k: DirectGpuConfig, ok: boolean, rounds = 1) => {
        const r = await time('direct-webgpu', direct, ok, k, rounds);
        r.shape = `${k.threads} px x ${k.channels} ch`;
        log(r);
        return r;
      };
      // The default kernels: best of 3 rounds each (a GPU's clocks can dip for a while).
      (await timePcilt({ cfg: PCILT_CONFIG, group: groupFor(bits) }, same(y.data), 3)).main = true;
      (await timeDirect(DIRECT_CONFIG, same(z.data), 3)).main = true;
      for (const v of sweep ? SWEEP : []) await timePcilt(v, same(await pciltWith(pciltJob(v.group), v.cfg)));
      for (const k of sweep ? SWEEP_DIRECT : []) await timeDirect(k, same(await directWith(direct, k)));
    }
  }
  const out = { adapter: ctx.adapterName, facts: ctx.facts, timing: results[0]?.method, results };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`\nWebGPU on ${ctx.adapterName} (${out.timing}):`);
    for (const r of results) console.log(`${r.layer.padEnd(10)} ${r.impl.padEnd(14)} ${r.bits}-bit ${r.medianMs.toFixed(4).padStart(10)} ms ${r.gmacs.toFixed(1).padStart(8)} GMAC/s${r.shape ? ` (${r.shape})` : ""}`);
  }
  if (report) writeFileSync(report, gpuReport(out, anchors));
  if (results.some((r) => !r.outputOk)) throw new Error('WebGPU outputs disagree with the reference');
  return out;
}

/** One line of scripts/gpu/torch_anchor.py's output: PyTorch on the same layer and GPU. */
interface Anchor {
  impl: string;
  device: string;
  medianMs?: number;
  error?: string;
}

function readAnchors(file: string): Anchor[] {
  if (!existsSync(file)) throw new ArgumentError('--anchor', file, 'a file of JSON lines written by scripts/gpu/torch_anchor.py');
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Anchor);
}

/** The GPU report: the default kernels, the PyTorch anchor, the issue's targets, and any sweep. */
function gpuReport(out: { adapter: string; timing?: string; results: GpuResult[] }, anchors: Anchor[]): string {
  const r = out.results;
  const main = r.filter((x) => x.main && x.impl === 'pcilt-webgpu');
  const direct = (x: GpuResult) => r.find((d) => d.impl === 'direct-webgpu' && d.main && d.layer === x.layer && d.bits === x.bits)!;
  const ms = (v: number) => v.toFixed(3);
  const lines = [
    '# WebGPU benchmark on a real GPU',
    '',
    `Adapter: ${out.adapter}. Timing: ${out.timing}. Generated by \`scripts/gpu/run-on-device.sh\` ` +
      '(`faster-cnn bench --backend webgpu --anchor torch.json`); every output checked equal to the wasm reference.',
    '',
    'PCILT: an index pass packs each output pixel\'s table indices once per input (bit-serial, 4-5 activations an index); ' +
      'the look-up pass stages int16 table rows in workgroup memory, two channels a 32-bit word, and each invocation adds ' +
      'the rows its pixel\'s indices select. Direct: a pack pass writes each pixel\'s receptive field as int8 quads once per input; ' +
      `each invocation then multiplies its pixel's quads with ${DIRECT_CONFIG.channels} channels' weights (staged in workgroup memory) by dot4I8Packed, ${DIRECT_CONFIG.threads} pixels a workgroup.`,
    '',
    '| layer | bits | PCILT ms | of which index pass | direct ms | PCILT vs direct | GMAC/s (PCILT) | kernel | tables |',
    '|---|---|---|---|---|---|---|---|---|',
    ...main.map((x) => `| ${x.layer} | ${x.bits} | ${ms(x.medianMs)} | ${ms(x.indexPassMs ?? 0)} | ${ms(direct(x).medianMs)} | ` +
      `${(direct(x).medianMs / x.medianMs).toFixed(2)}x | ${x.gmacs.toFixed(0)} | ${x.shape} | ${formatBytes(x.tableBytes)} |`),
  ];
  if (anchors.length) {
    lines.push('', `PyTorch on the seed layer, ${anchors[0].device} (\`scripts/gpu/torch_anchor.py\`, CUDA events, median of 50):`, '',
      '| PyTorch | ms |', '|---|---|', ...anchors.map((a) => `| ${a.impl} | ${a.medianMs !== undefined ? ms(a.medianMs) : a.error} |`));
  }
  const seed = (bits: number) => main.find((x) => x.layer === 'seed' && x.bits === bits);
  const check = (label: string, x: GpuResult | undefined, ok: (x: GpuResult) => boolean, show: (x: GpuResult) => string) =>
    x ? `- ${label}: ${show(x)}, ${ok(x) ? 'met' : 'missed'}` : `- ${label}: not run`;
  lines.push('', 'Targets (seed layer):', '',
    check('4-bit <= 0.33 ms (the seed\'s cuDNN figure)', seed(4), (x) => x.medianMs <= 0.33, (x) => `${ms(x.medianMs)} ms`),
    check('1-bit <= 0.15 ms', seed(1), (x) => x.medianMs <= 0.15, (x) => `${ms(x.medianMs)} ms`),
    ...[1, 2].map((b) => check(`${b}-bit PCILT >= 1.5x direct`, seed(b), (x) => direct(x).medianMs / x.medianMs >= 1.5, (x) => `${(direct(x).medianMs / x.medianMs).toFixed(2)}x`)));
  const sweep = r.filter((x) => !x.main);
  if (sweep.length) {
    lines.push('', 'Sweep (`--sweep`): every other kernel shape and table group tried (one round each):', '',
      '| layer | bits | kernel | shape | ms | of which index pass |', '|---|---|---|---|---|---|',
      ...sweep.map((x) => `| ${x.layer} | ${x.bits} | ${x.impl} | ${x.shape} | ${ms(x.medianMs)} | ${x.indexPassMs !== undefined ? ms(x.indexPassMs) : '-'} |`));
  }
  return `${lines.join('\n')}\n`;
}

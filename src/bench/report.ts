import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { formatBytes } from '../errors.js';
import type { BenchReport, BenchResult } from './bench.js';
import { LAYERS, macs } from './layers.js';
import { lineChart } from './svg.js';

interface Phase { setup: number; pack: number; compute: number; store: number; copyOut: number; total: number }
interface Profile {
  profiles: { layer: string; bits: number; threads: number; pcilt: Phase; direct: Phase; lookups: number; lookupsPerSecond: number }[];
  micro: { swizzlePeak: number; relaxedSwizzlePeak: number | null; swizzleStream: number; rowLoop?: { hot: number; random: number } };
  features: Record<string, unknown>;
}

const f = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

function get(rs: BenchResult[], impl: string, layer: string, bits: number, threads: number) {
  return rs.find((r) => r.impl === impl && r.layer === layer && r.bits === bits && r.threads === threads);
}

function resultTable(rs: BenchResult[], layer: string, threads: number): string {
  const singleThreaded = (impl: string) => impl === 'tfjs-wasm-f32' || impl === 'ref-js';
  const rows = rs.filter((r) => r.layer === layer && (r.threads === threads || (singleThreaded(r.impl) && r.threads === 1)));
  const bitsList = [...new Set(rows.map((r) => r.bits))].sort((a, b) => a - b);
  const lines = [`| impl | ${bitsList.map((b) => `${b}-bit ms (GMAC/s)`).join(' | ')} | table bytes | peak RSS | output |`,
    `|---|${bitsList.map(() => '---').join('|')}|---|---|---|`];
  for (const impl of [...new Set(rows.map((r) => r.impl))]) {
    const mine = bitsList.map((b) => rows.find((r) => r.impl === impl && r.bits === b));
    const any = mine.find(Boolean)!;
    const ok = mine.every((r) => !r || r.mismatches === 0 || r.mismatches === null);
    const label = singleThreaded(impl) && threads !== 1 ? `${impl} (1 thread)` : impl;
    lines.push(`| ${label} | ${mine.map((r) => (r ? `${f(r.medianMs)} (${f(r.gmacs, 0)})` : '-')).join(' | ')} | ${any.tableBytes ? formatBytes(any.tableBytes) : '-'} | ${f(any.rssMB, 0)} MB | ${ok ? 'matches' : 'MISMATCH'} |`);
  }
  return lines.join('\n');
}

function chart(rs: BenchResult[], layer: string, threads: number): string {
  const impls = [...new Set(rs.filter((r) => r.layer === layer).map((r) => r.impl))];
  return lineChart(`${layer} layer, ${threads} thread(s): median time vs activation bits`, 'activation bits', 'ms (log scale)',
    impls.map((impl) => ({
      name: impl,
      points: rs.filter((r) => r.impl === impl && r.layer === layer && (r.threads === threads || ((impl === 'tfjs-wasm-f32' || impl === 'ref-js') && r.threads === 1)))
        .map((r) => [r.bits, r.medianMs] as [number, number]),
    })).filter((s) => s.points.length));
}

/** How many of the peers' u8 codes were one step off ours, in words. */
function offByOne(rs: BenchResult[]): string {
  const peers = rs.filter((r) => r.offByOne !== undefined && r.impl.startsWith('ort-'));
  const off = peers.reduce((a, r) => a + r.offByOne!, 0);
  const wrong = [...new Set(rs.filter((r) => r.mismatches && r.impl.startsWith('ort-')).map((r) => `${r.impl} ${r.layer} ${r.bits}-bit`))];
  const within = peers.length === 0 ? 'none ran' : off === 0 ? 'in this run all of them were identical to ours' : `${off} codes one step off in this run, over ${peers.length} results`;
  return wrong.length ? `${within}; beyond one step, so marked MISMATCH: ${wrong.join(', ')}` : within;
}

export function writeReport(report: BenchReport, path: string): void {
  const rs = report.results;
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const prof = report.profile as Profile | undefined;
  const layers = [...new Set(rs.map((r) => r.layer))];
  const threadsList = [...new Set(rs.map((r) => r.threads))].sort((a, b) => a - b);
  const maxT = Math.max(...threadsList);
  const svgs: string[] = [];
  for (const layer of layers) {
    for (const t of threadsList) {
      const name = `${basename(path, '.md')}-${layer}-${t}t.svg`;
      writeFileSync(join(dir, name), chart(rs, layer, t));
      svgs.push(`![${layer}, ${t} thread(s)](${name})`);
    }
  }
  const seed = LAYERS.seed;
  const L = layers.includes('seed') ? 'seed' : layers[0];
  const bitsList = [...new Set(rs.filter((r) => r.layer === L).map((r) => r.bits))].sort((a, b) => a - b);
  const ratio = (impl: string, peer: string, bits: number, t = maxT) => {
    const a = get(rs, impl, L, bits, t), b = get(rs, peer, L, bits, t);
    return a && b ? b.medianMs / a.medianMs : NaN;
  };
  const eff = prof?.profiles.find((p) => p.layer === L && p.bits === 1 && p.threads === 1);
  const rowLoop = prof?.micro.rowLoop;
  const plainT = rs.find((r) => r.impl === 'plain-call' && r.layer === L)?.threads ?? maxT;
  const targets: [string, number, number][] = [
    ['1-bit plain call vs onnxruntime-web QLinearConv', ratio('plain-call', 'ort-web-qlinearconv', 1, plainT), 4],
    ['2-bit plain call vs onnxruntime-web', ratio('plain-call', 'ort-web-qlinearconv', 2, plainT), 2.5],
    ['4-bit plain call vs onnxruntime-web', ratio('plain-call', 'ort-web-qlinearconv', 4, plainT), 1.5],
    ['8-bit plain call vs onnxruntime-web', ratio('plain-call', 'ort-web-qlinearconv', 8, plainT), 1.1],
    ['1-bit PCILT (tuned call) vs onnxruntime-web QLinearConv', ratio('pcilt-wasm', 'ort-web-qlinearconv', 1), 5],
    ['1-bit PCILT vs onnxruntime-node QLinearConv (native VNNI)', ratio('pcilt-wasm', 'ort-node-qlinearconv', 1), 1],
    ['2-bit PCILT vs onnxruntime-web', ratio('pcilt-wasm', 'ort-web-qlinearconv', 2), 3],
    ['2-bit auto vs onnxruntime-web', ratio('auto-wasm', 'ort-web-qlinearconv', 2), 3],
    ['4-bit PCILT vs onnxruntime-web', ratio('pcilt-wasm', 'ort-web-qlinearconv', 4), 1.5],
    ['4-bit auto vs onnxruntime-web', ratio('auto-wasm', 'ort-web-qlinearconv', 4), 1.5],
    ['8-bit auto vs onnxruntime-web', ratio('auto-wasm', 'ort-web-qlinearconv', 8), 1],
  ];
  // The plain call against the bench's tuned calls (bit-serial tables, a reused output, each kernel named).
  const plainRows = bitsList.map((b) => {
    const p = get(rs, 'plain-call', L, b, plainT);
    const tuned = ['pcilt-wasm', 'direct-wasm', 'auto-wasm'].map((i) => get(rs, i, L, b, plainT)).filter((r) => r !== undefined);
    if (!p || !tuned.length) return '';
    const t = tuned.reduce((a, c) => (c.medianMs < a.medianMs ? c : a));
    const over = p.medianMs / t.medianMs - 1;
    return `| ${b} | ${f(p.medianMs)} | ${f(t.medianMs)} (${t.impl}) | ${f(over * 100, 1)}% | ${over <= 0.15 ? 'met' : 'missed'} | ${p.auto ?? '-'} |`;
  }).filter(Boolean);
  // 'auto' against the best single candidate of the same round (fresh processes each round).
  const autoRows = layers.flatMap((layer) => bitsList.map((b) => {
    const a = get(rs, 'auto-wasm', layer, b, maxT);
    if (!a?.regrets?.length) return '';
    const worst = Math.max(...a.regrets);
    const pct = (xs: number[] | undefined) => (xs ?? []).map((r) => `${f(r * 100, 1)}%`).join(' / ');
    return `| ${layer} | ${b} | ${pct(a.regrets)} | ${f(worst * 100, 1)}% | ${worst <= 0.1 ? 'met' : 'missed'} | ${(a.choices ?? []).join(', ')} | ${pct(a.autoOverBest)} |`;
  })).filter(Boolean);
  // Every round's median at 1 and 2 bits (the JSON has all): the VM's two speeds, per library.
  const roundRows = bitsList.filter((b) => b <= 2).flatMap((b) => rs
    .filter((r) => r.layer === L && r.threads === maxT && r.bits === b && (r.roundMs?.length ?? 0) > 1)
    .map((r) => `| ${b} | ${r.impl} | ${r.roundMs.map((m) => (m === r.medianMs ? `**${f(m)}**` : f(m))).join(' / ')} |`));
  const phaseRows = (prof?.profiles ?? []).map((p) =>
    `| ${p.bits} | ${p.threads} | ${f(p.pcilt.setup)} | ${f(p.pcilt.pack)} | ${f(p.pcilt.compute)} | ${f(p.pcilt.store)} | ${f(p.pcilt.copyOut)} | ${f(p.pcilt.total)} | ${f(p.direct.pack)} | ${f(p.direct.compute)} | ${f(p.direct.total)} |`);
  const seedTable = rs.find((r) => r.layer === 'seed' && r.tableBytes)?.tableBytes;
  const macsL = macs(LAYERS[L]);
  const winBits = bitsList.filter((b) => (get(rs, 'pcilt-wasm', L, b, maxT)?.medianMs ?? Infinity) < (get(rs, 'direct-wasm', L, b, maxT)?.medianMs ?? 0));
  const loseBits = bitsList.filter((b) => !winBits.includes(b));
  const directName = (b: number) => get(rs, 'direct-wasm', L, b, maxT)?.kernel ?? 'wasm';
  const md = `# Benchmarks

Generated by \`${report.command}\` (this file and its SVG plots are rewritten by every run).
These are CPU figures; the WebGPU kernels' figures on a real GPU are in [benchmarks-webgpu.md](benchmarks-webgpu.md).

Machine: ${report.machine.cpu}, ${report.machine.cores} cores, ${report.machine.memoryGB} GB, ${report.machine.platform}, Node ${report.machine.node} (V8 ${report.machine.v8}).
Relaxed SIMD in use: ${prof?.features?.relaxedSimd ?? 'unknown'}. Every implementation ran in a child process of its own for each thread count, on the same data,
after warm-up runs (two, and more for fast layers until 150 ms have passed); times are medians${report.rounds > 1 ? `; multi-thread times are the best of ${report.rounds} rounds
(all implementations in turn, each round in fresh processes: two-thread times on this VM switch between two speeds for
seconds at a time, docs/perf-notes.md sections 21 and 24; the JSON keeps every round's median), one-thread times, which
do not, come from the first round` : ''}. Our calls make
what QLinearConv makes, the u8 codes of the sums (\`options.requantize\` with QLinearConv's multiplier and zero point,
fused into the kernels' stores), written into one reused output array (\`options.out\`); the peers return
fresh arrays (onnxruntime-web's pre-allocated CPU outputs did not hold the result when we tried them). Outputs were
checked against the exact int32 sums (direct multiplication, itself tested bit for bit against the JS reference),
requantized: ours must be equal, QLinearConv's within one u8 step (${offByOne(rs)}),
tfjs's float32 sums within 1e-6 of the largest value.

Layers: **seed** = 1x64x224x224 -> 128, 3x3, pad 1 (${(macs(seed) / 1e9).toFixed(2)} G MAC); **mnist-b1/-b64** = 32x14x14 -> 64, 3x3, pad 1, batch 1 / 64.
Our PCILT uses bit-serial tables with 8 activations per index (${seedTable ? formatBytes(seedTable) : '4.7 MB'} on the seed layer at every bit width).

## Targets (${L} layer, ${maxT} threads, ratios from this run)

| target | measured | goal | |
|---|---|---|---|
${targets.map(([name, v, goal]) => `| ${name} | ${f(v)}x | >= ${goal}x | ${v >= goal ? 'met' : 'missed'} |`).join('\n')}
| look-ups/s of the PCILT kernel (1 thread, 1-bit) vs streaming swizzle | ${eff && prof ? `${f(eff.lookupsPerSecond / 1e9, 1)} G/s = ${f((eff.lookupsPerSecond / prof.micro.swizzleStream) * 100, 0)}%` : '-'} | >= 60% | ${eff && prof && eff.lookupsPerSecond / prof.micro.swizzleStream >= 0.6 ? 'met' : 'missed'} |
| seed-layer tables | ${seedTable ? formatBytes(seedTable) : '-'} | <= 5 MB | ${seedTable && seedTable <= 5e6 ? 'met' : 'missed'} |

## Results

${layers.flatMap((layer) => threadsList.map((t) => `### ${layer}, ${t} thread(s)\n\n${resultTable(rs, layer, t)}`)).join('\n\n')}

${svgs.join('\n')}

## The plain call (${L}, ${plainT} threads)

\`buildPcilt(w, { activationBits })\` and \`pciltConv2d(x, tables, { padding: 1, requantize })\`: defaults only (tables,
backend 'auto', thread count), a fresh output array each call; against the fastest tuned call of this run
(named kernels or 'auto', bit-serial tables with 8 activations an index, one reused output array). Goal: at most 15% slower.

| bits | plain call ms | tuned call ms | plain slower by | goal | 'auto' chose |
|---|---|---|---|---|---|
${plainRows.join('\n')}

## 'auto' regret: against the best single candidate of the same round (${maxT} threads)

Each round's 'auto' runs in a fresh process, so it calibrates anew; after its first call, its calls are timed
interleaved call for call with each of its candidates run by name (PCILT; direct with each kernel the job allows),
for at least 300 ms. Regret = the chosen candidate's median / the best candidate's median - 1 (0 when it chose
the best). Goal: never above 10%. The last column is auto's own median against the best (dispatch included; the
noise of this VM's two-speed mode shows there, both ways).

| layer | bits | regret per round | worst | goal | chosen per round | auto's own time vs best, per round |
|---|---|---|---|---|---|---|
${autoRows.join('\n')}

${roundRows.length ? `## Every round (${L}, ${maxT} threads, median ms of each round, the kept one in bold)

Two-thread times on this VM switch between two speeds for seconds to minutes, and not alike for every
library, so a ratio depends on each library meeting its own fast mode in some round (docs/perf-notes.md 24).

| bits | impl | rounds |
|---|---|---|
${roundRows.join('\n')}

` : ''}## Where the time goes (${L}, phase profile, ms)

Phases: setup (JS: padding the input into wasm memory, parameters), pack (activation codes into table
indices, or into byte quads for direct), compute (look-ups and int16 adds with int32 flushes, or
multiply-accumulate), store (requantization: the int32 sums plus bias scaled, rounded and clamped into u8
codes, written in NCHW order), copy-out (JS: the codes leave wasm memory for the caller's reused output array).

| bits | threads | PCILT setup | pack | look-ups | store | copy-out | total | direct pack | multiply | total |
|---|---|---|---|---|---|---|---|---|---|---|
${phaseRows.join('\n')}

Swizzle micro-benchmarks (1 thread): register-only peak ${prof ? f(prof.micro.swizzlePeak / 1e9, 1) : '-'} G look-ups/s${prof?.micro.relaxedSwizzlePeak ? `, relaxed swizzle ${f(prof.micro.relaxedSwizzlePeak / 1e9, 1)} G/s` : ''};
streaming (index vectors loaded from L1, results summed) ${prof ? f(prof.micro.swizzleStream / 1e9, 1) : '-'} G/s.

## The seed's question: why was the lookup kernel 14x slower than cuDNN?

Multiplication is not the expensive part of a convolution on a modern processor; moving data is.
The seed's kernel replaced each multiply-accumulate by a gather from a 256-entry float32 table of its own:
${(macs(seed) / 1e9).toFixed(2)} G gathers per call from ${formatBytes(128 * 64 * 9 * 256 * 4)} of tables, far more than any cache
(this CPU: 1 MiB L2 per core, 32 MiB L3; an H100: 50 MB L2), each gather a dependent, scattered memory read,
while cuDNN's multiplies stream through registers and tensor cores. A table look-up only wins when

1. one look-up replaces several multiplies (pack g activations into one index, or bit-planes: here one
   16-byte load serves 8 output channels x 8 activations = 64 multiply-accumulates);
2. the tables are small enough to stay close (int16 entries, bit-serial tables shared by every bit plane:
   ${seedTable ? formatBytes(seedTable) : '4.7 MB'} instead of 75.5 MB);
3. the packed indices are built once per input and reused by every output channel.

Measured here: ${L}, ${maxT} threads, look-ups cost grows with the bit width (one pass per bit plane) while
direct multiplication does not:
${bitsList.map((b) => `- ${b}-bit: PCILT ${f(get(rs, 'pcilt-wasm', L, b, maxT)?.medianMs)} ms, direct (${directName(b)}) ${f(get(rs, 'direct-wasm', L, b, maxT)?.medianMs)} ms, onnxruntime-web ${f(get(rs, 'ort-web-qlinearconv', L, b, maxT)?.medianMs)} ms, onnxruntime-node ${f(get(rs, 'ort-node-qlinearconv', L, b, maxT)?.medianMs)} ms`).join('\n')}

So on this CPU look-ups beat our direct multiplication at ${winBits.length ? `${winBits.join(', ')} bit(s)` : 'no bit width'}${loseBits.length ? ` and lose at ${loseBits.join(', ')} bit(s), where 'auto' switches to direct multiplication` : ''}.
The look-up phase is one 16-byte row load and one int16 add per 8 table entries (${eff ? `${f(eff.lookups / 1e9, 2)} G entries in ${f(eff.pcilt.compute)} ms at 1 bit, 1 thread` : ''}):
on the uniform random codes of this bench every pixel reads 72 random 256-byte rows of the table, mostly from
L3, and the loop reads ${eff ? `${f(eff.lookups / 8 / (eff.pcilt.compute * 1e6), 2)} G` : 'some G'} vector loads/s.${rowLoop ? ` The same loop alone (\`lookup_bench\`, 1 thread, a table of
the seed layer's shape) reads ${f(rowLoop.random / 1e9, 2)} G/s on uniform random rows and ${f(rowLoop.hot / 1e9, 2)} G/s when every row is in L1
(code 0 everywhere): its own instruction bound (V8's x64 code: 16-17 instructions per 6-vector step). Even at that bound the
1-bit look-ups would take ${eff ? f((eff.lookups / 8 / rowLoop.hot) * 1e3 / 2) : '-'} ms a call on 2 threads; at the random-row rate ${eff ? f((eff.lookups / 8 / rowLoop.random) * 1e3 / 2) : '-'} ms, before
packing, stores and the copies (measured above: ${eff ? f(eff.pcilt.total - eff.pcilt.compute) : '-'} ms on 1 thread).` : ''}
After a ReLU most codes are 0 and the rows repeat: with 98% of the codes 0 the same kernel ran 1.6x faster on one thread, 1.9x on two (section 18).
Multiplication needs ${(macsL / 1e9).toFixed(2)} G multiply-accumulates, 16 per i16x8.relaxed_dot_i8x16_i7x16_s in wasm (int16 sums,
codes below 128; x64 runs it as pmaddubsw), 8 per i32x4.dot_i16x8_s (8-bit codes), and 32 or more per instruction for native int8 code (onnxruntime-node on AVX-512 VNNI), which is why the native peer stays ahead.
`;
  writeFileSync(path, md);
}

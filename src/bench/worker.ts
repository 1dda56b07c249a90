import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { convGeometry } from '../conv/geometry.js';
import { checkRequantize } from '../conv/requantize.js';
import { buildPcilt, type PciltTables } from '../tables/pcilt.js';
import { autoChoices, median } from '../backends/auto.js';
import { wasmBackend, type PhaseProfile } from '../backends/wasm/backend.js';
import type { Engine } from '../backends/wasm/engine.js';
import { P, PARAM_COUNT } from '../backends/wasm/params.js';
import { LAYERS, layerData, type LayerSpec } from './layers.js';
import { nhwcToNchw, ortRunner, qlinearRequant, tfjsRunner, type PeerRunner } from './peers.js';

export const OUR_IMPLS = ['plain-call', 'pcilt-wasm', 'direct-wasm', 'auto-wasm', 'ref-js'] as const;
export const PEER_IMPLS = ['ort-node-qlinearconv', 'ort-web-qlinearconv', 'tfjs-wasm-f32'] as const;
export type Impl = (typeof OUR_IMPLS)[number] | (typeof PEER_IMPLS)[number];

/** What the orchestrator asks one child process to measure. */
export interface WorkerOrder {
  impl: Impl;
  layer: string;
  bits: number[];
  threads: number[];
  runs: number;
  outDir: string;
  /** Per bit width: the QLinearConv output scale; a child of ours given none derives it (yScaleFor). */
  yScales?: Record<number, number>;
}

export interface WorkerResult {
  impl: Impl;
  layer: string;
  bits: number;
  threads: number;
  medianMs: number;
  times: number[];
  tableBytes: number;
  /** Where the output was written (first thread count only), and its element type. */
  outFile?: string;
  outType?: 'int32' | 'uint8' | 'float32';
  /** auto-wasm, plain-call: what 'auto' chose (auto-wasm, its thread count given: one of rivalsMs's keys). */
  auto?: string;
  /** auto-wasm: its candidates' medians, each run by name, timed interleaved with it in the same process. */
  rivalsMs?: Record<string, number>;
  /** direct-wasm: the wasm direct kernel that ran (the backend's default for the job). */
  kernel?: string;
  /** Where a child given no yScale wrote the exact int32 sums (the reference), and the yScale it derived. */
  refFile?: string;
  yScale?: number;
}

/** The layer's exact int32 sums (direct multiplication, untimed): the reference every output is checked against. */
async function exactSums(l: LayerSpec, input: Uint8Array, weight: Int8Array, bits: number): Promise<Int32Array> {
  const y = await conv2dDirect({ data: input, shape: [l.N, l.C, l.H, l.W] }, { data: weight, shape: [l.O, l.C, l.K, l.K] }, { padding: l.pad, activationBits: bits, backend: 'wasm' });
  return y.data as Int32Array;
}

/** A QLinearConv output scale that spreads the exact sums over the u8 range. */
export function yScaleFor(ref: Int32Array): number {
  let s = 0;
  for (let i = 0; i < ref.length; i++) s += ref[i] * ref[i];
  return Math.max(1, (3 * Math.sqrt(s / ref.length)) / 127);
}

/** The tables the benchmark uses: bit-serial, 8 activations per index: 4.7 MB on the seed layer at every bit width. */
export function benchTables(weight: Int8Array, l: LayerSpec, bits: number): PciltTables {
  return buildPcilt({ data: weight, shape: [l.O, l.C, l.K, l.K] }, { activationBits: bits, bitSerial: true, groupSize: 8 });
}

async function ours(order: WorkerOrder, l: LayerSpec, bits: number, threads: number, input: Uint8Array, weight: Int8Array, yScale: number) {
  const x = { data: input, shape: [l.N, l.C, l.H, l.W] };
  const w = { data: weight, shape: [l.O, l.C, l.K, l.K] };
  // Our calls make what QLinearConv makes, u8 codes of the sums (requantized in the kernels' stores),
  // into one reused output array (options.out), as a caller running a layer repeatedly would.
  const opts = { padding: l.pad, threads, requantize: qlinearRequant(yScale), out: new Uint8Array(l.N * l.O * l.H * l.W) };
  let tables: PciltTables | undefined;
  if (order.impl === 'plain-call') tables = buildPcilt(w, { activationBits: bits });
  else if (order.impl !== 'direct-wasm') tables = benchTables(weight, l, bits);
  const run = {
    // What a user gets with defaults only: default tables, backend ('auto') and thread count, a fresh output.
    'plain-call': () => pciltConv2d(x, tables!, { padding: l.pad, requantize: opts.requantize }),
    'pcilt-wasm': () => pciltConv2d(x, tables!, { ...opts, backend: 'wasm' }),
    'auto-wasm': () => pciltConv2d(x, tables!, { ...opts, backend: 'auto' }),
    'direct-wasm': () => conv2dDirect(x, w, { ...opts, backend: 'wasm', activationBits: bits }),
    'ref-js': () => pciltConv2d(x, tables!, { ...opts, backend: 'js' }),
  }[order.impl as (typeof OUR_IMPLS)[number]];
  // 'auto' is timed interleaved with each of its candidates, run by name under auto's labels, in the
  // same process: its regret.
  let rivals: Record<string, () => Promise<ArrayLike<number>>> | undefined;
  if (order.impl === 'auto-wasm') {
    const geometry = convGeometry([l.N, l.C, l.H, l.W], [l.O, l.C, l.K, l.K], { padding: l.pad });
    const requant = checkRequantize(opts.requantize, l.O, true);
    const job = { input, weight, geometry, activationBits: bits, integer: true, threads, requant, out: opts.out };
    rivals = { 'wasm-pcilt': async () => (await pciltConv2d(x, tables!, { ...opts, backend: 'wasm' })).data };
    for (const [i, kernel] of wasmBackend.directKernels!(job).entries()) {
      rivals[i === 0 ? 'wasm-direct' : `wasm-direct-${kernel}`] = async () => wasmBackend.direct({ ...job, kernel });
    }
  }
  return { run: async () => (await run()).data, tableBytes: tables?.bytes ?? 0, rivals };
}

async function peer(order: WorkerOrder, l: LayerSpec, bits: number, threads: number, input: Uint8Array, weight: Int8Array): Promise<PeerRunner> {
  if (order.impl === 'tfjs-wasm-f32') return tfjsRunner(l, input, weight);
  return ortRunner(order.impl === 'ort-node-qlinearconv' ? 'node' : 'web', l, input, weight, order.yScales?.[bits] ?? 1, threads);
}


/** Runs one order in this process and prints one JSON line per result. */
export async function runOrder(order: WorkerOrder): Promise<void> {
  const l = LAYERS[order.layer];
  for (const bits of order.bits) {
    const { input, weight } = layerData(l, bits);
    const isOurs = (OUR_IMPLS as readonly string[]).includes(order.impl);
    let yScale = order.yScales?.[bits];
    let refFile: string | undefined;
    if (isOurs && yScale === undefined) {
      const sums = await exactSums(l, input, weight, bits);
      yScale = yScaleFor(sums);
      refFile = join(order.outDir, `ref-${l.name}-${bits}.bin`);
      writeFileSync(refFile, new Uint8Array(sums.buffer, sums.byteOffset, sums.byteLength));
    }
    for (const [ti, threads] of order.threads.entries()) {
      const r = isOurs ? await ours(order, l, bits, threads, input, weight, yScale!) : { ...(await peer(order, l, bits, threads, input, weight)), tableBytes: 0 };
      // Warm-up: two calls, and for fast layers more, until 150 ms have passed (V8 tiers wasm and
      // JS up in background threads during the first calls, on workers too): the same for every impl.
      const warm = order.impl === 'ref-js' ? 1 : 2;
      let out: ArrayLike<number> = [];
      const w0 = performance.now();
      const rivals = Object.entries(('rivals' in r ? r.rivals : undefined) ?? {});
      for (let i = 0; i < warm || (order.impl !== 'ref-js' && i < 500 && performance.now() - w0 < 150); i++) {
        out = await r.run();
        for (const [, run] of rivals) await run();
      }
      const times: number[] = [];
      const rivalTimes: Record<string, number[]> = Object.fromEntries(rivals.map(([k]) => [k, []]));
      // With rivals, runs go on for 300 ms at least: the regret compares medians a few percent apart.
      const t00 = performance.now();
      for (let i = 0; i < order.runs || (rivals.length && i < 1000 && performance.now() - t00 < 300); i++) {
        const t0 = performance.now();
        out = await r.run();
        times.push(performance.now() - t0);
        for (const [k, run] of rivals) {
          const t1 = performance.now();
          await run();
          rivalTimes[k].push(performance.now() - t1);
        }
      }
      await (r as PeerRunner).close?.();
      const result: WorkerResult = { impl: order.impl, layer: l.name, bits, threads, medianMs: median(times), times, tableBytes: r.tableBytes };
      if (rivals.length) result.rivalsMs = Object.fromEntries(Object.entries(rivalTimes).map(([k, t]) => [k, median(t)]));
      if (ti === 0 && refFile) Object.assign(result, { refFile, yScale });
      if (ti === 0) {
        const data = order.impl === 'tfjs-wasm-f32' ? nhwcToNchw(out, l) : (out as Int32Array | Uint8Array);
        result.outFile = join(order.outDir, `${order.impl}-${l.name}-${bits}.bin`);
        result.outType = data instanceof Int32Array ? 'int32' : data instanceof Uint8Array ? 'uint8' : 'float32';
        writeFileSync(result.outFile, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      }
      const g = convGeometry([l.N, l.C, l.H, l.W], [l.O, l.C, l.K, l.K], { padding: l.pad });
      if (order.impl === 'direct-wasm') {
        result.kernel = wasmBackend.directKernels!({ input, weight, geometry: g, activationBits: bits, integer: true })[0];
      }
      if (order.impl === 'auto-wasm' || order.impl === 'plain-call') {
        const key = `|${[g.N, g.C, g.H, g.W, g.O].join(',')}`;
        result.auto = autoChoices().filter((c) => c.key.includes(key) && c.key.includes(`|${bits}b/`) && c.key.endsWith(`t${order.impl === 'plain-call' ? 'default' : threads}`)).map((c) => c.winner).join(',');
      }
      console.log(JSON.stringify(result));
    }
  }
  console.log(JSON.stringify({ rssMB: peakRssMB() }));
}

/**
 * This process's peak resident set, MB. On Linux from /proc/self/status (VmHWM): getrusage's maxRSS
 * keeps the parent's resident set at the fork (a child of the bench reported the bench's ~185 MB).
 */
function peakRssMB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** The micro-benchmark build's exports (src/backends/wasm/assembly/micro-bench.ts). */
interface MicroBenchmarks {
  lookup_bench(params: number, ptrs: number, ptrTiles: number, acc: number, tiles: number): void;
  swizzle_bench(iters: number, relaxed: number): number;
  swizzle_stream_bench(buf: number, iters: number): number;
}

/** The micro-benchmarks, a build of their own that the library never loads, over the engine's memory. */
async function microBenchmarks(e: Engine): Promise<MicroBenchmarks> {
  const { readKernel } = await import('../backends/wasm/platform.js');
  const bytes = await readKernel(e.features.relaxedSimd ? 'bench-relaxed' : 'bench-simd');
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: e.memory, abort: () => { throw new Error('wasm abort'); } } });
  return instance.exports as unknown as MicroBenchmarks;
}

/** Phase profiles of our kernels and the swizzle micro-benchmarks, printed as one JSON line. */
export async function runProfile(layer: string, bitsList: number[], threadsList: number[]): Promise<void> {
  const { profileKernel } = await import('../backends/wasm/backend.js');
  const { getEngine } = await import('../backends/wasm/engine.js');
  const l = LAYERS[layer];
  const geometry = convGeometry([l.N, l.C, l.H, l.W], [l.O, l.C, l.K, l.K], { padding: l.pad });
  const profiles = [];
  const out = new Uint8Array(l.N * l.O * l.H * l.W);
  for (const bits of bitsList) {
    const { input, weight } = layerData(l, bits);
    const tables = benchTables(weight, l, bits);
    // The bench's jobs: u8 codes requantized as QLinearConv would.
    const sums = await exactSums(l, input, weight, bits);
    const requant = checkRequantize(qlinearRequant(yScaleFor(sums)), l.O, true);
    for (const threads of threadsList) {
      // Several threads: the fastest of 3 profiles, as the bench keeps the best round (the VM's slow windows).
      const best = async (run: () => Promise<PhaseProfile>) => {
        let b = await run();
        for (let i = 1; i < (threads > 1 ? 3 : 1); i++) {
          const p = await run();
          if (p.total < b.total) b = p;
        }
        return b;
      };
      const pcilt = await best(() => profileKernel('pcilt', { input, tables, geometry, integer: true, threads, requant, out }, 5));
      const direct = await best(() => profileKernel('direct', { input, weight, geometry, integer: true, threads, activationBits: bits, requant, out }, 5));
      // Table entries the look-up phase reads: one 8-entry row slice per vector add.
      const lookups = l.N * l.H * l.W * bits * tables.segments * Math.ceil(l.O / 8) * 8;
      profiles.push({ layer, bits, threads, pcilt, direct, lookups, lookupsPerSecond: lookups / (pcilt.compute / 1e3) });
    }
  }
  const e = await getEngine();
  const b = await microBenchmarks(e);
  const timeIt = (f: () => void) => { f(); const t0 = performance.now(); f(); return performance.now() - t0; };
  const n = 2e7;
  const peak = (n * 8 * 16) / (timeIt(() => b.swizzle_bench(n, 0)) / 1e3);
  const peakRelaxed = e.features.relaxedSimd ? (n * 8 * 16) / (timeIt(() => b.swizzle_bench(n, 1)) / 1e3) : null;
  const buf = e.heap.alloc(16384);
  new Uint8Array(e.memory.buffer, buf, 16384).forEach((_, i, a) => (a[i] = (i * 7) & 15));
  const stream = (n * 64) / (timeIt(() => b.swizzle_stream_bench(buf, n)) / 1e3);
  e.heap.release(buf);
  const rowLoop = lookupLoopRates(e, b, LAYERS.seed, timeIt);
  console.log(JSON.stringify({ profiles, micro: { swizzlePeak: peak, relaxedSwizzlePeak: peakRelaxed, swizzleStream: stream, rowLoop }, features: e.features }));
}

/**
 * The PCILT look-up loop alone (lookup_bench: the kernel's own loop, 1 thread) on a table shaped as
 * the layer's at 1 bit (8 channels per index, 256 rows of OgPad int16 per segment, filled), in row
 * vectors read per second: `hot` with every pixel reading code 0 (each segment's one row stays in
 * L1: the loop's own bound), `random` with uniform random codes (the bench's data).
 */
function lookupLoopRates(e: Engine, b: MicroBenchmarks, l: LayerSpec, timeIt: (f: () => void) => number): { hot: number; random: number } {
  const S = (l.C / 8) * l.K * l.K, R = 256, OgPad = Math.ceil(l.O / 8) * 8, segBytes = R * OgPad * 2 + 64;
  const ptrTiles = 64, tiles = 2000;
  const table = e.heap.alloc(S * segBytes), ptrs = e.heap.alloc(ptrTiles * S * 16 * 4), acc = e.heap.alloc(16 * OgPad * 4);
  const params = e.heap.alloc(PARAM_COUNT * 4);
  try {
    new Int16Array(e.memory.buffer, table, (S * segBytes) / 2).forEach((_, i, a) => (a[i] = (i * 7) & 63));
    const p = new Int32Array(e.memory.buffer, params, PARAM_COUNT);
    p.fill(0);
    p[P.S] = S; p[P.PLANES] = 1; p[P.PW0] = 1; p[P.CHUNK] = S; p[P.OGPAD] = OgPad;
    const rate = (code: () => number) => {
      const a = new Uint32Array(e.memory.buffer, ptrs, ptrTiles * S * 16);
      for (let i = 0; i < a.length; i++) a[i] = table + (Math.floor(i / 16) % S) * segBytes + code() * OgPad * 2;
      return (tiles * 16 * S * (OgPad / 8)) / (timeIt(() => b.lookup_bench(params, ptrs, ptrTiles, acc, tiles)) / 1e3);
    };
    return { hot: rate(() => 0), random: rate(() => Math.floor(Math.random() * R)) };
  } finally {
    for (const a of [table, ptrs, acc, params]) e.heap.release(a);
  }
}

import type { Candidate } from '../../backends/auto.js';
import { COST_MODEL_VERSION, costModelOff, familyOf, fitLine, loadCostModel, storeCostModel, type CostModel } from '../../backends/cost-model.js';
import type { FloatLayer } from '../../backends/wasm/backend.js';
import { getEngine, machineKey, threadCount } from '../../backends/wasm/engine.js';
import { convGeometry, type ConvGeometry } from '../../conv/geometry.js';
import { layerCandidates, layerTables } from './int-conv.js';

/**
 * Calibration layers (batch 1): two to three sizes per kind of convolution, spanning the layers
 * of mobile CNNs; each below 20 M multiply-accumulates also runs on one thread (as 'auto' tries
 * small layers), the largest only on every core.
 * [C, O, H, W, K, groups, stride]
 */
const LAYERS: [number, number, number, number, number, number, number][] = [
  [16, 16, 28, 28, 3, 1, 1], [32, 64, 28, 28, 3, 1, 1], [64, 128, 56, 56, 3, 1, 1],
  [32, 32, 28, 28, 1, 1, 1], [128, 128, 28, 28, 1, 1, 1], [256, 512, 28, 28, 1, 1, 1],
  [32, 32, 56, 56, 3, 32, 1], [256, 256, 56, 56, 3, 256, 1],
];

/** Widths calibrated: the relaxed int8 dot at 2 bits, the int16 dot at 8; look-ups cost per bit plane (their units count them). */
const WIDTHS = [2, 8];
const WARM_UP = 2;
const RUNS = 7;

function layerGeometry([C, O, H, W, K, groups, stride]: (typeof LAYERS)[number]): ConvGeometry {
  const p = K >> 1;
  return convGeometry([1, C, H, W], [O, C / groups, K, K], { padding: p, stride, groups });
}

/** A deterministic stream of small integers (calibration data need not be random, only not constant). */
function fill<T extends Float32Array | Int8Array>(a: T, mod: number, offset: number): T {
  let s = 12345;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = ((s >>> 16) % mod) - offset;
  }
  return a;
}

/**
 * The candidates of a calibration layer as a model's layer runs them: float32 input quantized in
 * wasm, int32 sums scaled back to float32.
 */
function calibrationCandidates(layer: (typeof LAYERS)[number], bits: number): { g: ConvGeometry; found: Candidate[] } {
  const g = layerGeometry(layer);
  const weight = fill(new Int8Array(g.O * g.Cg * g.KH * g.KW), 255, 127);
  const shape: [number, number, number, number] = [g.O, g.Cg, g.KH, g.KW];
  let tables: ReturnType<typeof layerTables> | undefined;
  const requant = new Float32Array(2 * g.O + 2).fill(1e-3);
  requant[2 * g.O] = -Infinity;
  requant[2 * g.O + 1] = Infinity;
  const L = (1 << bits) - 1;
  const l: FloatLayer = { x: fill(new Float32Array(g.N * g.C * g.H * g.W), 256, 0), range: [0, 255], quant: () => ({ scale: 255 / L, zero: 0, levels: L, requant }) };
  const found = layerCandidates(weight, () => (tables ??= layerTables({ data: weight, shape }, bits)), bits, g, undefined, l, (r) => r.release?.());
  // Look-ups at 8 bits cost as 4x those at 2 (per bit plane): measured at 2 only.
  return { g, found: bits === 8 ? found.filter((c) => !c.label.includes('pcilt')) : found };
}

/**
 * Measures every kernel family 'auto' chooses between on this machine (the calibration layers at
 * each width, every candidate interleaved after warm-up; the fastest run of each, as interference on
 * a shared machine only ever adds time) and fits a cost line per family.
 * Takes about a second; `onProgress` hears which layer runs.
 */
export async function calibrateMachine(onProgress?: (message: string) => void): Promise<CostModel> {
  const e = await getEngine();
  const machine = await machineKey();
  const start = performance.now();
  const points = new Map<string, { units: number; ms: number }[]>();
  let step = 0;
  // The engine's first calls start its workers and compile in tiers: not part of any layer's time.
  await warmUp();
  for (const layer of LAYERS) {
    for (const bits of WIDTHS) {
      onProgress?.(`calibrating this machine's kernels: layer ${++step} of ${LAYERS.length * WIDTHS.length}`);
      const { g, found } = calibrationCandidates(layer, bits);
      const times: number[][] = found.map(() => []);
      for (let r = 0; r < WARM_UP + RUNS; r++) {
        for (let i = 0; i < found.length; i++) {
          const t0 = performance.now();
          await found[i].run();
          if (r >= WARM_UP) times[i].push(performance.now() - t0);
        }
      }
      found.forEach((c, i) => {
        const f = familyOf(c.label, g, bits);
        if (!f) return;
        const list = points.get(f.family) ?? [];
        list.push({ units: f.units, ms: Math.min(...times[i]) });
        points.set(f.family, list);
      });
    }
  }
  const lines: CostModel['lines'] = {};
  for (const [family, ps] of points) lines[family] = fitLine(ps);
  const threads = threadCount(e, undefined, Infinity);
  const model: CostModel = { machine, version: COST_MODEL_VERSION, lines, threads, calibrationMs: performance.now() - start };
  await storeCostModel(model);
  return model;
}

async function warmUp(): Promise<void> {
  const { found } = calibrationCandidates(LAYERS[1], 2);
  const until = performance.now() + 150;
  while (performance.now() < until) for (const c of found) await c.run();
}

/**
 * This machine's cost model: the one kept from an earlier process (Node), else a new calibration
 * (kept for later ones); null where predictions were turned off (setCostModel(null)). Rejects where
 * the wasm engine cannot run.
 */
export async function ensureCostModel(onProgress?: (message: string) => void): Promise<CostModel | null> {
  if (costModelOff()) return null;
  const machine = await machineKey();
  return (await loadCostModel(machine)) ?? calibrateMachine(onProgress);
}

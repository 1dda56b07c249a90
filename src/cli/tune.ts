import { writeFile } from 'node:fs/promises';
import { ArgumentError } from '../errors.js';
import { scatterChart } from '../bench/svg.js';
import { importModel, saveModel } from '../nn/api.js';
import { widthCounts, type TunedPlan, type TuneResult } from '../passes/tune.js';
import type { Tensor } from '../nn/tensor.js';
import { customLayersFlag, listFlag, intFlag, parse } from './args.js';
import { imageTensor, imagesIn } from './import.js';

/**
 * `faster-cnn tune MODEL --calibrate DIR [--custom-layers FILE.mjs] [--budget X] [--agreement A] [--widths 8,6,4,3,2] [--latency measured|estimated]
 * --out FILE.fcnn [--report FILE.svg]`: per-layer activation widths by measured speed and error.
 */
export async function tuneCommand(argv: string[]): Promise<TuneResult> {
  const { values, positionals } = parse(argv, {
    calibrate: { type: 'string' }, budget: { type: 'string' }, agreement: { type: 'string' }, widths: { type: 'string' }, latency: { type: 'string' },
    out: { type: 'string' }, report: { type: 'string' }, limit: { type: 'string' }, 'align-corners': { type: 'boolean' }, json: { type: 'boolean' }, 'custom-layers': { type: 'string' },
  });
  const src = positionals[0];
  if (!src || !values.out || !values.calibrate) throw new ArgumentError('arguments', positionals, 'a model (.onnx, model.json, a .js module or .fcnn), --calibrate DIR and --out FILE.fcnn');
  const budget = values.budget === undefined ? 0.02 : Number(values.budget);
  if (!(budget > 0 && budget < 1)) throw new ArgumentError('--budget', values.budget, 'a mean |dp| between 0 and 1, e.g. 0.02');
  const agreement = values.agreement === undefined ? 0.97 : Number(values.agreement);
  if (!(agreement >= 0 && agreement <= 1)) throw new ArgumentError('--agreement', values.agreement, 'a share 0..1, e.g. 0.97');
  const latency = String(values.latency ?? 'measured');
  if (latency !== 'measured' && latency !== 'estimated') throw new ArgumentError('--latency', latency, "'measured' or 'estimated'");
  const widths = listFlag('widths', values.widths, [8, 6, 4, 3, 2], 1, 8);
  const customLayers = await customLayersFlag(values['custom-layers']);
  const model = await importModel(src, { activationBits: 8, customLayers, ...(values['align-corners'] ? { preprocessing: { alignCorners: true } } : {}) });
  const files = await imagesIn(String(values.calibrate), intFlag('limit', values.limit, 16, 1));
  const xs: Tensor[] = [];
  for (const f of files) xs.push(await imageTensor(f, model.meta.preprocessing!));
  const r = await model.tune(xs, { budget, agreement, widths, latency, onProgress: (m) => process.stderr.write(`\r${m}\x1b[K`) });
  process.stderr.write('\n');
  await saveModel(model, String(values.out), { importedFrom: src, calibrationImages: values.calibrate });
  if (values.report) await writeFile(String(values.report), tuneChart(r, src));
  const line = (p: TunedPlan) => `${p.label.padEnd(16)} ${p.ms.toFixed(1).padStart(8)} ms  agreement ${(p.agreement * 100).toFixed(1).padStart(5)}%  mean |dp| ${p.meanAbsDiff.toFixed(4)}`;
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else {
    const counts = Object.entries(widthCounts(r.chosen.widths)).map(([w, n]) => `${n} x ${w}`);
    console.log(`chosen: ${r.chosen.label}: ${counts.join(', ')} (layer inputs)`);
    console.log([...r.tried, ...r.references].map(line).join('\n'));
    console.log(`wrote ${values.out}${values.report ? ` and ${values.report}` : ''}`);
  }
  return r;
}

/** Agreement with the float model against latency, for every plan the search measured and the references. */
export function tuneChart(r: TuneResult, name: string): string {
  const pt = (p: TunedPlan) => [p.ms, p.agreement * 100] as [number, number];
  return scatterChart(`faster-cnn tune ${name.split('/').slice(-3).join('/')}`, 'ms per image (batch 1)', 'top-1 agreement with float32 (%)', [
    { name: 'search (in order)', points: r.tried.map(pt), joined: true },
    { name: 'chosen', points: [pt(r.chosen)] },
    ...r.references.map((p) => ({ name: p.label, points: [pt(p)] })),
  ]);
}

import { batchOf, loadMnist } from '../data/mnist.js';
import { formatBytes } from '../errors.js';
import { loadModel, type Model, type NodeProfile } from '../nn/api.js';
import { intFlag, parse } from './args.js';

export interface EvalResult {
  accuracy: number;
  n: number;
  msPerImage: number;
  /** Share of images where PCILT and direct multiplication predict the same class (1 = all). */
  agreement?: number;
  directMsPerImage?: number;
  layers?: { stage: string; pciltMs: number; directMs: number; tableBytes?: number }[];
}

function argmax(d: Float32Array, at: number, k: number): number {
  let best = 0;
  for (let i = 1; i < k; i++) if (d[at + i] > d[at + best]) best = i;
  return best;
}

/** Test-set accuracy at batch 64; for integer models also PCILT vs direct agreement and per-layer times. */
export async function evaluateModel(model: Model, o: { limit?: number; backend?: string; compare?: boolean }): Promise<EvalResult> {
  const test = loadMnist('test');
  const n = Math.min(o.limit ?? test.count, test.count), bs = 64;
  const order = Uint32Array.from({ length: test.count }, (_, i) => i);
  let correct = 0, agree = 0, ms = 0, dms = 0;
  const per = new Map<string, { pciltMs: number; directMs: number; tableBytes?: number }>();
  for (let from = 0; from < n; from += bs) {
    const b = Math.min(bs, n - from);
    const { x, labels } = batchOf(test, order, from, b);
    const tp: NodeProfile[] = [];
    let t0 = performance.now();
    const y = await model.predict(x, { backend: o.backend, kernel: 'pcilt', profile: tp });
    ms += performance.now() - t0;
    let yd: Float32Array | undefined;
    const td: NodeProfile[] = [];
    if (o.compare && model.quantized) {
      t0 = performance.now();
      yd = (await model.predict(x, { backend: o.backend, kernel: 'direct', profile: td })).data;
      dms += performance.now() - t0;
      for (const t of tp) {
        if (t.macs === undefined) continue;
        const e = per.get(t.node) ?? { pciltMs: 0, directMs: 0, tableBytes: t.tableBytes };
        e.pciltMs += t.ms;
        e.directMs += td.find((d) => d.node === t.node)?.ms ?? 0;
        per.set(t.node, e);
      }
    }
    const K = y.shape[1];
    for (let i = 0; i < b; i++) {
      const p = argmax(y.data, i * K, K);
      if (p === labels[i]) correct++;
      if (yd && p === argmax(yd, i * K, K)) agree++;
    }
  }
  const r: EvalResult = { accuracy: correct / n, n, msPerImage: ms / n };
  if (o.compare && model.quantized) {
    r.agreement = agree / n;
    r.directMsPerImage = dms / n;
    r.layers = [...per.entries()].map(([stage, e]) => ({ stage, ...e }));
  }
  return r;
}

/** `faster-cnn eval FILE [--json] [--limit N] [--backend B]`. */
export async function evalCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, limit: { type: 'string' }, backend: { type: 'string' } });
  const model = await loadModel(positionals[0] ?? '');
  const r = await evaluateModel(model, { limit: intFlag('limit', values.limit, 10000, 1, 10000), backend: values.backend as string | undefined, compare: true });
  if (values.json) {
    console.log(JSON.stringify({ ...r, model: positionals[0], meta: model.meta }, null, 2));
    return;
  }
  console.log(`${positionals[0]}: accuracy ${(r.accuracy * 100).toFixed(2)}% on ${r.n} test images, ${r.msPerImage.toFixed(3)} ms/image (batch 64, PCILT)`);
  if (r.agreement !== undefined) {
    console.log(`PCILT vs direct multiplication: same prediction on ${(r.agreement * 100).toFixed(2)}% of images; direct ${r.directMsPerImage!.toFixed(3)} ms/image`);
    console.log('per layer (ms over the test set): stage, PCILT, direct, table bytes');
    for (const l of r.layers!) console.log(`  ${l.stage.padEnd(22)} ${l.pciltMs.toFixed(1).padStart(9)} ${l.directMs.toFixed(1).padStart(9)} ${l.tableBytes ? formatBytes(l.tableBytes) : ''}`);
  }
}

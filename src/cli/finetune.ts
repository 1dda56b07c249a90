import { ArgumentError } from '../errors.js';
import { loadMnist } from '../data/mnist.js';
import { Model, loadModel, saveModel } from '../nn/api.js';
import { FINETUNE_LR, fineTuneTables } from '../nn/finetune.js';
import { TABLE_RANGES, type TableRange } from '../nn/table-weights.js';
import { intFlag, parse } from './args.js';
import { evaluateModel } from './eval.js';

/** `faster-cnn finetune-tables FILE --range filter|table|entry [--epochs E] [--limit N] [--lr LR] [--out FILE]`. */
export async function finetuneCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { range: { type: 'string' }, epochs: { type: 'string' }, limit: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' }, lr: { type: 'string' }, json: { type: 'boolean' } });
  const range = String(values.range ?? 'entry') as TableRange;
  if (!TABLE_RANGES.includes(range)) throw new ArgumentError('--range', values.range, TABLE_RANGES.join(', '));
  const epochs = intFlag('epochs', values.epochs, 2, 1, 100), limit = intFlag('limit', values.limit, 20000, 100, 60000);
  const seed = intFlag('seed', values.seed, 1, 0);
  const lr = values.lr === undefined ? FINETUNE_LR : Number(values.lr);
  if (!(lr > 0 && lr < 1)) throw new ArgumentError('--lr', values.lr, 'a number in (0, 1)');
  const file = positionals[0] ?? '';
  const model = await loadModel(file);
  if (!model.quantized) throw new ArgumentError('model', file, 'a quantized model (trained with --activation-bits)');
  const before = await evaluateModel(model, {});
  const t0 = performance.now();
  const tuned = await fineTuneTables(model.net, loadMnist('train'), { range, epochs, limit, lr, seed, onProgress: (m) => process.stderr.write(`${m}\n`) });
  const seconds = (performance.now() - t0) / 1e3;
  const out = new Model(tuned, { ...model.meta, tablesTrained: { range, epochs, limit, lr, seconds: Math.round(seconds), from: file } });
  const after = await evaluateModel(out, {});
  out.meta.testAccuracy = after.accuracy;
  if (values.out) await saveModel(out, String(values.out));
  const r = { range, epochs, limit, lr, seconds, qatAccuracy: before.accuracy, tablesAccuracy: after.accuracy, n: after.n, out: values.out ?? null };
  if (values.json) console.log(JSON.stringify(r));
  else console.log(`${file}: QAT ${(before.accuracy * 100).toFixed(2)}% -> tables trained as weights (${range}) ${(after.accuracy * 100).toFixed(2)}% on ${after.n} test images (${seconds.toFixed(0)} s)`);
}

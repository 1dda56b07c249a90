import { ArgumentError } from '../errors.js';
import { loadMnist } from '../data/mnist.js';
import { Model, saveModel } from '../nn/api.js';
import { mnistNet } from '../nn/model.js';
import { train, type Progress } from '../nn/train.js';
import { intFlag, parse } from './args.js';
import { evaluateModel } from './eval.js';

function bar(p: Progress): string {
  const frac = ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps);
  const w = 24, full = Math.round(frac * w);
  const eta = p.etaSeconds >= 60 ? `${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}s` : `${Math.round(p.etaSeconds)}s`;
  return `epoch ${p.epoch}/${p.epochs} [${'#'.repeat(full)}${'.'.repeat(w - full)}] ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} acc ${(p.accuracy * 100).toFixed(2)}% ${Math.round(p.imagesPerSecond)} img/s ETA ${eta}`;
}

/** `faster-cnn train mnist --activation-bits B [--weight-bits W] [--epochs E] [--seed S] [--out FILE]`. */
export async function trainCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    'activation-bits': { type: 'string' }, 'weight-bits': { type: 'string' }, epochs: { type: 'string' }, seed: { type: 'string' },
    out: { type: 'string' }, limit: { type: 'string' }, lr: { type: 'string' }, 'batch-size': { type: 'string' },
  });
  if (positionals[0] !== 'mnist') throw new ArgumentError('dataset', positionals[0], "'mnist' (faster-cnn train mnist ...)");
  const bits = intFlag('activation-bits', values['activation-bits'], 4, 1, 8);
  const wbits = intFlag('weight-bits', values['weight-bits'], 8, 2, 8);
  const epochs = intFlag('epochs', values.epochs, 3, 1, 1000);
  const seed = intFlag('seed', values.seed, 1, 0);
  const limit = intFlag('limit', values.limit, 60000, 64, 60000);
  const batchSize = intFlag('batch-size', values['batch-size'], 64, 1, 4096);
  const lr = values.lr === undefined ? 2e-3 : Number(values.lr);
  if (!(lr > 0 && lr < 1)) throw new ArgumentError('--lr', values.lr, 'a number in (0, 1)');
  const out = values.out ? String(values.out) : `mnist-a${bits}.fcnn`;
  const data = loadMnist('train');
  const net = mnistNet({ activationBits: bits, weightBits: wbits, seed });
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  await train(net, data, {
    epochs, seed, limit, lr, batchSize,
    onProgress: (p) => process.stderr.write(tty ? `\r${bar(p)}` : p.step % 100 === 0 || p.step === p.steps ? `${bar(p)}\n` : ''),
  });
  const seconds = (performance.now() - t0) / 1e3;
  process.stderr.write(`${tty ? '\n' : ''}trained in ${seconds.toFixed(0)} s\n`);
  const command = `faster-cnn train mnist --activation-bits ${bits} --weight-bits ${wbits} --epochs ${epochs} --seed ${seed}` +
    (limit < 60000 ? ` --limit ${limit}` : '') + (values.lr ? ` --lr ${lr}` : '') + (values['batch-size'] ? ` --batch-size ${batchSize}` : '');
  const model = new Model(net, { command, seed, activationBits: bits, weightBits: wbits, epochs, trainSeconds: Math.round(seconds), node: process.version });
  const r = await evaluateModel(model, {});
  model.meta.testAccuracy = r.accuracy;
  await saveModel(model, out);
  console.log(`${out}: test accuracy ${(r.accuracy * 100).toFixed(2)}% on ${r.n} images (integer PCILT inference), ${r.msPerImage.toFixed(3)} ms/image`);
}

import { ArgumentError } from '../errors.js';
import { readGray } from '../images/decode.js';
import { toDigit } from '../images/digit.js';
import { loadModel } from '../nn/api.js';
import { parse } from './args.js';

/** `faster-cnn predict FILE IMAGE [--json]`: the digit in a PNG or JPEG, any size. */
export async function predictCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const [file, image] = positionals;
  if (!file || !image) throw new ArgumentError('arguments', positionals, 'a model file and an image file (faster-cnn predict FILE IMAGE)');
  const model = await loadModel(file);
  const x = toDigit(await readGray(image));
  const y = await model.predict({ data: x, shape: [1, 1, 28, 28] });
  const probs = Array.from(y.data, (v) => Math.exp(v));
  const top = probs.map((p, digit) => ({ digit, p })).sort((a, b) => b.p - a.p).slice(0, 3);
  if (values.json) console.log(JSON.stringify({ digit: top[0].digit, top }));
  else console.log(`${image}: ${top[0].digit} (${top.map((t) => `${t.digit}: ${(t.p * 100).toFixed(1)}%`).join(', ')})`);
}

import { writeFile } from 'node:fs/promises';
import { ArgumentError } from '../errors.js';
import { exportOnnx } from '../formats/onnx/export.js';
import { loadModel } from '../nn/api.js';
import { parse } from './args.js';

/** `faster-cnn export FILE.fcnn --out FILE.onnx`: the network as ONNX in QDQ form. */
export async function exportCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { out: { type: 'string' } });
  const file = positionals[0];
  if (!file || !values.out) throw new ArgumentError('arguments', positionals, 'a model file and --out FILE.onnx');
  const bytes = exportOnnx((await loadModel(file)).net);
  await writeFile(String(values.out), bytes);
  console.log(`${values.out}: ONNX opset 13, QDQ form, ${bytes.length} bytes`);
}

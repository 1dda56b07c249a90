import { writeFile } from 'node:fs/promises';
import { ArgumentError } from '../errors.js';
import { exportOnnx } from '../formats/onnx/export.js';
import { writeOnnx } from '../formats/onnx/write-ir.js';
import { writeQdq } from '../formats/onnx/write-qdq.js';
import { importModel } from '../nn/api.js';
import { customLayersFlag, parse } from './args.js';

/**
 * `faster-cnn export FILE --out FILE.onnx [--custom-layers FILE.mjs]`: a trained network as ONNX in QDQ form; an imported
 * model (.fcnn, .onnx, model.json) as the graph it runs: float ONNX, or QDQ where it was imported
 * with activation bits and calibrated ranges.
 */
export async function exportCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, 'custom-layers': { type: 'string' } });
  const file = positionals[0];
  if (!file || !values.out) throw new ArgumentError('arguments', positionals, 'a model file and --out FILE.onnx');
  const model = await importModel(file, { customLayers: await customLayersFlag(values['custom-layers']) });
  const g = model.graph;
  const bits = model.meta.activationBits, ranges = model.meta.ranges;
  const bytes = !g ? exportOnnx(model.net) : bits && ranges ? writeQdq(g, { bits, ranges, layers: model.meta.layers, biasCorrection: model.meta.biasCorrection }) : writeOnnx(g);
  await writeFile(String(values.out), bytes);
  const form = !g ? (model.quantized ? 'QDQ form' : 'float') : bits && ranges ? `QDQ form, ${bits}-bit activation codes` : 'float';
  console.log(`${values.out}: ONNX opset ${g ? Math.max(g.opset, bits && ranges ? 13 : 0) : 13}, ${form}, ${bytes.length} bytes`);
}

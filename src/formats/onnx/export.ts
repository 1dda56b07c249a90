import type { Sequential } from '../../nn/model.js';
import { lowerSequential } from '../../nn/lower.js';
import { writeOnnx } from './write-ir.js';
import { writeQdq } from './write-qdq.js';

/**
 * A network trained here as ONNX, written from its runtime graph (the IR it runs on): float
 * networks as float ONNX; quantized ones in QDQ form (uint8 codes into each layer that runs on
 * codes, int8 per-channel weights at the layer's weight bits), which onnxruntime computes as our
 * integer inference does, up to float rounding. Input 'pixels' [N, C, H, W] in [0, 1].
 */
export function exportOnnx(net: Sequential): Uint8Array {
  const { graph, layers } = lowerSequential(net);
  return Object.keys(layers).length ? writeQdq(graph, { layers }) : writeOnnx(graph);
}

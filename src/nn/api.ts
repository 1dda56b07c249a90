import { ArgumentError } from '../errors.js';
import { decodeModel, encodeModel } from '../formats/fcnn.js';
import { IntegerNet, type StageTiming } from './integer.js';
import type { Sequential } from './model.js';
import { QuantReLU } from './layers.js';
import type { Tensor } from './tensor.js';

export interface PredictOptions {
  /** Engine for the integer convolutions ('auto', 'wasm', 'webgpu', 'js'). */
  backend?: string;
  /** Integer networks: table look-ups (default) or direct multiplication. */
  kernel?: 'pcilt' | 'direct';
  threads?: number;
  timings?: StageTiming[];
}

/** A network ready for inference: quantized ones run as integers (PCILT), float ones in float. */
export class Model {
  private integer?: IntegerNet;

  constructor(readonly net: Sequential, readonly meta: Record<string, unknown> = {}) {}

  get quantized(): boolean {
    return this.net.layers.some((l) => l instanceof QuantReLU && l.bits);
  }

  integerNet(): IntegerNet {
    this.integer ??= IntegerNet.fromQat(this.net);
    return this.integer;
  }

  /** Pixels in [0, 1], [N, 1, 28, 28] -> log-probabilities [N, 10]. */
  async predict(x: Tensor, opts: PredictOptions = {}): Promise<Tensor> {
    if (!(x?.data instanceof Float32Array) || !Array.isArray(x.shape) || x.shape.length !== 4) {
      throw new ArgumentError('input', x?.shape ?? x, 'a { data: Float32Array, shape: [N, C, H, W] } tensor');
    }
    return this.quantized ? this.integerNet().run(x, opts) : this.net.forward(x, false);
  }
}

export async function loadModel(pathOrBytes: string | Uint8Array): Promise<Model> {
  // Node's file system is imported only for paths, so that the module also loads in browsers.
  const bytes = typeof pathOrBytes === 'string' ? new Uint8Array(await (await import('node:fs/promises')).readFile(pathOrBytes)) : pathOrBytes;
  const { model, meta } = decodeModel(bytes);
  return new Model(model, meta);
}

export async function saveModel(model: Model | Sequential, path: string, meta: Record<string, unknown> = {}): Promise<void> {
  const m = model instanceof Model ? model : new Model(model, meta);
  await (await import('node:fs/promises')).writeFile(path, encodeModel(m.net, { ...m.meta, ...meta }));
}

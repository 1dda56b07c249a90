import { ArgumentError } from '../errors.js';
import { checkInt, checkShape } from '../tensor.js';

export interface QuantizedWeight {
  data: Int8Array | Int16Array;
  shape: number[];
  /** One scale per tensor, or one per output channel (dimension 0). */
  scales: Float32Array;
  bits: number;
}

/**
 * Signed symmetric quantization: q = round(w / scale), |q| <= 2^(bits-1) - 1.
 * Per-channel scales follow dimension 0 (output channels).
 */
export function quantizeWeights(weight: { data: Float32Array; shape: readonly number[] }, options: { bits: number; perChannel?: boolean }): QuantizedWeight {
  if (!(weight?.data instanceof Float32Array)) throw new ArgumentError('weight.data', weight?.data, 'a Float32Array');
  const shape = checkShape('weight', weight.shape, weight.shape?.length ?? 0, weight.data.length);
  const bits = checkInt('options.bits', options?.bits, 2, 16);
  const perChannel = options.perChannel ?? true;
  const top = 2 ** (bits - 1) - 1;
  const channels = perChannel ? shape[0] : 1;
  const per = weight.data.length / channels;
  const scales = new Float32Array(channels);
  const data = bits <= 8 ? new Int8Array(weight.data.length) : new Int16Array(weight.data.length);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = c * per; i < (c + 1) * per; i++) {
      const v = weight.data[i];
      if (!Number.isFinite(v)) throw new ArgumentError(`weight.data[${i}]`, v, 'a finite number');
      m = Math.max(m, Math.abs(v));
    }
    const s = m > 0 ? m / top : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) data[i] = Math.max(-top, Math.min(top, Math.round(weight.data[i] / s)));
  }
  return { data, shape, scales, bits };
}

export function dequantizeWeights(q: QuantizedWeight): Float32Array {
  const per = q.data.length / q.scales.length;
  return Float32Array.from(q.data, (v, i) => v * q.scales[Math.floor(i / per)]);
}

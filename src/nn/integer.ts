import { ArgumentError } from '../errors.js';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { buildPcilt, pciltFromEntries, type PciltTables } from '../tables/pcilt.js';
import { TableLinear } from './table-weights.js';
import { Conv2d, Flatten, Linear, LogSoftmax, MaxPool2d, QuantReLU, quantizePerChannel, type Layer } from './layers.js';
import type { Sequential } from './model.js';
import type { Tensor } from './tensor.js';

/** Activation codes between integer stages, with the real value of one code step. */
interface Codes {
  data: Uint8Array;
  shape: number[];
  scale: number;
  bits: number;
}

/** One convolution (a Linear is a 1x1 one) on codes: int32 sums, then scale and bias in float. */
interface ConvStage {
  kind: 'conv';
  weight: { data: Int8Array; shape: [number, number, number, number] };
  wScales: Float32Array;
  bias: Float32Array;
  pad: number;
  stride: number;
  bits: number;
  tables: PciltTables;
}

/** A layer whose tables were trained as weights: float entries, looked up by the codes. */
interface TableStage {
  kind: 'tables';
  tables: PciltTables;
  bias: Float32Array;
}

type Stage = ConvStage | TableStage | { kind: 'quant'; layer: QuantReLU } | { kind: 'pool'; size: number } | { kind: 'flatten' } | { kind: 'logsoftmax'; layer: LogSoftmax };

export interface StageTiming {
  stage: string;
  ms: number;
  tableBytes?: number;
  macs?: number;
}

/**
 * A quantization-aware-trained network compiled to integers: every Conv2d and Linear runs on
 * activation codes (8-bit pixels for the first, the QuantReLU codes after), by PCILT look-ups or by
 * direct multiplication. Both give the same int32 sums, so both give the same predictions.
 */
export class IntegerNet {
  private constructor(readonly stages: Stage[], readonly activationBits: number) {}

  static fromQat(model: Sequential): IntegerNet {
    const stages: Stage[] = [];
    let bits = 8; // the first layer reads 8-bit pixel codes
    let actBits = 0;
    for (const l of model.layers) {
      if (l instanceof Conv2d || l instanceof Linear) {
        const O = l instanceof Conv2d ? l.outChannels : l.outFeatures;
        const wbits = l.weightBits;
        if (!wbits) throw new ArgumentError(`layer ${l.type}.weightBits`, wbits, 'set (2..8): only quantized networks compile to integers');
        const q = quantizePerChannel(l.weight.value, O, wbits);
        const shape: [number, number, number, number] = l instanceof Conv2d
          ? [O, l.inChannels, l.kernel, l.kernel] : [O, l.inFeatures, 1, 1];
        const weight = { data: q.q, shape };
        // Bit-serial tables of 4 activations per index: 16 entries, small at every bit width.
        const tables = buildPcilt(weight, { activationBits: bits, bitSerial: bits > 1, groupSize: 4 });
        stages.push({ kind: 'conv', weight, wScales: q.scales, bias: l.bias.value.slice(), pad: l instanceof Conv2d ? l.pad : 0,
          stride: l instanceof Conv2d ? l.stride : 1, bits, tables });
      } else if (l instanceof TableLinear) {
        if (bits !== l.bits) throw new ArgumentError('TableLinear.bits', l.bits, `the bit width of its input codes (${bits})`);
        stages.push({ kind: 'tables', tables: pciltFromEntries([l.outFeatures, l.inFeatures, 1, 1], l.bits, l.tables()), bias: l.bias.value.slice() });
      } else if (l instanceof QuantReLU) {
        if (!l.bits) throw new ArgumentError('QuantReLU.bits', l.bits, 'set: only quantized networks compile to integers');
        stages.push({ kind: 'quant', layer: l });
        bits = actBits = l.bits;
      } else if (l instanceof MaxPool2d) stages.push({ kind: 'pool', size: l.size });
      else if (l instanceof Flatten) stages.push({ kind: 'flatten' });
      else if (l instanceof LogSoftmax) stages.push({ kind: 'logsoftmax', layer: l });
      else throw new ArgumentError('layer', (l as Layer).type, 'Conv2d, Linear, QuantReLU, MaxPool2d, Flatten or LogSoftmax in an integer network');
    }
    return new IntegerNet(stages, actBits);
  }

  get tableBytes(): number {
    return this.stages.reduce((n, s) => n + (s.kind === 'conv' ? s.tables.bytes : 0), 0);
  }

  /**
   * Runs pixels in [0, 1] [N, 1, H, W] through the integer stages. `kernel` picks look-ups
   * ('pcilt') or multiplication ('direct'); `backend` the engine. Returns the last float output.
   */
  async run(x: Tensor, opts: { kernel?: 'pcilt' | 'direct'; backend?: string; threads?: number; timings?: StageTiming[] } = {}): Promise<Tensor> {
    let codes: Codes | null = { data: Uint8Array.from(x.data, (v) => Math.min(255, Math.max(0, Math.round(v * 255)))), shape: x.shape, scale: 1 / 255, bits: 8 };
    let float: Tensor | null = null;
    for (const s of this.stages) {
      const t0 = performance.now();
      if (s.kind === 'conv') {
        const c: Codes = codes!;
        const input = { data: c.data, shape: c.shape.length === 2 ? [c.shape[0], c.shape[1], 1, 1] : c.shape };
        const conv = { padding: s.pad, stride: s.stride, backend: opts.backend, threads: opts.threads };
        const acc: { data: ArrayLike<number>; shape: number[] } = opts.kernel === 'direct'
          ? await conv2dDirect(input, s.weight, { ...conv, activationBits: c.bits })
          : await pciltConv2d(input, s.tables, conv);
        const [N, O, OH, OW] = acc.shape;
        const y: Float32Array = new Float32Array(acc.data.length);
        for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
          const k = c.scale * s.wScales[o], b = s.bias[o], base = (n * O + o) * OH * OW;
          for (let i = 0; i < OH * OW; i++) y[base + i] = acc.data[base + i] * k + b;
        }
        float = { data: y, shape: c.shape.length === 2 ? [N, O] : [N, O, OH, OW] };
        codes = null;
        opts.timings?.push({ stage: `${s.weight.shape[1]}->${s.weight.shape[0]} ${opts.kernel ?? 'pcilt'}`, ms: performance.now() - t0, tableBytes: s.tables.bytes, macs: acc.data.length * s.weight.data.length / O });
        continue;
      }
      if (s.kind === 'tables') {
        const c = codes!;
        const acc = await pciltConv2d({ data: c.data, shape: [c.shape[0], c.shape[1], 1, 1] }, s.tables, { backend: opts.backend === 'js' ? 'js' : 'auto' });
        const [N, O] = acc.shape;
        const y = new Float32Array(N * O);
        for (let i = 0; i < y.length; i++) y[i] = acc.data[i] + s.bias[i % O];
        float = { data: y, shape: [N, O] };
        codes = null;
        opts.timings?.push({ stage: `${c.shape[1]}->${O} trained tables`, ms: performance.now() - t0, tableBytes: s.tables.bytes });
        continue;
      }
      if (s.kind === 'quant') {
        codes = { data: s.layer.codes(float!.data), shape: float!.shape, scale: s.layer.scale, bits: s.layer.bits! };
        float = null;
      } else if (s.kind === 'pool') {
        codes = poolCodes(codes!, s.size);
      } else if (s.kind === 'flatten') {
        codes = { ...codes!, shape: [codes!.shape[0], codes!.data.length / codes!.shape[0]] };
      } else {
        float = await s.layer.forward(float!, false);
      }
      opts.timings?.push({ stage: s.kind, ms: performance.now() - t0 });
    }
    if (!float) throw new ArgumentError('network', 'one that ends on codes', 'a network whose last layer gives floats (Linear, LogSoftmax)');
    return float;
  }
}

/** Max pooling on codes: quantization is monotone, so this equals pooling the float values. */
function poolCodes(c: Codes, k: number): Codes {
  const [N, C, H, W] = c.shape;
  const OH = Math.floor(H / k), OW = Math.floor(W / k);
  const out = new Uint8Array(N * C * OH * OW);
  for (let p = 0; p < N * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let m = 0;
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) m = Math.max(m, c.data[(p * H + oh * k + i) * W + ow * k + j]);
        out[(p * OH + oh) * OW + ow] = m;
      }
  return { ...c, data: out, shape: [N, C, OH, OW] };
}

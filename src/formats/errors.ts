import { FasterCnnError } from '../errors.js';

/** A model that uses operations or attributes faster-cnn does not run: every one is listed. */
export class UnsupportedModelError extends FasterCnnError {
  constructor(readonly problems: string[]) {
    super(`the model uses ${problems.length} unsupported operation(s) or attribute(s):\n  ${problems.join('\n  ')}`);
  }
}

/** A model file that is truncated, corrupted, or not the format it claims to be. */
export class ModelImportError extends FasterCnnError {}

/** Most elements one imported tensor may hold (1 G floats = 4 GB). */
export const MAX_ELEMENTS = 1 << 28;

/** IEEE half to float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A luminance image in [0, 1], row-major. */
export interface Gray {
  width: number;
  height: number;
  data: Float32Array;
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

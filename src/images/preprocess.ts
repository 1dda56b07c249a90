import { ArgumentError } from '../errors.js';
import type { Rgba } from './decode.js';

/**
 * How a model wants its pixels: stored in imported .fcnn files and applied by `faster-cnn run`.
 * value = ((pixel / 255) * scale + offset - mean[c]) / std[c], channels in `channels` order,
 * laid out as `layout`, after resizing to width x height.
 */
export interface Preprocess {
  width: number;
  height: number;
  resize: 'bilinear' | 'nearest';
  /** TF's align_corners: the corner pixels of input and output coincide. */
  alignCorners: boolean;
  scale: number;
  offset: number;
  mean: number[];
  std: number[];
  channels: 'rgb' | 'bgr' | 'gray';
  layout: 'nhwc' | 'nchw';
}

/** Checks a preprocessing record (from a file or from flags). */
export function checkPreprocess(p: Partial<Preprocess>, what = 'preprocessing'): Preprocess {
  const dim = (k: 'width' | 'height') => {
    const v = p[k];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 8192) throw new ArgumentError(`${what}.${k}`, v, 'an integer 1..8192');
    return v as number;
  };
  const C = p.channels === 'gray' ? 1 : 3;
  const vec = (k: 'mean' | 'std', fill: number) => {
    const v = p[k] ?? new Array(C).fill(fill);
    if (!Array.isArray(v) || v.length !== C || !v.every((x) => Number.isFinite(x) && (k === 'mean' || x !== 0))) {
      throw new ArgumentError(`${what}.${k}`, v, `${C} finite numbers${k === 'std' ? ', none zero' : ''}`);
    }
    return v;
  };
  const oneOf = <T extends string>(k: keyof Preprocess, v: unknown, allowed: T[], fallback: T): T => {
    if (v === undefined) return fallback;
    if (!allowed.includes(v as T)) throw new ArgumentError(`${what}.${k}`, v, allowed.join(' or '));
    return v as T;
  };
  const num = (k: 'scale' | 'offset', fallback: number) => {
    const v = p[k] ?? fallback;
    if (!Number.isFinite(v)) throw new ArgumentError(`${what}.${k}`, v, 'a finite number');
    return v;
  };
  return {
    width: dim('width'), height: dim('height'),
    resize: oneOf('resize', p.resize, ['bilinear', 'nearest'], 'bilinear'),
    alignCorners: p.alignCorners === true,
    scale: num('scale', 1), offset: num('offset', 0), mean: vec('mean', 0), std: vec('std', 1),
    channels: oneOf('channels', p.channels, ['rgb', 'bgr', 'gray'], 'rgb'),
    layout: oneOf('layout', p.layout, ['nhwc', 'nchw'], 'nhwc'),
  };
}

/** Resizes (bilinear as tf.image.resizeBilinear computes it, or nearest) and normalizes one image. */
export function preprocess(img: Rgba, p: Preprocess): { data: Float32Array; shape: number[] } {
  const { width: W, height: H } = p;
  const C = p.channels === 'gray' ? 1 : 3;
  const out = new Float32Array(H * W * C);
  const ratio = (inn: number, o: number) => (p.alignCorners && o > 1 ? (inn - 1) / (o - 1) : inn / o);
  const ry = ratio(img.height, H), rx = ratio(img.width, W);
  const px = (x: number, y: number, c: number) => {
    const i = (y * img.width + x) * 4;
    if (p.channels === 'gray') return 0.299 * img.data[i] + 0.587 * img.data[i + 1] + 0.114 * img.data[i + 2];
    return img.data[i + (p.channels === 'bgr' ? 2 - c : c)];
  };
  for (let y = 0; y < H; y++) {
    const sy = y * ry, y0 = Math.min(Math.floor(sy), img.height - 1), y1 = Math.min(y0 + 1, img.height - 1), fy = sy - y0;
    for (let x = 0; x < W; x++) {
      const sx = x * rx, x0 = Math.min(Math.floor(sx), img.width - 1), x1 = Math.min(x0 + 1, img.width - 1), fx = sx - x0;
      for (let c = 0; c < C; c++) {
        let v: number;
        if (p.resize === 'nearest') v = px(Math.min(img.width - 1, Math.round(sx)), Math.min(img.height - 1, Math.round(sy)), c);
        else {
          const top = px(x0, y0, c) + (px(x1, y0, c) - px(x0, y0, c)) * fx;
          const bottom = px(x0, y1, c) + (px(x1, y1, c) - px(x0, y1, c)) * fx;
          v = top + (bottom - top) * fy;
        }
        const value = ((v / 255) * p.scale + p.offset - p.mean[c]) / p.std[c];
        out[p.layout === 'nhwc' ? (y * W + x) * C + c : (c * H + y) * W + x] = value;
      }
    }
  }
  return { data: out, shape: p.layout === 'nhwc' ? [1, H, W, C] : [1, C, H, W] };
}

/** The picture mirrored left to right (more calibration inputs from the same photos). */
export function mirrored(img: Rgba): Rgba {
  const { width: W, height: H } = img, data = new Uint8Array(img.data.length);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data.set(img.data.subarray((y * W + W - 1 - x) * 4, (y * W + W - x) * 4), (y * W + x) * 4);
  return { width: W, height: H, data };
}

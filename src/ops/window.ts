import type { Node } from '../ir/graph.js';
import { attrInt, attrInts, attrStr, fail } from './registry.js';

/** Geometry of a convolution or pooling window over the spatial axes (2.. of NC...). */
export interface Window {
  spatial: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Padding at the start and at the end of each spatial axis. */
  begin: number[];
  end: number[];
  out: number[];
}

/**
 * Reads kernel_shape (or the weight's), strides, dilations, pads / auto_pad and ceil_mode as
 * ONNX defines them, and computes the output's spatial sizes.
 */
export function windowOf(node: Node, shape: number[], kernelGiven?: number[], opts: { ceil?: boolean } = {}): Window {
  const spatial = shape.slice(2), r = spatial.length;
  if (r < 1) fail(node, `needs an input with spatial axes, got [${shape}]`);
  const kernel = attrInts(node, 'kernel_shape') ?? kernelGiven ?? fail(node, 'needs kernel_shape');
  const strides = attrInts(node, 'strides') ?? spatial.map(() => 1);
  const dilations = attrInts(node, 'dilations') ?? spatial.map(() => 1);
  const pads = attrInts(node, 'pads') ?? new Array(2 * r).fill(0);
  for (const [name, v, n] of [['kernel_shape', kernel, r], ['strides', strides, r], ['dilations', dilations, r], ['pads', pads, 2 * r]] as const) {
    if (v.length !== n) fail(node, `${name} [${v}] must hold ${n} numbers for [${shape}]`);
  }
  if ([...kernel, ...strides, ...dilations].some((v) => v < 1) || pads.some((p) => p < 0)) fail(node, 'kernel, strides and dilations must be positive, pads non-negative');
  const autoPad = attrStr(node, 'auto_pad', 'NOTSET', ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID']);
  const ceil = opts.ceil ?? attrInt(node, 'ceil_mode', 0) === 1;
  const begin = pads.slice(0, r), end = pads.slice(r);
  const out = spatial.map((d, i) => {
    const k = dilations[i] * (kernel[i] - 1) + 1;
    if (autoPad === 'VALID') {
      begin[i] = end[i] = 0;
      return Math.floor((d - k) / strides[i]) + 1;
    }
    if (autoPad !== 'NOTSET') {
      const o = Math.ceil(d / strides[i]);
      const total = Math.max(0, (o - 1) * strides[i] + k - d);
      begin[i] = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
      end[i] = total - begin[i];
      return o;
    }
    const span = d + begin[i] + end[i] - k;
    let o = (ceil ? Math.ceil(span / strides[i]) : Math.floor(span / strides[i])) + 1;
    // With ceil_mode a window must start inside the input or its start padding.
    if (ceil && (o - 1) * strides[i] >= d + begin[i]) o--;
    return o;
  });
  if (out.some((o) => o < 1)) fail(node, `a [${kernel}] window does not fit the [${spatial}] input`);
  return { spatial, kernel, strides, dilations, begin, end, out };
}

/**
 * Calls f for each output position with the in-bounds input cells of its window, their kernel
 * offsets, and how many of its cells lie inside the padded input (AveragePool's count_include_pad).
 */
export function forEachWindow(w: Window, f: (o: number, cells: number[], taps: number[], padded: number) => void): void {
  const r = w.spatial.length;
  const outN = w.out.reduce((a, b) => a * b, 1), kN = w.kernel.reduce((a, b) => a * b, 1);
  const oc = new Array<number>(r).fill(0);
  for (let o = 0; o < outN; o++) {
    let rem = o;
    for (let a = r - 1; a >= 0; a--) {
      oc[a] = rem % w.out[a];
      rem = Math.floor(rem / w.out[a]);
    }
    const cells: number[] = [], taps: number[] = [];
    let padded = 0;
    for (let k = 0; k < kN; k++) {
      let kr = k, cell = 0, inside = true, inPad = true, stride = 1;
      const pos = new Array<number>(r);
      for (let a = r - 1; a >= 0; a--) {
        pos[a] = kr % w.kernel[a];
        kr = Math.floor(kr / w.kernel[a]);
      }
      for (let a = r - 1; a >= 0; a--) {
        const i = oc[a] * w.strides[a] - w.begin[a] + pos[a] * w.dilations[a];
        if (i < 0 || i >= w.spatial[a]) inside = false;
        if (i < -w.begin[a] || i >= w.spatial[a] + w.end[a]) inPad = false;
        cell += i * stride;
        stride *= w.spatial[a];
      }
      if (inPad) padded++;
      if (inside) {
        cells.push(cell);
        taps.push(k);
      }
    }
    f(o, cells, taps, padded);
  }
}

import { DT, encodeModel, tensor } from '../formats/onnx/builder.js';
import type { RequantizeOptions } from '../conv/requantize.js';
import type { LayerSpec } from './layers.js';

/** A QLinearConv (u8 x s8 -> u8) model of one layer: x and w scales 1, y = round(acc / yScale) + 128 (qlinearRequant). */
export function qlinearConvModel(l: LayerSpec, weight: Int8Array, yScale: number): Uint8Array {
  const f32 = (v: number) => new Float32Array([v]);
  return encodeModel({
    name: `qlinearconv-${l.name}`,
    inputs: [{ name: 'x', dataType: DT.UINT8, dims: [l.N, l.C, l.H, l.W] }],
    outputs: [{ name: 'y', dataType: DT.UINT8, dims: [l.N, l.O, l.H, l.W] }],
    initializers: [
      tensor('x_scale', DT.FLOAT, [], f32(1)), tensor('x_zp', DT.UINT8, [], new Uint8Array([0])),
      tensor('w', DT.INT8, [l.O, l.C, l.K, l.K], weight),
      tensor('w_scale', DT.FLOAT, [], f32(1)), tensor('w_zp', DT.INT8, [], new Int8Array([0])),
      tensor('y_scale', DT.FLOAT, [], f32(yScale)), tensor('y_zp', DT.UINT8, [], new Uint8Array([128])),
    ],
    nodes: [{
      op: 'QLinearConv', name: 'conv',
      inputs: ['x', 'x_scale', 'x_zp', 'w', 'w_scale', 'w_zp', 'y_scale', 'y_zp'], outputs: ['y'],
      attrs: { kernel_shape: [l.K, l.K], pads: [l.pad, l.pad, l.pad, l.pad], strides: [1, 1] },
    }],
  });
}

/**
 * The requantization QLinearConv applies to an exact sum: ONNX Runtime multiplies by
 * x_scale * w_scale / y_scale computed in float32 (here fround(1 / yScale)), rounds half to even and
 * adds the zero point 128; our kernels take the same as options.requantize.
 */
export function qlinearRequant(yScale: number): RequantizeOptions {
  return { scale: 1 / Math.fround(yScale), zeroPoint: 128 };
}

export interface PeerRunner {
  run(): Promise<ArrayLike<number>>;
  close?(): Promise<void>;
}

export async function ortRunner(which: 'node' | 'web', l: LayerSpec, input: Uint8Array, weight: Int8Array, yScale: number, threads: number): Promise<PeerRunner> {
  const model = qlinearConvModel(l, weight, yScale);
  if (which === 'node') {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
    const x = new ort.Tensor('uint8', input, [l.N, l.C, l.H, l.W]);
    return { run: async () => (await session.run({ x })).y.data as Uint8Array, close: () => session.release() };
  }
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const x = new ort.Tensor('uint8', input, [l.N, l.C, l.H, l.W]);
  return { run: async () => (await session.run({ x })).y.data as Uint8Array, close: () => session.release() };
}

/** tfjs-backend-wasm conv2d in float32 (NHWC inside; the output is returned as NCHW). */
export async function tfjsRunner(l: LayerSpec, input: Uint8Array, weight: Int8Array): Promise<PeerRunner> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  const { N, C, H, W, O, K } = l;
  const xh = new Float32Array(N * H * W * C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) xh[(n * H * W + i) * C + c] = input[(n * C + c) * H * W + i];
  const fh = new Float32Array(K * K * C * O);
  for (let o = 0; o < O; o++) for (let c = 0; c < C; c++) for (let k = 0; k < K * K; k++) fh[(k * C + c) * O + o] = weight[(o * C + c) * K * K + k];
  const x = tf.tensor4d(xh, [N, H, W, C]);
  const f = tf.tensor4d(fh, [K, K, C, O]);
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [l.pad, l.pad], [l.pad, l.pad], [0, 0]];
  return {
    // Timed: the convolution and the download of its NHWC result; the layout change for the
    // comparison (nhwcToNchw) is done once, outside the timing.
    run: async () => {
      const y = tf.conv2d(x, f, 1, pad);
      const data = y.dataSync() as Float32Array;
      y.dispose();
      return data;
    },
    close: async () => { x.dispose(); f.dispose(); },
  };
}

export function nhwcToNchw(y: ArrayLike<number>, l: LayerSpec): Float32Array {
  const { N, O, H, W } = l;
  const out = new Float32Array(N * O * H * W);
  for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) for (let o = 0; o < O; o++) out[(n * O + o) * H * W + i] = y[(n * H * W + i) * O + o];
  return out;
}

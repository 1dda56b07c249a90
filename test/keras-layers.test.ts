import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importModel, loadModel, tfjsLayersToIr, Session, UnsupportedModelError, type CustomLayer } from 'faster-cnn';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/**
 * A functional Keras model built with tfjs-layers, using the layers the importer gained, saved as
 * TF.js artifacts, imported, and run against tfjs's own predict on the same input.
 */
test('Keras layers (separable and transposed convolutions, upsampling, PReLU, LeakyReLU, activations, two outputs) match tfjs', async () => {
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  const input = tf.input({ shape: [12, 10, 3], name: 'image' });
  let x = tf.layers.zeroPadding2d({ padding: [[1, 0], [0, 1]] }).apply(input) as import('@tensorflow/tfjs').SymbolicTensor;
  x = tf.layers.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', depthMultiplier: 2, activation: 'relu', name: 'sep' }).apply(x) as never;
  x = tf.layers.batchNormalization({ name: 'bn' }).apply(x) as never;
  x = tf.layers.leakyReLU({ alpha: 0.2 }).apply(x) as never;
  const skip = tf.layers.conv2d({ filters: 6, kernelSize: 1, name: 'skip', activation: 'elu' }).apply(x) as never;
  x = tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }).apply(x) as never;
  x = tf.layers.conv2dTranspose({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'up', activation: 'tanh' }).apply(x) as never;
  // 13x11 -> pooled 7x6 -> transposed 14x12 -> cropped back to 13x11, added to the skip branch.
  x = tf.layers.cropping2D({ cropping: [[0, 1], [1, 0]] }).apply(x) as never;
  x = tf.layers.add().apply([x, skip]) as never;
  x = tf.layers.prelu({ name: 'prelu', alphaInitializer: 'glorotUniform' }).apply(x) as never;
  const up = tf.layers.upSampling2d({ size: [2, 2] }).apply(x) as never;
  const features = tf.layers.globalAveragePooling2d({}).apply(up) as never;
  const logits = tf.layers.dense({ units: 5, activation: 'softmax', name: 'logits' }).apply(features) as never;
  const gate = tf.layers.activation({ activation: 'hardSigmoid' }).apply(tf.layers.dense({ units: 3, activation: 'swish', name: 'gate' }).apply(features) as never) as never;
  const model = tf.model({ inputs: input, outputs: [logits, gate] });
  // Non-trivial batch-norm statistics.
  const bn = model.getLayer('bn');
  bn.setWeights(bn.getWeights().map((w, i) => tf.add(w, tf.mul(tf.randomUniform(w.shape), i === 3 ? 1 : 0.5))));
  let saved: import('@tensorflow/tfjs').io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const art = { modelTopology: saved!.modelTopology, weightsManifest: [{ paths: [], weights: saved!.weightSpecs! }], weightData: new Uint8Array(saved!.weightData as ArrayBuffer) };
  const g = tfjsLayersToIr(art as never);
  assert.deepEqual(g.inputs.map((i) => i.name), ['image']);
  assert.equal(g.outputs.length, 2);
  const session = new Session(g);
  for (const N of [1, 3]) {
    const x0 = tf.randomNormal([N, 12, 10, 3]);
    const ref = model.predict(x0) as import('@tensorflow/tfjs').Tensor[];
    const ours = await session.run({ image: { dtype: 'float32', shape: [N, 12, 10, 3], data: (await x0.data()) as Float32Array } });
    for (const [i, o] of g.outputs.entries()) {
      const want = (await ref[i].data()) as Float32Array, got = ours[o.name];
      assert.deepEqual(got.shape, ref[i].shape);
      for (let k = 0; k < want.length; k++) assert.ok(Math.abs((got.data as Float32Array)[k] - want[k]) < 1e-4, `${o.name} [${k}] ${(got.data as Float32Array)[k]} vs ${want[k]}`);
    }
  }
});

/**
 * Layers a library registers with tfjs itself (a scale with a weight of its own, a pixel shuffle):
 * importModel builds them from the caller's customLayers, and the model matches tfjs running the
 * library's classes; without them, or with a bad builder, the import fails naming the class.
 */
test('custom Keras layers: built from customLayers, they match tfjs running the registered classes', async () => {
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  type T = import('@tensorflow/tfjs').Tensor;
  const one = (x: T | T[]) => (Array.isArray(x) ? x[0] : x);
  class ChannelScale extends tf.layers.Layer {
    static className = 'ChannelScale';
    gamma?: import('@tensorflow/tfjs').LayerVariable;
    build(shape: number[] | number[][]) {
      this.gamma = this.addWeight('gamma', [(shape as number[])[3]], 'float32', tf.initializers.randomNormal({ seed: 3 }));
      this.built = true;
    }
    call(x: T | T[]) {
      return tf.tidy(() => tf.add(tf.mul(one(x), this.gamma!.read()), 1));
    }
  }
  class PixelShuffle2x extends tf.layers.Layer {
    static className = 'PixelShuffle2x';
    computeOutputShape(s: number[] | number[][]) {
      const [n, h, w, c] = s as number[];
      return [n, h * 2, w * 2, c / 4];
    }
    call(x: T | T[]) {
      return tf.depthToSpace(one(x) as import('@tensorflow/tfjs').Tensor4D, 2, 'NHWC');
    }
  }
  tf.serialization.registerClass(ChannelScale);
  tf.serialization.registerClass(PixelShuffle2x);
  const input = tf.input({ shape: [6, 5, 3], name: 'image' });
  let x = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input) as never;
  x = new ChannelScale({ name: 'scale' }).apply(x) as never;
  x = new PixelShuffle2x({ name: 'shuffle' }).apply(x) as never;
  const model = tf.model({ inputs: input, outputs: x });
  let saved: import('@tensorflow/tfjs').io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-custom-'));
  const path = join(dir, 'model.json');
  writeFileSync(join(dir, 'w.bin'), new Uint8Array(saved!.weightData as ArrayBuffer));
  writeFileSync(path, JSON.stringify({ modelTopology: saved!.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: saved!.weightSpecs }] }));
  const customLayers: Record<string, CustomLayer> = {
    ChannelScale: ({ inputs: [v], weight, op, constant }) => op('Add', [op('Mul', [v, constant(weight('gamma'))]), constant(1)]),
    PixelShuffle2x: ({ inputs: [v], op }) => op('Transpose', [op('DepthToSpace', [op('Transpose', [v], { perm: [0, 3, 1, 2] })], { blocksize: 2, mode: 'DCR' })], { perm: [0, 2, 3, 1] }),
  };
  const ours = await importModel(path, { customLayers });
  const x0 = tf.randomNormal([2, 6, 5, 3], 0, 1, 'float32', 7);
  const want = model.predict(x0) as T;
  const got = await ours.run({ image: { dtype: 'float32', shape: [2, 6, 5, 3], data: (await x0.data()) as Float32Array } });
  const y = Object.values(got)[0];
  assert.deepEqual(y.shape, [2, 12, 10, 2]);
  const w = (await want.data()) as Float32Array;
  for (let k = 0; k < w.length; k++) assert.ok(Math.abs((y.data as Float32Array)[k] - w[k]) < 1e-5, `[${k}] ${(y.data as Float32Array)[k]} vs ${w[k]}`);

  await assert.rejects(importModel(path), (e: Error) => e instanceof UnsupportedModelError && /layer scale \(ChannelScale\): layer type ChannelScale .*customLayers/.test(e.message) && /PixelShuffle2x/.test(e.message));
  await assert.rejects(importModel(path, { customLayers: { ChannelScale: 'x' } as never }), /customLayers must be an object mapping Keras class names to functions/);
  await assert.rejects(importModel(path, { customLayers: { ...customLayers, ChannelScale: ({ inputs: [v], op }) => op('Scale', [v]) } }), /customLayers\.ChannelScale op type must be an ONNX operator the runtime has .*got "Scale"/);
  await assert.rejects(importModel(path, { customLayers: { ...customLayers, ChannelScale: ({ op }) => op('Relu', ['conv']) } }), /customLayers\.ChannelScale op inputs must be names from the layer's inputs/);
  await assert.rejects(importModel(path, { customLayers: { ...customLayers, ChannelScale: () => 'nothing' } }), /customLayers\.ChannelScale result must be the name of the layer's output/);
  await assert.rejects(importModel(path, { customLayers: { ...customLayers, ChannelScale: ({ weight }) => (weight('beta'), '') } }), /layer scale has no weight beta/);
  await assert.rejects(importModel(path, { customLayers: { ...customLayers, ChannelScale: ({ config }) => (config.missing as { x: string }).x } }),
    (e: Error) => e instanceof UnsupportedModelError && /layer scale \(ChannelScale\): customLayers\.ChannelScale threw: Cannot read properties of undefined/.test(e.message));

  // The CLI takes the same builders from a module (--custom-layers); the .fcnn it writes holds plain
  // operators, so loading it needs no module.
  const mod = join(dir, 'layers.mjs');
  writeFileSync(mod, `export const customLayers = {
  ChannelScale: ({ inputs: [v], weight, op, constant }) => op('Add', [op('Mul', [v, constant(weight('gamma'))]), constant(1)]),
  PixelShuffle2x: ({ inputs: [v], op }) => op('Transpose', [op('DepthToSpace', [op('Transpose', [v], { perm: [0, 3, 1, 2] })], { blocksize: 2, mode: 'DCR' })], { perm: [0, 2, 3, 1] }),
};\n`);
  const fcnn = join(dir, 'model.fcnn');
  await run(process.execPath, [cli, 'import', path, '--custom-layers', mod, '--out', fcnn]);
  const fromFcnn = await (await loadModel(fcnn)).run({ image: { dtype: 'float32', shape: [2, 6, 5, 3], data: (await x0.data()) as Float32Array } });
  assert.deepEqual(Object.values(fromFcnn)[0].data, y.data, 'the .fcnn imported by the CLI gives what importModel gives');
  const inspected = JSON.parse((await run(process.execPath, [cli, 'inspect', path, '--custom-layers', mod, '--json'])).stdout);
  assert.equal(inspected.ops.DepthToSpace, 1);
  await assert.rejects(run(process.execPath, [cli, 'inspect', path]), /layer type ChannelScale/);
  await assert.rejects(run(process.execPath, [cli, 'inspect', path, '--custom-layers', join(dir, 'none.mjs')]), /--custom-layers must be a JS module .*Cannot find module/);
  const bad = join(dir, 'bad.mjs');
  writeFileSync(bad, 'export const customLayers = { ChannelScale: 1 };\n');
  await assert.rejects(run(process.execPath, [cli, 'import', path, '--custom-layers', bad, '--out', fcnn]), /--custom-layers must be a JS module .*its export is an object with ChannelScale/);
});

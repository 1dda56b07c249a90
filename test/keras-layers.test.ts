import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tfjsLayersToIr, Session } from 'faster-cnn';

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

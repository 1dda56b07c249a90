import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { importModel, preprocess, readRgba, checkPreprocess, writeQdq, type RuntimeGraph, type RuntimeTensor } from 'faster-cnn';

const require = createRequire(import.meta.url);
const photoDir = '.cache/photos';
const photos = existsSync(photoDir) ? readdirSync(photoDir).filter((f) => /\.jpe?g$|\.png$/i.test(f)).sort().map((f) => join(photoDir, f)) : [];
const models = ['.cache/torchvision/mobilenet_v2.onnx', '.cache/torchvision/resnet18.onnx', '.cache/torchvision/squeezenet1_1.onnx'].filter(existsSync);
const required = process.env.FASTER_CNN_REQUIRE_MODELS;
const skip = required ? false : photos.length < 3 ? 'no photos (bash scripts/fetch-photos.sh .cache/photos)' : models.length === 0 ? 'no torchvision exports (scripts/export-torchvision.py)' : false;

/**
 * Quantized execution against an oracle that shares none of its kernels: every quantized
 * convolution of a real model, fed the very float input our run gave it, is run again by
 * onnxruntime-node as an ONNX QDQ layer (clip, QuantizeLinear, DequantizeLinear, float Conv on
 * int8 per-channel weights). Outputs must agree to float rounding, except where an input lands
 * within float rounding of a code boundary and the two sides pick neighbouring codes: those
 * outputs are counted and must stay rare.
 */
test('quantized layers at 8, 4, 3, 2 and 1 bits equal onnxruntime running the same layers as ONNX QDQ', { skip }, async () => {
  assert.ok(models.length === 3 && photos.length >= 3, 'torchvision exports and photos are required here');
  const ort = require('onnxruntime-node');
  const images = [];
  for (const p of photos.slice(0, 3)) images.push(preprocess(await readRgba(p), checkPreprocess({ width: 96, height: 96, channels: 'rgb', layout: 'nchw' })));
  for (const path of models) {
    for (const bits of [8, 4, 3, 2, 1]) {
      const m = await importModel(path, { activationBits: bits, inputShapes: { input: [1, 3, 96, 96] } });
      // At 4 and 2 bits a range per channel of each layer input (opt-in); otherwise one per tensor, at 3 bits with
      // every layer between the edges refitted (their weights then come from the refit's constants on both sides).
      const channels = bits === 4 || bits === 2, refit = bits === 3;
      await m.calibrate(images.slice(0, 2), { channels, ...(refit ? { refit: images.slice(0, 2), refitLayers: 'all' as const } : {}) });
      const g = m.graph!;
      const convs = g.nodes.filter((n) => n.op === 'Conv' && m.meta.ranges![n.inputs[0]]);
      assert.ok(convs.length > 5, `${path}: ${convs.length} quantized convolutions`);
      const layers = convs.filter((_, i) => i % Math.ceil(convs.length / 10) === 0);
      // With `channels`, every layer input but the 8-bit edges' has a range per channel.
      const perChannel = layers.filter((n) => m.meta.layers?.[n.name]?.channelRanges).length;
      if (channels) assert.ok(perChannel >= layers.length - 1, `${path} ${bits} bits: ${perChannel} of ${layers.length} layers with a range per channel`);
      else assert.equal(perChannel, 0);
      const refitted = layers.filter((n) => m.meta.layers?.[n.name]?.weight).length;
      if (refit && path.includes('mobilenet')) assert.ok(refitted >= 1, `${path}: ${refitted} of the layers compared refitted`);
      const got = await m.run({ input: images[2] }, { keep: layers.flatMap((n) => [n.inputs[0], n.outputs[0]]) });
      let values = 0, flips = 0, worst = 0;
      for (const n of layers) {
        const x = got[n.inputs[0]], y = got[n.outputs[0]];
        const one: RuntimeGraph = {
          inputs: [{ name: 'x', dtype: 'float32', shape: x.shape }], outputs: [{ name: 'y', dtype: 'float32', shape: null }], opset: 13,
          nodes: [{ ...n, inputs: ['x', ...n.inputs.slice(1)], outputs: ['y'] }],
          consts: new Map([...n.inputs.slice(1), m.meta.layers?.[n.name]?.weight, m.meta.layers?.[n.name]?.bias].filter((t) => t).map((t) => [t!, g.consts.get(t!)!] as [string, RuntimeTensor])),
        };
        const session = await ort.InferenceSession.create(writeQdq(one, { bits, ranges: { x: m.meta.ranges![n.inputs[0]] }, layers: m.meta.layers, biasCorrection: m.meta.biasCorrection }));
        const ref = (await session.run({ x: new ort.Tensor('float32', x.data, x.shape) })).y.data as Float32Array;
        const yd = y.data as Float32Array;
        assert.equal(yd.length, ref.length);
        let max = 0;
        for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i]));
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs(yd[i] - ref[i]) / (max || 1);
          values++;
          // Beyond float rounding of a sum of codes: a neighbouring code chosen on one side.
          if (d > 1e-4) flips++;
          worst = Math.max(worst, d);
        }
      }
      console.log(`${path.split('/').pop()} ${bits}-bit: ${layers.length} layers (${refitted} refitted), ${values} outputs, ${flips} (${((100 * flips) / values).toFixed(3)}%) off by a code step, worst ${worst.toExponential(2)} of the layer's range`);
      assert.ok(flips <= 0.002 * values, `${path} ${bits} bits: ${flips} of ${values} outputs differ`);
    }
  }
});

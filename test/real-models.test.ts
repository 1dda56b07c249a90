import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkModel, realModels, type RealResult } from 'faster-cnn';
import { webgpuSkip } from './helpers.js';

const photoDir = '.cache/photos';
const photos = existsSync(photoDir) ? readdirSync(photoDir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => join(photoDir, f)) : [];
const skip = photos.length || process.env.FASTER_CNN_REQUIRE_MODELS ? false : 'no photos (bash scripts/fetch-photos.sh .cache/photos)';

/**
 * Every model the installed packages ship (and the PyTorch exports, where made): imported as
 * shipped and compared output by output with the runtime it was made for on a real photograph.
 */
test('real pretrained models from npm packages and PyTorch exports match tfjs / onnxruntime on a photograph', { skip }, async () => {
  // Models whose oracle takes minutes a call are run by name only (check-models --models).
  const models = realModels().filter((m) => !m.slow);
  const results = [];
  for (const m of models) results.push(await checkModel(m, photos[0]));
  const passed = results.filter((r) => r.status === 'pass');
  const sources = new Set(passed.filter((r) => r.source !== 'nsfwjs' && !r.source.startsWith('torchvision')).map((r) => r.source));
  const summary = results.map((r) => `${r.id} (${r.source}): ${r.status}${r.relErr !== undefined ? ` ${r.relErr.toExponential(1)}` : ''}${r.why ? ` ${r.why.slice(0, 100)}` : ''}`).join('\n');
  assert.ok(passed.length >= 30, `${passed.length} pass:\n${summary}`);
  assert.ok(sources.size >= 3, `passing models come from ${[...sources].join(', ')}`);
  for (const r of results) {
    // Refused models are refused by name (control flow, ops not in the runtime), never crash; a model
    // that runs may miss the 1e-3 bound only by float noise in a saturated output.
    if (r.status === 'unsupported') assert.match(r.why ?? '', /unsupported operation|control flow|op /, r.id);
    if (r.status === 'fail') assert.ok((r.relErr ?? 1) < 1e-2, `${r.id}: ${r.why}`);
  }
  if (existsSync('.cache/torchvision/models.json')) assert.ok(results.filter((r) => r.source.startsWith('torchvision') && r.status === 'pass').length >= 14, summary);
  cpuResults = results;
});

let cpuResults: RealResult[] | undefined;
const gpuSkip = skip || (await webgpuSkip());

test('the same real models pass on WebGPU (tensors on the device) as on the CPU', { skip: gpuSkip }, async (t) => {
  if (!cpuResults) return t.skip('the CPU run above did not finish');
  const gpu: RealResult[] = [];
  for (const m of realModels().filter((m) => !m.slow)) gpu.push(await checkModel(m, photos[0], { backend: 'webgpu' }));
  const pass = (rs: RealResult[]) => rs.filter((r) => r.status === 'pass').map((r) => `${r.source}/${r.id}`);
  const onCpu = new Set(pass(cpuResults)), onGpu = new Set(pass(gpu));
  const why = (id: string) => gpu.find((r) => `${r.source}/${r.id}` === id)?.why;
  assert.deepEqual([...onCpu].filter((id) => !onGpu.has(id)).map((id) => `${id}: ${why(id)}`), [], 'pass on the CPU, not on WebGPU');
  assert.deepEqual([...onGpu].filter((id) => !onCpu.has(id)), [], 'pass on WebGPU, not on the CPU');
  // Most models run wholly on the device (the rest leave shape arithmetic or post-processing to the CPU).
  assert.ok(gpu.filter((r) => r.offDevice && Object.keys(r.offDevice).length === 0).length >= 0.5 * onGpu.size, JSON.stringify(gpu.map((r) => [r.id, r.offDevice])));
});

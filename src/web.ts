// The browser entry: everything here loads without Node (no file system, no child processes).
export { importModel, loadModel, Model } from './nn/api.js';
export type { PredictOptions } from './nn/api.js';
export type { NodeProfile } from './nn/api.js';
export { toDigit } from './images/digit.js';
export { buildPcilt, PciltTables } from './tables/pcilt.js';
export { pciltConv2d, conv2dDirect } from './conv/conv2d.js';
export { getEngine } from './backends/wasm/engine.js';
export { gpuUnavailableReason } from './backends/webgpu/device.js';
export * from './errors.js';

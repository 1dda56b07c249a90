import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
console.log(adapter ? 'adapter' : 'none', adapter && [...adapter.features], adapter?.info);
const device = await adapter.requestDevice();
console.log(device.limits.maxComputeWorkgroupStorageSize, [...gpu.wgslLanguageFeatures]);

import { buildPcilt, pciltConv2d } from 'faster-cnn';
const w = { data: new Int8Array(8*4*9).fill(3), shape:[8,4,3,3]};
const x = { data: new Uint8Array(4*16*16).fill(1), shape:[1,4,16,16]};
const t = buildPcilt(w, {activationBits: 1});
const y = await pciltConv2d(x, t, {backend:'wasm', threads: 2});
console.log('done', y.data[0]);

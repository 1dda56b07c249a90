import { buildPcilt, convGeometry } from 'faster-cnn';
import { profileKernel } from './dist/backends/wasm/backend.js';
const O=128,C=64,H=224,W=224;
let s=1; const r=()=>(s=(Math.imul(s,1103515245)+12345)>>>0)/2**32;
const w = { data: Int8Array.from({length: O*C*9}, () => Math.floor(r()*255)-127), shape:[O,C,3,3]};
const threads = Number(process.argv[2]??1);
for (const bits of [1,4]) {
  const x = { data: Uint8Array.from({length: C*H*W}, () => Math.floor(r()*(1<<bits))), shape:[1,C,H,W]};
  const geometry = convGeometry([1,C,H,W],[O,C,3,3],{padding:1});
  for (const [name,o] of [['bs8',{bitSerial:true,groupSize:8}],['bs4',{bitSerial:true,groupSize:4}]]) {
    const tables = buildPcilt(w,{activationBits:bits,...o});
    const p = await profileKernel('pcilt', {input:x.data, tables, geometry, integer:true, threads});
    console.log(bits, name, Object.entries(p).map(([k,v])=>`${k}=${v.toFixed(1)}`).join(' '));
  }
  const p = await profileKernel('direct', {input:x.data, weight:w.data, geometry, integer:true, threads, activationBits:bits});
  console.log(bits, 'direct', Object.entries(p).map(([k,v])=>`${k}=${v.toFixed(1)}`).join(' '));
}

import { buildPcilt, pciltConv2d, conv2dDirect } from 'faster-cnn';
let s=3; const r=()=>(s=(Math.imul(s,1103515245)+12345)>>>0)/2**32;
for (const [C,O,H,W,bits,opts] of [[3,5,9,11,2,{padding:1}],[16,70,14,13,1,{padding:[1,0,2,1]}],[8,8,10,10,4,{stride:2,padding:1}],[8,16,10,10,8,{groups:4, dilation:2, padding:2}],[12,12,9,9,3,{groups:12,padding:1}]]) {
  const g = opts.groups??1;
  const w = { data: Int8Array.from({length: O*C/g*9}, () => Math.floor(r()*255)-127), shape:[O,C/g,3,3]};
  const x = { data: Uint8Array.from({length: 2*C*H*W}, () => Math.floor(r()*(1<<bits))), shape:[2,C,H,W]};
  const t = buildPcilt(w, {activationBits: bits, bitSerial: true, groupSize: 4});
  const ref = await conv2dDirect(x, w, {...opts, backend:'js'});
  const y = await pciltConv2d(x, t, {...opts, backend:'webgpu'});
  const z = await conv2dDirect(x, w, {...opts, backend:'webgpu'});
  let bad=0, badz=0; for (let i=0;i<ref.data.length;i++){ if (y.data[i]!==ref.data[i]) bad++; if (z.data[i]!==ref.data[i]) badz++; }
  console.log(C,O,bits,JSON.stringify(opts),'pcilt mismatches',bad,'direct mismatches',badz,'of',ref.data.length, y.data.slice(0,3), ref.data.slice(0,3));
}

import { buildPcilt, pciltConv2d, conv2dDirect } from 'faster-cnn';
const O=128,C=64,H=224,W=224;
let s=1; const r=()=>(s=(Math.imul(s,1103515245)+12345)>>>0)/2**32;
const w = { data: Int8Array.from({length: O*C*9}, () => Math.floor(r()*255)-127), shape:[O,C,3,3]};
async function time(f, n=5){ await f(); const ts=[]; for(let i=0;i<n;i++){const t0=performance.now(); await f(); ts.push(performance.now()-t0);} ts.sort((a,b)=>a-b); return ts[Math.floor(n/2)].toFixed(1); }
const threads = Number(process.argv[2]??2);
for (const bits of [1,2,4,8]) {
  const x = { data: Uint8Array.from({length: C*H*W}, () => Math.floor(r()*(1<<bits))), shape:[1,C,H,W]};
  const line=[`bits=${bits} thr=${threads}`];
  for (const [name,o] of [['auto',{}],['bs8',{bitSerial:true,groupSize:8}],['bs4',{bitSerial:true,groupSize:4}]]) {
    const t = buildPcilt(w,{activationBits:bits,...o});
    if (t.groupSize*t.indexBits>8) { line.push(`${name}:skip`); continue; }
    line.push(`${name}(g${t.groupSize},${(t.bytes/1e6).toFixed(1)}MB)=${await time(()=>pciltConv2d(x,t,{padding:1,backend:'wasm',threads}))}ms`);
  }
  line.push(`direct=${await time(()=>conv2dDirect(x,w,{padding:1,backend:'wasm',threads}))}ms`);
  console.log(line.join('  '));
}

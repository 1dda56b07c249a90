import { gemm, gemmJs } from './dist/nn/gemm.js';
const r = () => Math.random() - 0.5;
for (const [M,N,K] of [[5,9,7],[64,12544,288],[288,12544,64],[64,288,12544]]) {
  const A = Float32Array.from({length:M*K}, r), B = Float32Array.from({length:K*N}, r);
  const C = new Float32Array(M*N), D = new Float32Array(M*N);
  const t0 = performance.now(); await gemm(A,B,C,M,N,K); const t1 = performance.now(); await gemm(A,B,C,M,N,K); const t2=performance.now();
  if (M*N*K < 1e8) gemmJs(A,B,D,M,N,K); else D.set(C);
  let err = 0; for (let i=0;i<C.length;i++) err = Math.max(err, Math.abs(C[i]-D[i]));
  console.log(M,N,K,'err',err.toExponential(2),'ms',(t2-t1).toFixed(1), 'GFLOP/s', (2*M*N*K/(t2-t1)/1e6).toFixed(1));
}

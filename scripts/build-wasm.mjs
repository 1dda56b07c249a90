// Compiles the AssemblyScript kernels into two builds: plain SIMD128, and SIMD128 + relaxed SIMD.
// Run by `npm run build` (and so by `npm install`); needs nothing beyond the npm package assemblyscript.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src/backends/wasm/assembly/kernels.ts');
const outDir = join(root, 'dist/wasm');
mkdirSync(outDir, { recursive: true });

const common = [source, '-O3', '--noAssert', '--runtime', 'stub', '--enable', 'simd', '--importMemory', '--initialMemory', '32', '--maximumMemory', '32768'];
const shared = ['--enable', 'threads', '--sharedMemory'];
// The single build imports an ordinary memory: pages without cross-origin isolation get one thread.
for (const [name, extra] of [['kernels-simd', shared], ['kernels-relaxed', [...shared, '--enable', 'relaxed-simd']], ['kernels-single', []]]) {
  const { error, stderr } = await asc.main([...common, ...extra, '--outFile', join(outDir, `${name}.wasm`)]);
  if (error) {
    console.error(stderr.toString());
    throw error;
  }
}
console.log('build-wasm: dist/wasm/kernels-simd.wasm, kernels-relaxed.wasm, kernels-single.wasm');

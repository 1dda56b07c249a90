// Run as a child process by wasm-kernels.test: every kernel's very first call in a fresh
// process (baseline-compiled code, before V8 tiers up) must equal the reference too.
import { buildPcilt, checkRequantize, conv2dDirect, convGeometry, pciltConv2d, requantizeSums } from 'faster-cnn';
import { firstDiff, options, randomCase, randomCodes, randomIntWeights, rng } from './helpers.js';

const r = rng(Number(process.argv[2] ?? 1));
const c = randomCase(r, 200_000);
const bits = r.int(1, 8);
const w = { data: randomIntWeights(r, c, 8), shape: [c.O, c.C / c.groups, c.KH, c.KW] };
const x = { data: randomCodes(r, c, bits), shape: [c.N, c.C, c.H, c.W] };
const t = buildPcilt(w, { activationBits: bits, bitSerial: bits > 2 });
const threads = r.int(1, 2);
// Odd seeds make the kernels' first calls requantizing ones (uint8 codes out), even seeds int32 ones.
const requantize = { scale: 255 / ((c.C / c.groups) * c.KH * c.KW * (2 ** bits - 1) * 40), zeroPoint: 128 };
const run = async (q: boolean) => [
  await pciltConv2d(x, t, { ...options(c), backend: 'wasm', threads, requantize: q ? requantize : undefined }),
  await conv2dDirect(x, w, { ...options(c), backend: 'wasm', threads, requantize: q ? requantize : undefined }),
];
const codesFirst = Number(process.argv[2] ?? 1) % 2 === 1;
const qCodes = codesFirst ? await run(true) : [];
const [y, z] = await run(false);
if (!codesFirst) qCodes.push(...(await run(true)));
const ref = await conv2dDirect(x, w, { ...options(c), backend: 'js' });
const geometry = convGeometry(x.shape as never, w.shape as never, options(c));
const codes = requantizeSums(ref.data, geometry, checkRequantize(requantize, c.O, true)!);
// The relaxed dot kernel too: V8 has computed some relaxed dot products wrongly before tiering up.
const { wasmBackend } = await import(new URL('../../dist/backends/wasm/backend.js', import.meta.url).href);
const job = { input: x.data, weight: w.data, geometry: convGeometry(x.shape as never, w.shape as never, options(c)), activationBits: Math.min(bits, 7), integer: true, threads, kernel: 'relaxed-dot-i8' };
let relaxed = -1;
if (wasmBackend.directKernels(job).includes('relaxed-dot-i8') && bits <= 7) relaxed = firstDiff(await wasmBackend.direct(job), ref.data);
console.log(JSON.stringify({
  case: c, bits, threads, pcilt: firstDiff(y.data, ref.data), direct: firstDiff(z.data, ref.data), relaxed,
  pciltCodes: firstDiff(qCodes[0].data, codes), directCodes: firstDiff(qCodes[1].data, codes),
}));

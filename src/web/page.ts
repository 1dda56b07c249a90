// The MNIST drawing page (web/index.html): draw, classify with PCILT, compare with direct multiplication.
import { getEngine, gpuUnavailableReason, importModel, loadModel, toDigit, type Model, type NodeProfile } from '../web.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = $<HTMLCanvasElement>('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true })!;
const status = $('status');
const models = new Map<string, Promise<Model>>();

function model(bits: string): Promise<Model> {
  if (!models.has(bits)) {
    models.set(bits, fetch(new URL(`../models/mnist-a${bits}.fcnn`, document.baseURI)).then(async (r) => {
      if (!r.ok) throw new Error(`models/mnist-a${bits}.fcnn: HTTP ${r.status}`);
      const m = await loadModel(new Uint8Array(await r.arrayBuffer()));
      // Warm up both kernels (table layout, wasm tier-up) so that the first timings shown are fair.
      const blank = { data: new Float32Array(784), shape: [1, 1, 28, 28] };
      await m.predict(blank, { ...options(), kernel: 'pcilt' });
      await m.predict(blank, { ...options(), kernel: 'direct' });
      return m;
    }));
  }
  return models.get(bits)!;
}

function clear() {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
}

let drawing = false;
pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ctx.beginPath();
  ctx.moveTo(e.offsetX, e.offsetY);
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 20;
  ctx.lineCap = ctx.lineJoin = 'round';
  ctx.lineTo(e.offsetX, e.offsetY);
  ctx.stroke();
});
pad.addEventListener('pointerup', () => (drawing = false));

function options(): { backend: string; threads?: number } {
  const b = $<HTMLSelectElement>('backend').value;
  return b === 'webgpu' ? { backend: 'webgpu' } : { backend: 'wasm', threads: b === 'wasm-1' ? 1 : undefined };
}

const fmtBytes = (n?: number) => (!n ? '' : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(2)} MB`);

async function classify() {
  const img = ctx.getImageData(0, 0, pad.width, pad.height);
  const gray = new Float32Array(pad.width * pad.height);
  for (let i = 0; i < gray.length; i++) gray[i] = (0.299 * img.data[4 * i] + 0.587 * img.data[4 * i + 1] + 0.114 * img.data[4 * i + 2]) / 255;
  const x = { data: toDigit({ width: pad.width, height: pad.height, data: gray }), shape: [1, 1, 28, 28] };
  const m = await model($<HTMLSelectElement>('bits').value);
  const tp: NodeProfile[] = [], td: NodeProfile[] = [];
  // Idle worker threads take milliseconds to wake: a first pass wakes them, so the timed ones compare kernels.
  await m.predict(x, { ...options(), kernel: 'pcilt' });
  const y = await m.predict(x, { ...options(), kernel: 'pcilt', profile: tp });
  await m.predict(x, { ...options(), kernel: 'direct', profile: td });
  const probs = Array.from(y.data, Math.exp);
  const top = probs.map((p, d) => ({ d, p })).sort((a, b) => b.p - a.p).slice(0, 3);
  const pred = $('prediction');
  pred.textContent = String(top[0].d);
  pred.dataset.count = String(Number(pred.dataset.count) + 1);
  $('top3').querySelector('tbody')!.innerHTML = top.map((t) => `<tr><td>${t.d}</td><td>${(t.p * 100).toFixed(1)}%</td><td><span class="bar" style="width:${Math.round(t.p * 120)}px"></span></td></tr>`).join('');
  const convs = tp.filter((t) => t.tableBytes).map((t) => ({ t, d: td.find((e) => e.node === t.node) }));
  $('layers').querySelector('tbody')!.innerHTML = convs.map(({ t, d }) => {
    // Bit-serial tables of 4 activations: one look-up per 4 products and bit plane (8-bit pixels into the first layer).
    const lookups = t.macs ? (t.macs / 4) * (t.bits ?? 8) : 0;
    return `<tr><td>${t.node} [${t.shape}]</td><td>${t.ms.toFixed(2)}</td><td>${d?.ms.toFixed(2) ?? ''}</td><td>${fmtBytes(t.tableBytes)}</td><td>${Math.round(lookups).toLocaleString()}</td><td>${Math.round(t.macs ?? 0).toLocaleString()}</td></tr>`;
  }).join('');
  const pms = convs.reduce((s, c) => s + c.t.ms, 0), dms = convs.reduce((s, c) => s + (c.d?.ms ?? 0), 0);
  $('why').textContent = `Why it is fast, or not: each packed index of 4 activation bits selects a table entry that already sums 4 products, ` +
    `once per bit plane, so a b-bit layer makes b/4 look-ups per multiplication it replaces, from small int16 tables (table bytes above). ` +
    `This digit: PCILT ${pms.toFixed(2)} ms against direct multiplication ${dms.toFixed(2)} ms for the convolutions. At batch 1 the arithmetic is ` +
    `tiny, so fixed costs (copying into wasm memory, waking threads) weigh as much as the look-ups; the bench shows the large layers.`;
}

/**
 * The chosen file imported in the page and run on a seeded random input, through wasm and through
 * WebGPU (second calls, after each engine's first): times, the largest output difference relative
 * to the output's magnitude, and how many nodes WebGPU left to the CPU.
 */
async function runOwnModel() {
  const file = $<HTMLInputElement>('own-file').files?.[0];
  if (!file) throw new Error('choose an .onnx or .fcnn file first');
  const m = await importModel(new Uint8Array(await file.arrayBuffer()));
  if (m.inputs.length !== 1) throw new Error(`${file.name} has ${m.inputs.length} inputs; this page feeds one`);
  const shape = m.inputShape(1);
  let seed = 1;
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647));
  const feed = { [m.inputs[0].name]: { data, shape } };
  // The first call (which profiles: it waits for the GPU after each node) makes the plan; the second is timed.
  const timed = async (backend: string | undefined, profile?: NodeProfile[]) => {
    await m.run(feed, { backend, profile });
    const t0 = performance.now();
    const y = await m.run(feed, { backend });
    return { y, ms: performance.now() - t0 };
  };
  const cpu = await timed(undefined);
  const profile: NodeProfile[] = [];
  const gpu = await timed('webgpu', profile);
  const name = m.outputs[0].name, a = cpu.y[name].data as Float32Array, b = gpu.y[name].data as Float32Array;
  let big = 0, diff = 0;
  a.forEach((v, i) => {
    big = Math.max(big, Math.abs(v));
    diff = Math.max(diff, Math.abs(v - b[i]));
  });
  const off = profile.filter((p) => !p.kernel.startsWith('webgpu:'));
  const rows = [
    ['model', `${file.name}: ${m.graph?.nodes.length ?? '?'} nodes, input [${shape}], output ${name} [${cpu.y[name].shape}]`],
    ['wasm ms', cpu.ms.toFixed(1)],
    ['WebGPU ms', gpu.ms.toFixed(1)],
    ['largest difference', (diff / Math.max(big, 1e-30)).toExponential(1)],
    ['nodes on the CPU within the WebGPU run', `${off.length} of ${profile.length}${off.length ? `: ${[...new Set(off.map((p) => p.op))].join(', ')}` : ''}`],
  ];
  const table = $('own-result');
  table.querySelector('tbody')!.innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td data-key="${k}">${v}</td></tr>`).join('');
  table.dataset.count = String(Number(table.dataset.count) + 1);
}

async function start() {
  clear();
  $('clear').addEventListener('click', clear);
  $('classify').addEventListener('click', () => classify().catch((e) => (status.textContent = `error: ${e.message}`)));
  $('own-run').addEventListener('click', () => runOwnModel().catch((e) => (status.textContent = `error: ${e.message}`)));
  const notes: string[] = [];
  try {
    const e = await getEngine();
    if (e.features.threads) {
      notes.push(`wasm SIMD on one thread only: ${e.features.threads}`);
      ($<HTMLSelectElement>('backend').querySelector('[value="wasm-threads"]') as HTMLOptionElement).disabled = true;
      $<HTMLSelectElement>('backend').value = 'wasm-1';
    } else notes.push(`wasm SIMD${e.features.relaxedSimd ? ' + relaxed SIMD' : ''}, ${e.features.cores} threads available`);
  } catch (e) {
    notes.push(`wasm threads unavailable (${(e as Error).message}); this page needs cross-origin isolation`);
    for (const v of ['wasm-threads', 'wasm-1']) ($<HTMLSelectElement>('backend').querySelector(`[value="${v}"]`) as HTMLOptionElement).disabled = true;
  }
  const gpu = await gpuUnavailableReason();
  if (gpu) {
    ($<HTMLSelectElement>('backend').querySelector('[value="webgpu"]') as HTMLOptionElement).disabled = true;
    notes.push(`WebGPU: ${gpu}`);
  } else notes.push('WebGPU available');
  await model($<HTMLSelectElement>('bits').value);
  status.textContent = `ready: ${notes.join('; ')}. Draw a digit and press Classify.`;
  status.dataset.ready = '1';
}

start().catch((e) => (status.textContent = `error: ${(e as Error).message}`));

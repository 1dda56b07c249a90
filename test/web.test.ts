import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeOnnx, loadMnist, ONNX_DT as DT, onnxTensor as tensor } from 'faster-cnn';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = '/usr/bin/chromium';

/** Paints a 28x28 digit ten times larger on the page's canvas, as drawing it would. */
function paint(page: { evaluate<A>(f: (a: A) => void, a: A): Promise<unknown> }, pixels: number[]) {
  return page.evaluate((px) => {
    const g = (document.getElementById('pad') as HTMLCanvasElement).getContext('2d')!;
    const img = g.createImageData(280, 280);
    for (let y = 0; y < 280; y++) for (let x = 0; x < 280; x++) {
      const v = px[Math.floor(y / 10) * 28 + Math.floor(x / 10)];
      img.data.set([v, v, v, 255], (y * 280 + x) * 4);
    }
    g.putImageData(img, 0, 0);
  }, pixels);
}
// CI installs Debian's chromium and sets this, so that a missing browser fails there instead of skipping.
const required = process.env.FASTER_CNN_REQUIRE_BROWSER === '1';
const skip = !existsSync(CHROMIUM) && !required ? `no browser at ${CHROMIUM} (apt-get install chromium)` : false;

/**
 * Serves the page (cross-origin isolated or not), opens it in Chromium with `args` and waits until it
 * is ready; page errors are collected in `errors`. close() shuts the browser and the server.
 */
async function openPage(isolated: boolean, args: string[], viewport?: { width: number; height: number }) {
  const { chromium } = await import('playwright-core');
  const { startWebServer } = await import(new URL('../../dist/cli/web.js', import.meta.url).href);
  const { url, server } = await startWebServer(0, isolated);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', ...args] });
  const close = async () => {
    await browser.close();
    server.close();
  };
  try {
    const page = await browser.newPage(viewport ? { viewport } : {});
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('status')!.dataset.ready === '1', null, { timeout: 60_000 });
    return { page, errors, close };
  } catch (e) {
    await close();
    throw e;
  }
}

test('the MNIST page classifies 20 real test digits painted on its canvas, at 1, 2 and 4 bits, in Chromium', { skip, timeout: 240_000 }, async (t) => {
  const { page, errors, close } = await openPage(true, ['--disable-gpu', '--disable-quic', '--disable-component-update', '--disable-sync'], { width: 1180, height: 720 });
  try {
    assert.match((await page.textContent('#status'))!, /2 threads available/, 'cross-origin isolation gives the page wasm threads');
    const digits = loadMnist('test');
    for (const bits of ['1', '2', '4']) {
      await page.selectOption('#bits', bits);
      let right = 0;
      for (let i = 0; i < 20; i++) {
        const px = Array.from(digits.images.subarray(i * 784, (i + 1) * 784));
        const before = await page.getAttribute('#prediction', 'data-count');
        await paint(page, px);
        await page.click('#classify');
        await page.waitForFunction((n) => document.getElementById('prediction')!.dataset.count !== n, before);
        if ((await page.textContent('#prediction')) === String(digits.labels[i])) right++;
      }
      t.diagnostic(`${bits}-bit activations: ${right} of 20 digits right`);
      assert.ok(right >= 18, `${bits}-bit: ${right} of 20 right`);
    }
    assert.deepEqual(errors, []);
    const docs = fileURLToPath(new URL('../../docs/', import.meta.url));
    mkdirSync(docs, { recursive: true });
    await page.screenshot({ path: `${docs}web-demo.png` });
  } finally {
    await close();
  }
});

test('without cross-origin isolation the page falls back to one thread, says so, and still classifies', { skip, timeout: 120_000 }, async () => {
  const { page, close } = await openPage(false, ['--disable-gpu']);
  try {
    assert.match((await page.textContent('#status'))!, /one thread only: the page is not cross-origin isolated/);
    assert.equal(await page.inputValue('#backend'), 'wasm-1');
    const digits = loadMnist('test');
    const px = Array.from(digits.images.subarray(0, 784));
    await paint(page, px);
    await page.click('#classify');
    await page.waitForFunction(() => document.getElementById('prediction')!.dataset.count === '1');
    assert.equal(await page.textContent('#prediction'), String(digits.labels[0]));
  } finally {
    await close();
  }
});

test('in Chromium with WebGPU on, the page classifies through the WGSL kernels exactly as through wasm', { skip, timeout: 240_000 }, async (t) => {
  // Headless Chromium offers navigator.gpu (a software adapter here) once WebGPU is enabled on Linux.
  const { page, errors, close } = await openPage(true, ['--enable-unsafe-webgpu']);
  try {
    const status = (await page.textContent('#status'))!;
    if (!/WebGPU available/.test(status)) {
      // CI requires it; elsewhere a Chromium without an adapter skips with the page's reason.
      assert.ok(process.env.FASTER_CNN_REQUIRE_WEBGPU !== '1', status);
      t.skip(`Chromium offers no WebGPU adapter: ${status}`);
      return;
    }
    const digits = loadMnist('test');
    for (const bits of ['1', '2', '4']) {
      await page.selectOption('#bits', bits);
      for (let i = 0; i < 5; i++) {
        await paint(page, Array.from(digits.images.subarray(i * 784, (i + 1) * 784)));
        const shown: string[] = [];
        for (const backend of ['wasm-threads', 'webgpu']) {
          await page.selectOption('#backend', backend);
          const before = await page.getAttribute('#prediction', 'data-count');
          await page.click('#classify');
          await page.waitForFunction((n) => document.getElementById('prediction')!.dataset.count !== n, before, { timeout: 90_000 })
            .catch(async (e) => { throw new Error(`${(e as Error).message}; page status: ${await page.textContent('#status')}; errors: ${errors.join('; ')}`); });
          shown.push(`${await page.textContent('#prediction')} ${await page.textContent('#top3')}`);
        }
        assert.equal(shown[1], shown[0], `${bits}-bit digit ${i}: WebGPU's prediction and probabilities against wasm's`);
      }
    }
    assert.doesNotMatch((await page.textContent('#status'))!, /error/);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

/** A small CNN written with our ONNX writer: conv, ReLU, pooling, a pointwise conv, global pooling and a dense layer. */
function smallCnn(): Uint8Array {
  let seed = 7;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5);
  return encodeOnnx({
    name: 'small-cnn',
    inputs: [{ name: 'image', dataType: DT.FLOAT, dims: [1, 3, 32, 32] }],
    outputs: [{ name: 'logits', dataType: DT.FLOAT, dims: [1, 10] }],
    initializers: [
      tensor('w1', DT.FLOAT, [16, 3, 3, 3], rand(432)), tensor('b1', DT.FLOAT, [16], rand(16)),
      tensor('w2', DT.FLOAT, [24, 16, 1, 1], rand(384)), tensor('w3', DT.FLOAT, [10, 24], rand(240)), tensor('b3', DT.FLOAT, [10], rand(10)),
    ],
    nodes: [
      { op: 'Conv', inputs: ['image', 'w1', 'b1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
      { op: 'MaxPool', inputs: ['r1'], outputs: ['p1'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Conv', inputs: ['p1', 'w2'], outputs: ['c2'] },
      { op: 'GlobalAveragePool', inputs: ['c2'], outputs: ['g'] },
      { op: 'Flatten', inputs: ['g'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'w3', 'b3'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
  });
}

test('in Chromium, the page imports an ONNX model and runs it through WebGPU, every node on the device, as through wasm', { skip, timeout: 240_000 }, async (t) => {
  const { page, errors, close } = await openPage(true, ['--enable-unsafe-webgpu']);
  const dir = mkdtempSync(join(tmpdir(), 'fcnn-web-'));
  try {
    if (!/WebGPU available/.test((await page.textContent('#status'))!)) {
      assert.ok(process.env.FASTER_CNN_REQUIRE_WEBGPU !== '1', String(await page.textContent('#status')));
      t.skip('Chromium offers no WebGPU adapter');
      return;
    }
    const file = join(dir, 'small-cnn.onnx');
    writeFileSync(file, smallCnn());
    await page.setInputFiles('#own-file', file);
    await page.click('#own-run');
    await page.waitForFunction(() => document.getElementById('own-result')!.dataset.count === '1', null, { timeout: 120_000 })
      .catch(async (e) => { throw new Error(`${(e as Error).message}; page status: ${await page.textContent('#status')}; errors: ${errors.join('; ')}`); });
    const cell = (k: string) => page.textContent(`#own-result [data-key="${k}"]`);
    // 6 nodes: the ReLU is fused into its convolution at import.
    assert.match((await cell('model'))!, /small-cnn\.onnx: 6 nodes, input \[1,3,32,32\], output logits \[1,10\]/);
    assert.ok(Number(await cell('largest difference')) < 1e-5, `difference ${await cell('largest difference')}`);
    assert.match((await cell('nodes on the CPU within the WebGPU run'))!, /^0 of 6$/);
    assert.ok(Number(await cell('WebGPU ms')) > 0 && Number(await cell('wasm ms')) > 0);
    assert.deepEqual(errors, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await close();
  }
});

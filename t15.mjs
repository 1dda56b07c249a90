import { chromium } from 'playwright-core';
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const page = await browser.newPage();
page.on('console', (m) => console.log('console:', m.text()));
page.on('pageerror', (e) => console.log('pageerror:', e.message));
await page.goto('http://127.0.0.1:8099/web/');
await page.waitForFunction(() => document.getElementById('status').dataset.ready === '1' || /error/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
console.log(await page.textContent('#status'));
await browser.close();

import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intFlag, parse } from './args.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The only folders the page server hands out. */
const SERVED = ['web', 'dist', 'models'];
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm',
  '.map': 'application/json', '.json': 'application/json', '.fcnn': 'application/octet-stream', '.png': 'image/png', '.svg': 'image/svg+xml',
};

/**
 * Serves the MNIST page on localhost. Cross-origin isolation headers (COOP/COEP) let the page share
 * wasm memory with workers; without them (isolation: false) it runs on one thread and says so.
 */
export function startWebServer(port = 0, isolation = true): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const rel = normalize(path === '/' ? 'web/index.html' : path.replace(/^\/+/, '')).replace(/\/$/, '/index.html');
    const top = rel.split(sep)[0];
    if (!SERVED.includes(top) || rel.includes('..')) {
      res.writeHead(404).end('not found');
      return;
    }
    try {
      const body = await readFile(join(ROOT, rel));
      const headers: Record<string, string> = { 'content-type': TYPES[extname(rel)] ?? 'application/octet-stream', 'cache-control': 'no-cache' };
      if (isolation) {
        headers['cross-origin-opener-policy'] = 'same-origin';
        headers['cross-origin-embedder-policy'] = 'require-corp';
      }
      res.writeHead(200, headers).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      resolve({ url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : port}/web/`, server });
    });
  });
}

/** `faster-cnn web [--port N] [--no-isolation]`. */
export async function webCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { port: { type: 'string' }, 'no-isolation': { type: 'boolean' } });
  const { url } = await startWebServer(intFlag('port', values.port, 8080, 0, 65535), !values['no-isolation']);
  console.log(`faster-cnn MNIST page: ${url}  (Ctrl-C stops it)`);
  await new Promise(() => {});
}

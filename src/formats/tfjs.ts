import { MAX_ELEMENTS, ModelImportError, halfToFloat } from './errors.js';
import { sizeOf, zeros, type DType, type Tensor } from '../ir/tensor.js';

/** A TF.js model.json (layers or graph format) with its weight bytes, group by group, shard after shard. */
export interface TfjsArtifacts {
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  /** All shards of all groups, concatenated in manifest order. */
  weightData: Uint8Array;
  format?: string;
  /** A graph model's named inputs and outputs ({ inputs: { key: { name: 'tensor:0' } }, outputs: ... }), where the converter wrote them. */
  signature?: { inputs?: Record<string, { name?: string }>; outputs?: Record<string, { name?: string }> };
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const bad = (why: string): never => {
  throw new ModelImportError(`TF.js model: ${why}`);
};

/** Every weight in the manifest as a tensor of its own dtype (quantized ones dequantized to float32). */
export function decodeTypedWeights(a: TfjsArtifacts): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const bytes = a.weightData;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  if (!Array.isArray(a.weightsManifest)) bad('weightsManifest is not a list');
  for (const group of a.weightsManifest) {
    if (!Array.isArray(group?.weights)) bad('a weightsManifest group has no weights list');
    for (const w of group.weights) {
      if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) bad(`weight ${JSON.stringify(w?.name)} has a bad name or shape`);
      const n = sizeOf(w.shape);
      if (n > MAX_ELEMENTS) bad(`weight ${w.name} claims ${n} elements (limit ${MAX_ELEMENTS})`);
      const q = w.quantization;
      const stored = q?.dtype ?? w.dtype;
      const size = ({ float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2, bool: 1 } as Record<string, number>)[stored] ?? bad(`weight ${w.name} has dtype ${stored}`);
      if (at + n * size > bytes.length) bad(`weight ${w.name} needs ${n * size} bytes at offset ${at}, the shards hold ${bytes.length}`);
      const dtype: DType = w.dtype === 'int32' ? 'int32' : w.dtype === 'bool' ? 'bool' : 'float32';
      const t = zeros(dtype, w.shape);
      const d = t.data as Float32Array;
      for (let i = 0; i < n; i++) {
        const p = at + i * size;
        let v: number;
        if (stored === 'float32') v = dv.getFloat32(p, true);
        else if (stored === 'int32') v = dv.getInt32(p, true);
        else if (stored === 'uint8' || stored === 'bool') v = bytes[p];
        else if (stored === 'uint16') v = dv.getUint16(p, true);
        else v = halfToFloat(dv.getUint16(p, true));
        d[i] = (stored === 'uint8' || stored === 'uint16') && q ? v * (q.scale ?? 1) + (q.min ?? 0) : v;
      }
      at += n * size;
      out.set(w.name, t);
    }
  }
  return out;
}

/** Decodes every weight in the manifest as float32 (uint8 / uint16 / float16 quantized ones dequantized). */
export function decodeWeights(a: TfjsArtifacts): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of decodeTypedWeights(a)) out.set(k, { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Int32Array) });
  return out;
}

/**
 * Reads a TF.js model from a model.json path (shards beside it), or from a JS module that
 * exports the model.json object, with shards as modules beside it exporting their bytes
 * base64-encoded (as the nsfwjs package ships them). Loading a JS module runs its code.
 */
export async function readTfjs(path: string): Promise<TfjsArtifacts> {
  const { readFile } = await import('node:fs/promises');
  const { dirname, join, resolve } = await import('node:path');
  path = resolve(path);
  const { existsSync } = await import('node:fs');
  const dir = dirname(path);
  let json: Json;
  if (/\.[cm]?js$/.test(path)) {
    const { createRequire } = await import('node:module');
    const mod = createRequire(import.meta.url)(path);
    json = mod?.default ?? mod;
  } else {
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      return bad(`${path}: not JSON (${(e as Error).message})`);
    }
  }
  if (!json?.modelTopology || !Array.isArray(json.weightsManifest)) bad(`${path} has no modelTopology and weightsManifest`);
  const parts: Uint8Array[] = [];
  for (const g of json.weightsManifest) {
    for (const p of g.paths ?? []) {
      if (typeof p !== 'string' || p.includes('..')) bad(`shard path ${JSON.stringify(p)}`);
      const js = [`${p}.min.js`, `${p}.js`].map((f) => join(dir, f)).find(existsSync);
      if (js) {
        const { createRequire } = await import('node:module');
        const m = createRequire(import.meta.url)(js);
        const v = m?.default ?? m;
        parts.push(typeof v === 'string' ? new Uint8Array(Buffer.from(v, 'base64')) : v instanceof Uint8Array ? v : bad(`${js} exports neither base64 text nor bytes`));
      } else {
        const file = join(dir, p);
        if (!existsSync(file)) bad(`shard ${p} not found beside ${path}`);
        parts.push(new Uint8Array(await readFile(file)));
      }
    }
  }
  const weightData = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    weightData.set(p, at);
    at += p.length;
  }
  return { modelTopology: json.modelTopology, weightsManifest: json.weightsManifest, weightData, format: json.format, signature: json.signature ?? json.userDefinedMetadata?.signature };
}

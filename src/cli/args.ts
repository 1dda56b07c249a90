import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ArgumentError } from '../errors.js';
import type { CustomLayer } from '../formats/tfjs-layers.js';

/** parseArgs with typed errors; numbers are checked here so commands get clean values. */
export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new ArgumentError('command line', argv.join(' '), `valid flags (${(e as Error).message})`);
  }
}

export function intFlag(name: string, value: unknown, fallback: number, min = 1, max = 1 << 30): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new ArgumentError(`--${name}`, value, `an integer ${min}..${max}`);
  return n;
}

export function listFlag(name: string, value: unknown, fallback: number[], min: number, max: number): number[] {
  if (value === undefined) return fallback;
  return String(value).split(',').map((v) => intFlag(name, v, 0, min, max));
}

/**
 * `--custom-layers FILE`: a JS module whose `customLayers` export (or default export) maps Keras class
 * names to the functions importModel builds those layers with (ImportOptions.customLayers).
 */
export async function customLayersFlag(value: unknown): Promise<Record<string, CustomLayer> | undefined> {
  if (value === undefined) return undefined;
  const allowed = 'a JS module (.js, .mjs) exporting customLayers (or a default export): { KerasClassName: ({ inputs, config, weight, op, constant }) => outputName }';
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(resolve(String(value))).href);
  } catch (e) {
    throw new ArgumentError('--custom-layers', value, `${allowed} (${(e as Error).message})`);
  }
  const exported = mod.customLayers ?? mod.default;
  // A CommonJS module arrives as the default export, its customLayers inside.
  const layers = (exported as { customLayers?: unknown } | undefined)?.customLayers ?? exported;
  const ok = layers !== null && typeof layers === 'object' && !Array.isArray(layers) && Object.keys(layers).length > 0
    && Object.values(layers).every((f) => typeof f === 'function');
  if (!ok) throw new ArgumentError('--custom-layers', value, `${allowed}; its export is ${layers === undefined ? 'missing' : typeof layers === 'object' ? `an object with ${Object.keys(layers ?? {}).join(', ') || 'no keys'}` : typeof layers}`);
  return layers as Record<string, CustomLayer>;
}

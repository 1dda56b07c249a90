import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ArgumentError } from '../errors.js';

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

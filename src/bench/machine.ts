import { cpus } from 'node:os';

/** The CPU, core count and Node version, for every figure a report prints. */
export function machineName(): string {
  return `${cpus()[0]?.model?.trim() ?? 'an unknown CPU'} (${cpus().length} cores, Node ${process.version})`;
}

/** Base class of every error faster-cnn throws on purpose. */
export class FasterCnnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An argument is of the wrong type, shape or value. */
export class ArgumentError extends FasterCnnError {
  constructor(
    readonly argument: string,
    readonly given: unknown,
    readonly allowed: string,
  ) {
    super(`${argument} must be ${allowed}, got ${describe(given)}`);
  }
}

/** Tables or buffers would exceed the configured memory cap; nothing was allocated. */
export class MemoryCapError extends FasterCnnError {
  constructor(
    readonly what: string,
    readonly bytes: number,
    readonly cap: number,
    hint: string,
  ) {
    super(`${what} would need ${formatBytes(bytes)}, over the cap of ${formatBytes(cap)}; ${hint}`);
  }
}

/** A result could exceed the int32 accumulator: refused instead of wrapping silently. */
export class OverflowError extends FasterCnnError {}

/** The requested backend cannot run in this environment. */
export class BackendUnavailableError extends FasterCnnError {
  constructor(
    readonly backend: string,
    readonly reason: string,
  ) {
    super(`backend '${backend}' is unavailable: ${reason}`);
  }
}

/** An optional package that a feature needs is not installed (faster-cnn does not pull it in by default). */
export class MissingPackageError extends FasterCnnError {
  constructor(
    readonly packageName: string,
    readonly feature: string,
    detail = '',
  ) {
    super(`${feature} needs the npm package '${packageName}', which is not installed: npm install ${packageName}${detail ? ` (${detail})` : ''}`);
  }
}

/** A kernel failed while running (a worker died, a device was lost). */
export class KernelError extends FasterCnnError {}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value === undefined || value === null) return String(value);
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as ArrayLike<unknown>).length})`;
  if (Array.isArray(value)) return value.length <= 8 ? `[${value.map(describe).join(', ')}]` : `an array of ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return `an object with keys {${Object.keys(value as object).slice(0, 6).join(', ')}}`;
}

/** Decimal units, as the seed and the issues quote them (75.5 MB = 75,497,472 B). */
export function formatBytes(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(2)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

import type { ConvGeometry } from '../conv/geometry.js';
import type { Requant } from '../conv/requantize.js';
import type { ProductFn } from '../tables/products.js';
import type { PciltTables } from '../tables/pcilt.js';
import type { OutputData, WeightData } from '../tensor.js';

/** A validated PCILT convolution; `integer` says whether the kernel returns Int32Array or Float32Array. */
export interface PciltJob {
  input: Uint8Array;
  tables: PciltTables;
  geometry: ConvGeometry;
  bias?: Int32Array | Float32Array;
  integer: boolean;
  threads?: number;
  /** Integer jobs only: the output is these codes of the sums (Uint8Array). */
  requant?: Requant;
  /** Where to write the output (validated: the output's type and length); a new array when absent. */
  out?: OutputData;
  /**
   * Bit-serial tables only (wasm): the integer weight of each bit plane, so that a code c stands for
   * sum_j bit_j(c) * planeWeights[j] (additive levels); 2^j when absent (the code itself).
   */
  planeWeights?: number[];
}

/** A validated direct convolution: out = sum fn(w, a) (+ bias). */
export interface DirectJob {
  input: Uint8Array;
  weight: WeightData;
  geometry: ConvGeometry;
  bias?: Int32Array | Float32Array;
  fn?: ProductFn;
  activationBits: number;
  integer: boolean;
  threads?: number;
  /** One of the backend's directKernels(job); its default when absent. */
  kernel?: string;
  /** As PciltJob.requant. */
  requant?: Requant;
  /** As PciltJob.out. */
  out?: OutputData;
}

/**
 * An engine that runs convolutions. `supports` says whether it can run a job at all
 * (null = yes, else why not), so 'auto' can fall back per job.
 */
export interface Backend {
  readonly name: string;
  /** Whether 'auto' may pick it (it measures every such backend on the first job of a kind). */
  readonly inAuto?: boolean;
  /** Whether its kernels requantize (job.requant) themselves; else the registry does it after them. */
  readonly requantizes?: boolean;
  /**
   * Whether it rejects input codes at or above 2^activationBits itself (checkCodeRange's error);
   * else the registry checks them before running it.
   */
  readonly checksCodes?: boolean;
  /** null when the backend can run here, else the reason it cannot. */
  unavailableReason(): Promise<string | null>;
  supportsPcilt(job: PciltJob): string | null;
  supportsDirect(job: DirectJob): string | null;
  /** Alternative direct kernels for this job, for 'auto' to measure (default first). */
  directKernels?(job: DirectJob): string[];
  pcilt(job: PciltJob): Promise<OutputData> | OutputData;
  direct(job: DirectJob): Promise<OutputData> | OutputData;
}

import { FasterCnnError } from '../errors.js';
import type { AttrValue, Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';

/** What an op's kernel may read besides its inputs. */
export interface OpContext {
  /** The default domain's opset the model was written for (attribute meanings changed across versions). */
  opset: number;
  threads?: number;
  /**
   * Whether a tensor is one of the graph's constants: kernels may lay those out once and keep the
   * layout (keyed by the array); anything else can change between calls. Absent: nothing is.
   */
  constant?: (t: Tensor) => boolean;
  /** The WebGPU device a run uses (src/runtime/gpu-executor.ts): what its kernels may rely on. */
  device?: { dot4: boolean };
  /** Quantized execution: Conv and Gemm run on activation codes (src/kernels/wasm/int-conv.ts). */
  quant?: import('../kernels/wasm/int-conv.js').QuantOptions;
}

/** Inputs as given to a node: undefined where an optional input was left out. */
export type Inputs = (Tensor | undefined)[];

/**
 * An op: its reference kernel, the plain TypeScript twin every fast kernel is checked against.
 * It checks its own attributes and inputs and throws OpError on anything outside its schema.
 */
export interface OpDef {
  op: string;
  /** Fewest and most inputs (omitted optional ones count). */
  inputs: [number, number];
  run(ins: Inputs, node: Node, ctx: OpContext): Tensor[] | Promise<Tensor[]>;
}

/**
 * A faster kernel for an op, used where `supports` says it applies: 'wasm' runs in the
 * WebAssembly engine, 'js' is an optimized TypeScript loop.
 */
export interface Kernel {
  op: string;
  backend: 'wasm' | 'js';
  variant: string;
  supports(ins: Inputs, node: Node, ctx: OpContext): boolean;
  run(ins: Inputs, node: Node, ctx: OpContext): Promise<Tensor[]>;
}

/** A node that cannot run: an attribute, input count, dtype or shape outside what its op allows. */
export class OpError extends FasterCnnError {
  constructor(readonly node: string, readonly op: string, why: string) {
    super(`node ${node} (${op}): ${why}`);
  }
}

const OPS = new Map<string, OpDef>();
const KERNELS = new Map<string, Kernel[]>();

export function defineOp(def: OpDef): void {
  OPS.set(def.op, def);
}

/** Registers a fast kernel; for an op, kernels registered earlier are tried first (src/kernels/index.ts orders them). */
export function registerKernel(k: Kernel): void {
  KERNELS.set(k.op, [...(KERNELS.get(k.op) ?? []), k]);
}

export function opDef(op: string): OpDef | undefined {
  return OPS.get(op);
}

export function kernelsFor(op: string): Kernel[] {
  return KERNELS.get(op) ?? [];
}

export function registeredOps(): string[] {
  return [...OPS.keys()].sort();
}

export function fail(node: Node, why: string): never {
  throw new OpError(node.name, node.op, why);
}

/** Attribute readers: a missing attribute gives the default, a wrongly typed one an OpError. */
export function attrInt(node: Node, key: string, dflt: number): number {
  const v = node.attrs[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(node, `attribute ${key} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

export function attrFloat(node: Node, key: string, dflt: number): number {
  const v = node.attrs[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') fail(node, `attribute ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function attrInts(node: Node, key: string, dflt?: number[]): number[] | undefined {
  const v: AttrValue | undefined = node.attrs[key];
  if (v === undefined) return dflt;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) fail(node, `attribute ${key} must be a list of integers, got ${JSON.stringify(v)}`);
  return v as number[];
}

export function attrFloats(node: Node, key: string): number[] | undefined {
  const v = node.attrs[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) fail(node, `attribute ${key} must be a list of numbers`);
  return v as number[];
}

export function attrStr(node: Node, key: string, dflt: string, allowed?: string[]): string {
  const v = node.attrs[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || (allowed && !allowed.includes(v))) fail(node, `attribute ${key} must be ${allowed ? `one of ${allowed.join(', ')}` : 'a string'}, got ${JSON.stringify(v)}`);
  return v;
}

/** Input i, which the op needs. */
export function need(ins: Inputs, i: number, node: Node): Tensor {
  return ins[i] ?? fail(node, `input ${i} is missing`);
}

/** An axis in [-rank, rank) as a non-negative index. */
export function axisOf(node: Node, axis: number, rank: number, name = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) fail(node, `${name} ${axis} is outside [-${rank}, ${rank})`);
  return axis < 0 ? axis + rank : axis;
}

/** An index along an axis of size D, negative counting from the end; outside [-D, D) is an error. */
export function indexIn(node: Node, v: number, D: number): number {
  const j = v < 0 ? v + D : v;
  if (!(j >= 0 && j < D)) fail(node, `index ${v} is outside [-${D}, ${D})`);
  return j;
}

export function checkDType(node: Node, t: Tensor, allowed: readonly string[], what = 'input'): void {
  if (!allowed.includes(t.dtype)) fail(node, `${what} is ${t.dtype}; allowed: ${allowed.join(', ')}`);
}

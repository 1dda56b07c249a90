import { FasterCnnError } from '../errors.js';
import { GraphError, outShape, type Attrs, type Const, type Graph, type GraphNode, type Op } from './graph.js';

/** A model that uses operations or attributes faster-cnn does not run: every one is listed. */
export class UnsupportedModelError extends FasterCnnError {
  constructor(readonly problems: string[]) {
    super(`the model uses ${problems.length} unsupported operation(s) or attribute(s):\n  ${problems.join('\n  ')}`);
  }
}

/** A model file that is truncated, corrupted, or not the format it claims to be. */
export class ModelImportError extends FasterCnnError {}

/** Most elements one imported tensor may hold (1 G floats = 4 GB). */
export const MAX_ELEMENTS = 1 << 28;

/**
 * Builds a Graph node by node, computing each output shape as it goes (importers need shapes for
 * 'same' padding and layout decisions), and collecting unsupported features instead of stopping
 * at the first.
 */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly consts = new Map<string, Const>();
  readonly shapes = new Map<string, number[]>();
  readonly problems: string[] = [];
  private count = 0;

  constructor(readonly inputName: string, readonly inputShape: number[]) {
    this.shapes.set(inputName, inputShape);
  }

  shape(t: string): number[] {
    const s = this.shapes.get(t);
    if (!s) throw new ModelImportError(`tensor ${t} is read before anything produces it`);
    return s;
  }

  constant(name: string, shape: number[], data: Float32Array): string {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new ModelImportError(`constant ${name}: ${data.length} values for shape [${shape}]`);
    const key = this.consts.has(name) ? `${name}#${this.count++}` : name;
    this.consts.set(key, { shape, data });
    this.shapes.set(key, shape);
    return key;
  }

  /** Adds a node and returns its output tensor's name. */
  add(op: Op, name: string, inputs: string[], attrs: Attrs = {}, output = `${name}:${op}#${this.count++}`): string {
    const node: GraphNode = { op, name, inputs, output, attrs };
    try {
      this.shapes.set(output, outShape(node, inputs.map((i) => this.shape(i))));
    } catch (e) {
      if (e instanceof GraphError) throw new ModelImportError(e.message);
      throw e;
    }
    this.nodes.push(node);
    return output;
  }

  unsupported(what: string): void {
    this.problems.push(what);
  }

  finish(output: string, layout: 'nchw' | 'nhwc'): Graph {
    if (this.problems.length) throw new UnsupportedModelError(this.problems);
    this.shape(output);
    // Drop constants no node reads (weights folded into others, unused initializers).
    const read = new Set(this.nodes.flatMap((n) => n.inputs));
    for (const k of [...this.consts.keys()]) if (!read.has(k)) this.consts.delete(k);
    return { input: { name: this.inputName, shape: this.inputShape, layout }, output, nodes: this.nodes, consts: this.consts };
  }
}

/** 'same' padding as TensorFlow computes it: the odd pixel goes to the end. */
export function samePads(size: number, k: number, stride: number, dilation = 1): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max(0, (out - 1) * stride + (k - 1) * dilation + 1 - size);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** IEEE half to float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

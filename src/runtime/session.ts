import { ArgumentError, KernelError } from '../errors.js';
import { topoSort, type Graph, type Node, type ValueInfo } from '../ir/graph.js';
import { checkTensor, sizeOf, type Tensor, type TypedData } from '../ir/tensor.js';
import { copyOf } from '../tensor.js';
import { kernelsFor, opDef, type Kernel, type OpContext } from '../ops/index.js';
import { fail } from '../ops/registry.js';
import { DEAD, deadNode, isDead } from '../ops/control.js';
import '../kernels/index.js';
import { getEngine } from '../backends/wasm/engine.js';
import { freeData, ownCopy } from './memory.js';
import { GpuExecutor } from './gpu-executor.js';
import { FOLD_LIMIT, shapeOnly } from '../passes/optimize.js';
import { layerInputs, rangeOf, type QuantOptions, type Range } from '../kernels/wasm/int-conv.js';

export interface RunOptions {
  /**
   * 'auto' (default): the registered fast kernels where they apply, the reference elsewhere; 'ref':
   * reference kernels only; 'webgpu': tensors on the WebGPU device, its kernels where they apply
   * and the CPU's elsewhere (src/runtime/gpu-executor.ts).
   */
  backend?: 'auto' | 'ref' | 'webgpu';
  threads?: number;
  /** Filled with one entry per node run, in run order. */
  profile?: NodeTiming[];
  /** Run Conv and Gemm nodes on activation codes (all at `bits`, or as `layers` says; see QuantOptions). */
  quant?: QuantOptions;
  /** Calibration: widened to the range every Conv and Gemm input took. */
  observe?: Map<string, Range>;
  /** Inner values to return besides the outputs, by name (copies). */
  keep?: string[];
  /** backend 'webgpu': filled with the bytes CPU kernels made cross between host and device, and the dispatches. */
  gpu?: { crossedBytes?: number; dispatches?: number };
}

/** One node's run; `crossedBytes`: on WebGPU, what its inputs had to cross between host and device. */
export interface NodeTiming { node: string; op: string; kernel: string; ms: number; shape: number[]; crossedBytes?: number }

/**
 * What one input-shape signature resolved to: the kernel each node runs, every value's shape, and
 * the outputs of the nodes that compute from constants and shapes alone (`folded`, by node index;
 * `read`: the input shape each Shape or Size node among them read, checked on every run).
 */
interface Plan {
  kernels: (Kernel | null)[];
  shapes: Map<string, number[]>;
  folded: Map<number, Tensor[]>;
  read: Map<number, number[]>;
  foldedData: WeakSet<TypedData>;
}

/**
 * Runs an IR graph: any inputs and outputs, sizes bound per call. The first call for a set of
 * input shapes picks each node's kernel (and records every shape and the outputs of shape
 * arithmetic); later calls with the same shapes reuse that plan and skip the shape arithmetic.
 */
export class Session {
  readonly nodes: Node[];
  private readonly plans = new Map<string, Plan>();
  private readonly lastUse = new Map<string, number>();
  private readonly constData: Set<unknown>;
  /** Per node: computes from constants and shapes alone (src/passes/optimize.ts shapeOnly). */
  private readonly shapeOnly: boolean[];
  private gpu?: GpuExecutor;

  constructor(readonly graph: Graph) {
    this.nodes = topoSort(graph);
    this.constData = new Set([...graph.consts.values()].map((t) => t.data));
    const known = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.consts.keys(), '']);
    this.nodes.forEach((n, i) => {
      const def = opDef(n.op) ?? fail(n, 'unknown op');
      if (n.inputs.length < def.inputs[0] || n.inputs.length > def.inputs[1]) fail(n, `has ${n.inputs.length} inputs; the op takes ${def.inputs[0]}..${def.inputs[1]}`);
      for (const t of n.inputs) {
        if (!known.has(t)) fail(n, `reads ${t}, which no input, constant or earlier node provides`);
        this.lastUse.set(t, i);
      }
      for (const o of n.outputs) known.add(o);
    });
    this.shapeOnly = shapeOnly(graph, this.nodes);
    for (const o of graph.outputs) if (!known.has(o.name)) throw new ArgumentError('graph', o.name, 'a graph whose outputs are produced by its nodes');
  }

  get inputs(): ValueInfo[] {
    return this.graph.inputs;
  }

  get outputs(): ValueInfo[] {
    return this.graph.outputs;
  }

  /** Shapes of every value for the last run with these input shapes (undefined before one). */
  shapesFor(feeds: Record<string, Tensor>): Map<string, number[]> | undefined {
    return this.plans.get(signature(this.graph.inputs, feeds))?.shapes;
  }

  async run(feeds: Record<string, Tensor>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    const g = this.graph;
    checkFeeds(g.inputs, feeds);
    const key = `${signature(g.inputs, feeds)}|${opts.backend ?? 'auto'}|${quantKey(opts.quant)}`;
    if (opts.backend === 'webgpu') {
      this.gpu ??= new GpuExecutor(g, this.nodes, this.lastUse, (t) => this.constData.has(t.data));
      return this.gpu.run(feeds, key, opts);
    }
    let plan = this.plans.get(key);
    const fresh = !plan;
    // The wasm kernels apply once the engine runs: start it before the plan is made (where it cannot run, the plan uses the others).
    if (fresh && opts.backend !== 'ref') await getEngine().catch(() => undefined);
    plan ??= { kernels: [], shapes: new Map(), folded: new Map(), read: new Map(), foldedData: new WeakSet() };
    const folded = plan.foldedData;
    const ctx: OpContext = { opset: g.opset, threads: opts.threads, quant: opts.quant, constant: (t) => this.constData.has(t.data) || folded.has(t.data) };
    const values = new Map<string, Tensor>();
    // How many live values share each data array (a Reshape's output is its input's data): freed at 0.
    const holders = new Map<unknown, number>();
    const hold = (name: string, v: Tensor) => {
      values.set(name, v);
      holders.set(v.data, (holders.get(v.data) ?? 0) + 1);
    };
    for (const i of g.inputs) hold(i.name, feeds[i.name]);
    const outputs = new Set(g.outputs.map((o) => o.name));
    const keep = new Set(opts.keep ?? []), kept = new Map<string, Tensor>();
    for (const name of keep) if (feeds[name]) kept.set(name, feeds[name]);
    // Set once a Shape or Size node reads another shape than the plan recorded (a shape that depends on data).
    let stale = false;
    try {
      for (let i = 0; i < this.nodes.length; i++) {
        const n = this.nodes[i];
        const ins = layerInputs(opts.quant, n, g.consts).map((t) => (t === '' ? undefined : values.get(t) ?? g.consts.get(t)));
        // A node on a conditional branch not taken makes DEAD outputs and runs nothing (src/ops/control.ts).
        const dead = deadNode(n, ins);
        if (plan.kernels[i] === undefined && !dead) plan.kernels[i] = opts.backend === 'ref' ? null : kernelsFor(n.op).find((k) => k.supports(ins, n, ctx)) ?? null;
        const k = plan.kernels[i];
        if (opts.observe && !dead && (n.op === 'Conv' || n.op === 'Gemm') && ins[0]?.dtype === 'float32') {
          const r = rangeOf(ins[0].data as Float32Array), was = opts.observe.get(n.inputs[0]);
          opts.observe.set(n.inputs[0], was ? [Math.min(was[0], r[0]), Math.max(was[1], r[1])] : r);
        }
        const t0 = opts.profile ? performance.now() : 0;
        let cached = this.shapeOnly[i] && !stale && !dead ? plan.folded.get(i) : undefined;
        const read = plan.read.get(i);
        if (cached && read && !sameShape(ins[0]?.shape, read)) {
          stale = true;
          plan.folded.clear();
          cached = undefined;
        }
        const outs = dead ? n.outputs.map(() => DEAD)
          : cached ?? recordFolded(this.shapeOnly[i] && !stale ? plan : null, i, n, ins, k ? await k.run(ins, n, ctx) : await opDef(n.op)!.run(ins, n, ctx));
        n.outputs.forEach((o, j) => {
          if (o === '') return;
          if (!outs[j]) fail(n, `produced no output ${j} (${o})`);
          if (keep.has(o) && !isDead(outs[j])) kept.set(o, { ...outs[j], data: copyOf(outs[j].data) });
          hold(o, outs[j]);
          if (!isDead(outs[j]) && !plan!.shapes.has(o)) plan!.shapes.set(o, outs[j].shape);
        });
        opts.profile?.push({ node: n.name, op: n.op, kernel: dead ? 'dead' : cached ? 'folded' : k ? `${k.backend}:${k.variant}` : 'ref', ms: performance.now() - t0, shape: outs[0]?.shape ?? [] });
        // Values whose last reader this was are dropped; wasm memory behind them is freed once no value holds it.
        for (const t of n.inputs) {
          if (this.lastUse.get(t) !== i || outputs.has(t) || !values.has(t)) continue;
          const d = values.get(t)!.data;
          values.delete(t);
          const left = holders.get(d)! - 1;
          holders.set(d, left);
          if (left === 0) freeData(d);
        }
      }
      if (fresh) this.plans.set(key, plan);
      const result: Record<string, Tensor> = {};
      for (const [name, v] of kept) result[name] = v;
      for (const o of g.outputs) {
        const v = values.get(o.name) ?? g.consts.get(o.name) ?? feeds[o.name];
        if (isDead(v)) throw new KernelError(`output ${o.name} lies on a conditional branch this call did not take`);
        // Outputs never point into wasm memory or at a constant the caller could change.
        result[o.name] = ownCopy(v, g.consts.get(o.name) === v || folded.has(v.data));
      }
      return result;
    } finally {
      // Results were copied out of wasm memory above: everything still held there goes.
      for (const v of values.values()) freeData(v.data);
    }
  }
}

const layerIds = new WeakMap<object, number>();
let nextLayerId = 1;

/** Which quantization a plan was made for: the bit width and the per-layer settings object (by identity). */
function quantKey(q: QuantOptions | undefined): string {
  if (!q) return '0';
  let id = 0;
  if (q.layers) {
    id = layerIds.get(q.layers) ?? nextLayerId++;
    layerIds.set(q.layers, id);
  }
  return `${q.bits ?? 0}/${id}`;
}

/**
 * Node i's outputs as it ran them; given the plan (a shape-only node, while no shape read this call has
 * changed), copies kept in it for the next calls, with the shape a Shape or Size node read.
 */
function recordFolded(plan: Plan | null, i: number, node: Node, ins: (Tensor | undefined)[], outs: Tensor[]): Tensor[] {
  if (!plan || !outs.every((o) => !o || sizeOf(o.shape) <= FOLD_LIMIT)) return outs;
  const kept = outs.map((o) => o && { ...o, data: copyOf(o.data) });
  for (const o of kept) if (o) plan.foldedData.add(o.data);
  plan.folded.set(i, kept);
  if (node.op === 'Shape' || node.op === 'Size') plan.read.set(i, ins[0]!.shape);
  return kept;
}

function sameShape(a: number[] | undefined, b: number[]): boolean {
  return !!a && a.length === b.length && a.every((d, i) => d === b[i]);
}

function signature(inputs: ValueInfo[], feeds: Record<string, Tensor>): string {
  return inputs.map((i) => `${feeds[i.name]?.dtype}[${feeds[i.name]?.shape}]`).join(';');
}

/** Every declared input present, of its dtype and rank, fixed sizes equal, named sizes bound consistently. */
export function checkFeeds(inputs: ValueInfo[], feeds: Record<string, Tensor>): void {
  if (typeof feeds !== 'object' || feeds === null) throw new ArgumentError('feeds', feeds, `an object mapping ${inputs.map((i) => i.name).join(', ')} to tensors`);
  const bound = new Map<string, number>();
  for (const i of inputs) {
    const t = feeds[i.name];
    if (t === undefined) throw new ArgumentError(`feeds["${i.name}"]`, t, `a ${i.dtype} tensor${i.shape ? ` of shape [${i.shape}]` : ''} (the model's inputs: ${inputs.map((x) => x.name).join(', ')})`);
    checkTensor(t, `feeds["${i.name}"]`);
    const want = `a ${i.dtype} tensor${i.shape ? ` of shape [${i.shape}]` : ''}`;
    if (t.dtype !== i.dtype) throw new ArgumentError(`feeds["${i.name}"].dtype`, t.dtype, want);
    if (i.shape) {
      if (t.shape.length !== i.shape.length) throw new ArgumentError(`feeds["${i.name}"].shape`, t.shape, want);
      i.shape.forEach((d, k) => {
        const got = t.shape[k];
        if (typeof d === 'number' ? d >= 0 && got !== d : (bound.get(d) ?? got) !== got) {
          throw new ArgumentError(`feeds["${i.name}"].shape`, t.shape, `${want}${typeof d === 'string' ? ` with ${d} = ${bound.get(d)} as in the other inputs` : ''}`);
        }
        if (typeof d === 'string') bound.set(d, got);
      });
    }
    if (sizeOf(t.shape) !== t.data.length) throw new ArgumentError(`feeds["${i.name}"].data`, t.data, `${sizeOf(t.shape)} elements`);
  }
  for (const k of Object.keys(feeds)) if (!inputs.some((i) => i.name === k)) throw new ArgumentError('feeds', k, `only the model's inputs: ${inputs.map((i) => i.name).join(', ')}`);
}

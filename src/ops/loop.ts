import type { Graph, Node } from '../ir/graph.js';
import { fromNumbers, numbers, sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import type { Session } from '../runtime/session.js';
import { truth } from './control.js';
import { attrInt, defineOp, fail } from './registry.js';

/**
 * A TF while loop (the Enter/Merge/Switch/NextIteration/Exit frame tf.while_loop and tf.map_fn
 * leave in a graph model), as src/formats/tfjs-graph.ts collapses it: inputs are the loop
 * variables' first values, then the values the loop only reads; `cond` maps them to one bool and
 * `body` to the variables' next values. Outputs: the variables once `cond` is false.
 */
export const MAX_ITERATIONS = 1_000_000;

/** A sub-graph's session for the dtypes it is fed (the importer knows no dtype for tensor lists). */
const sessions = new WeakMap<Graph, Map<string, Session>>();
async function sessionFor(g: Graph, feeds: Tensor[]): Promise<Session> {
  const key = feeds.map((t) => t.dtype).join();
  let byKey = sessions.get(g);
  if (!byKey) sessions.set(g, (byKey = new Map()));
  let s = byKey.get(key);
  if (!s) {
    const { Session: S } = await import('../runtime/session.js');
    s = new S({ ...g, inputs: g.inputs.map((v, i) => ({ ...v, dtype: feeds[i].dtype })) });
    byKey.set(key, s);
  }
  return s;
}

async function runGraph(g: Graph, values: Tensor[], threads: number | undefined): Promise<Tensor[]> {
  const s = await sessionFor(g, values);
  const out = await s.run(Object.fromEntries(g.inputs.map((v, i) => [v.name, values[i]])), { threads });
  return g.outputs.map((o) => out[o.name]);
}

/**
 * ONNX If: the branch the condition picks runs as a graph of its own. The importer passes the
 * outer values the branches read as inputs after the condition (src/formats/onnx/read-ir.ts).
 */
defineOp({
  op: 'If', inputs: [1, 1024],
  async run(ins, node, ctx) {
    if (!ins[0]) fail(node, 'has no condition');
    const branch = node.attrs[truth(node, ins[0], 'its condition') ? 'then_branch' : 'else_branch'] as Graph;
    if (!branch?.nodes) fail(node, 'has no then_branch and else_branch graphs');
    const outer = ins.slice(1);
    if (outer.some((t) => !t)) fail(node, 'misses an input');
    return runGraph(branch, outer as Tensor[], ctx.threads);
  },
});

defineOp({
  op: '_TfLoop', inputs: [0, 1024],
  async run(ins, node, ctx) {
    const cond = node.attrs.cond as Graph, body = node.attrs.body as Graph, nv = attrInt(node, 'vars', 0);
    if (!cond?.nodes || !body?.nodes) fail(node, 'has no cond and body graphs');
    if (ins.some((t) => !t)) fail(node, 'misses an input');
    let vars = ins.slice(0, nv) as Tensor[];
    const reads = ins.slice(nv) as Tensor[];
    for (let it = 0; ; it++) {
      if (it >= MAX_ITERATIONS) fail(node, `ran ${MAX_ITERATIONS} iterations without its condition turning false`);
      const [go] = await runGraph(cond, [...vars, ...reads], ctx.threads);
      if (!truth(node, go, 'its condition')) break;
      vars = await runGraph(body, [...vars, ...reads], ctx.threads);
    }
    return vars;
  },
});

/**
 * ONNX Loop: the body runs while the trip count M (absent: no limit) and the condition (absent:
 * true) allow, taking the iteration number, the condition and the loop-carried values (then the outer
 * values it reads, passed by the importer) and giving the next condition, the next values and its scan
 * outputs. Outputs: the final values, then each scan output stacked along a new first axis.
 */
defineOp({
  op: 'Loop', inputs: [2, 1024],
  async run(ins, node, ctx) {
    const body = node.attrs.body as Graph, own = attrInt(node, '_own', ins.length);
    if (!body?.nodes) fail(node, 'has no body graph');
    const n = own - 2, k = body.outputs.length - 1 - n;
    if (k < 0) fail(node, `its body gives ${body.outputs.length} outputs for ${n} loop-carried values`);
    const [m, c] = ins;
    if (ins.slice(2).some((t) => !t)) fail(node, 'misses an input');
    const trips = m ? Number(numbers(m)[0]) : Infinity;
    let go = c ? truth(node, c, 'its condition') : true;
    let values = ins.slice(2, own) as Tensor[];
    const outer = ins.slice(own) as Tensor[];
    const scans: Tensor[][] = Array.from({ length: k }, () => []);
    for (let i = 0; i < trips && go; i++) {
      if (i >= MAX_ITERATIONS) fail(node, `ran ${MAX_ITERATIONS} iterations without its condition turning false`);
      const out = await runGraph(body, [fromNumbers('int64', [], [i]), fromNumbers('bool', [], [1]), ...values, ...outer], ctx.threads);
      go = truth(node, out[0], 'its body\'s condition');
      values = out.slice(1, 1 + n);
      out.slice(1 + n).forEach((t, j) => scans[j].push(t));
    }
    return [...values, ...scans.map((ts, j) => stack(node, ts, body.outputs[1 + n + j]))];
  },
});

/** Tensors of one shape stacked along a new first axis (none: [0, ...the body's declared shape], where it declares one). */
function stack(node: Node, ts: Tensor[], declared: Graph['outputs'][number]): Tensor {
  if (!ts.length) {
    const dims = declared.shape;
    return zeros(declared.dtype, dims && dims.every((d) => typeof d === 'number' && d >= 0) ? [0, ...(dims as number[])] : [0]);
  }
  const shape = ts[0].shape, size = sizeOf(shape);
  if (ts.some((t) => t.dtype !== ts[0].dtype || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    fail(node, `its scan outputs change shape between iterations ([${shape}], then [${ts.find((t) => t.shape.join() !== shape.join())?.shape}])`);
  }
  const y = zeros(ts[0].dtype, [ts.length, ...shape]);
  ts.forEach((t, i) => (y.data as Float32Array).set(t.data as Float32Array, i * size));
  return y;
}

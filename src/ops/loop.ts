import type { Graph } from '../ir/graph.js';
import { numbers, type Tensor } from '../ir/tensor.js';
import type { Session } from '../runtime/session.js';
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
    const c = ins[0];
    if (!c || c.data.length !== 1) fail(node, `its condition must hold one value, got [${c?.shape ?? 'nothing'}]`);
    const branch = node.attrs[Number(numbers(c)[0]) !== 0 ? 'then_branch' : 'else_branch'] as Graph;
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
      if (go.data.length !== 1) fail(node, `its condition has shape [${go.shape}]; it must hold one value`);
      if (Number(numbers(go)[0]) === 0) break;
      vars = await runGraph(body, [...vars, ...reads], ctx.threads);
    }
    return vars;
  },
});

import type { DType, Tensor } from './tensor.js';

/** A dimension: a size, or the name of a size bound when the graph runs (e.g. 'batch'). */
export type Dim = number | string;

export interface ValueInfo { name: string; dtype: DType; shape: Dim[] | null }

export type AttrValue = number | string | number[] | string[] | Tensor | Graph;

/** One operation: `inputs` may hold '' for an omitted optional input; several outputs allowed. */
export interface Node {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

/**
 * A model as the runtime sees it: any number of inputs and outputs, nodes in run order,
 * constants of any dtype. `opset` is the default domain's version the source was written for.
 */
export interface Graph {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  consts: Map<string, Tensor>;
  opset: number;
}

/** Nodes in an order where every input is produced before it is read (Kahn's algorithm, stable). */
export function topoSort(g: Graph): Node[] {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const deps = g.nodes.map((n) => new Set(n.inputs.filter((t) => producer.has(t)).map((t) => producer.get(t)!)));
  const done = new Array<boolean>(g.nodes.length).fill(false);
  const out: Node[] = [];
  let progress = true;
  while (out.length < g.nodes.length && progress) {
    progress = false;
    for (let i = 0; i < g.nodes.length; i++) {
      if (done[i] || [...deps[i]].some((d) => !done[d])) continue;
      done[i] = true;
      out.push(g.nodes[i]);
      progress = true;
    }
  }
  return out.length === g.nodes.length ? out : g.nodes;
}

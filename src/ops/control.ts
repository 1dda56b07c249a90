import type { Node } from '../ir/graph.js';
import { numbers, type Tensor } from '../ir/tensor.js';
import { checkDType, defineOp, fail } from './registry.js';

/**
 * TF's conditionals as tfjs graph models keep them (Switch and Merge, no subgraphs), run as tfjs
 * runs them. A value on the branch not taken is DEAD; the executors give every node with a DEAD
 * input DEAD outputs without running it, except Merge, which passes on its first live input.
 * Control inputs only order work (tfjs ignores them too): constants are live on both branches.
 */
export const DEAD: Tensor = Object.freeze({ dtype: 'float32', shape: [0], data: new Float32Array(0) }) as Tensor;

export const isDead = (t: unknown): boolean => t === DEAD;

/** Ops that pass values through (no data read or written): the executors run them wherever the values live. */
export const ROUTING = new Set(['Switch', 'Merge']);

/** Whether a node's inputs make it DEAD: any DEAD input, for every op but Merge. */
export const deadNode = (n: Node, ins: unknown[]): boolean => n.op !== 'Merge' && ins.some(isDead);

/**
 * A routing node's outputs: Switch (data, pred) gives [data, DEAD] when pred is false and
 * [DEAD, data] when true; Merge gives its first live input and that input's index.
 */
export function route<T>(node: Node, ins: (T | Tensor | undefined)[], predicate: () => boolean): (T | Tensor)[] {
  if (node.op === 'Switch') return predicate() ? [DEAD, ins[0]!] : [ins[0]!, DEAD];
  const i = ins.findIndex((t) => t !== undefined && !isDead(t));
  return i < 0 ? [DEAD, DEAD] : [ins[i]!, { dtype: 'int32', shape: [], data: Int32Array.of(i) }];
}

/** Whether a condition (`what`: how the error names it) holds: one value, true where non-zero (Switch, If, the loops). */
export function truth(node: Node, t: Tensor, what: string): boolean {
  if (t.data.length !== 1) fail(node, `${what} has shape [${t.shape}]; it must hold one value`);
  return Number(numbers(t)[0]) !== 0;
}

/** Switch's predicate: a bool scalar (or one element). */
export function predicateOf(node: Node, p: Tensor | undefined): boolean {
  if (!p) fail(node, 'has no predicate');
  checkDType(node, p, ['bool'], 'predicate');
  return truth(node, p, 'predicate');
}

defineOp({ op: 'Switch', inputs: [2, 2], run: (ins, node) => route(node, ins, () => predicateOf(node, ins[1])) as Tensor[] });
defineOp({ op: 'Merge', inputs: [1, 64], run: (ins, node) => route(node, ins, () => false) as Tensor[] });

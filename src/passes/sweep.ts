import type { Node } from '../ir/graph.js';

/**
 * The rewrites of one sweep over a node list: `take` replaces a node (by one node, several, or none)
 * and marks every node the rewrite read, so that later candidates of the same sweep, whose view of
 * producers and readers predates it, leave those nodes alone; `apply` gives the new list in the same
 * order. Sweeps repeat until one changes nothing: linear per sweep, where restarting after each
 * change was quadratic (a 35k-node jax2tf export took minutes: docs/perf-notes.md 61).
 */
export function sweep() {
  const touched = new Set<Node>(), replaced = new Map<Node, Node | Node[] | null>();
  return {
    free: (...ns: (Node | undefined)[]) => ns.every((n) => !n || !touched.has(n)),
    take(n: Node, by: Node | Node[] | null, read: (Node | undefined)[] = []) {
      touched.add(n);
      for (const m of read) if (m) touched.add(m);
      replaced.set(n, by);
    },
    get changed() {
      return replaced.size > 0;
    },
    apply: (nodes: Node[]) => nodes.flatMap((n) => {
      const by = replaced.get(n);
      return by === undefined ? [n] : by ?? [];
    }),
  };
}

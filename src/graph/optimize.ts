import type { Graph, GraphNode } from './graph.js';

/**
 * Folds what an imported graph spells out in separate nodes into its convolutions: a per-channel
 * affine (batch norm) into the weights and bias, a following ReLU / ReLU6 into the activation, a
 * zero spatial pad before it into its padding. Only where the intermediate tensor has no other
 * reader; the result computes the same function (up to float rounding of the folded weights).
 */
export function optimize(g: Graph): Graph {
  const readers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  readers.set(g.output, (readers.get(g.output) ?? 0) + 1);
  const consts = new Map(g.consts);
  const producer = new Map<string, GraphNode>();
  const rename = new Map<string, string>();
  const nodes: GraphNode[] = [];
  const src = (t: string) => rename.get(t) ?? t;
  for (const orig of g.nodes) {
    const n: GraphNode = { ...orig, inputs: orig.inputs.map(src), attrs: { ...orig.attrs } };
    const p = producer.get(n.inputs[0]);
    const alone = p && readers.get(orig.inputs[0]) === 1;
    const foldable = alone && (p.op === 'conv' || p.op === 'dense') && (p.attrs.act ?? 'none') === 'none';
    if (foldable && n.op === 'affine' && consts.has(n.inputs[1]) && consts.has(n.inputs[2])) {
      const scale = consts.get(n.inputs[1])!.data, shift = consts.get(n.inputs[2])!.data;
      const w = consts.get(p.inputs[1])!;
      const O = w.shape[0], K = w.data.length / O;
      const wd = w.data.map((v, i) => v * scale[Math.floor(i / K)]);
      const b = p.inputs[2] ? consts.get(p.inputs[2])!.data : new Float32Array(O);
      const bd = new Float32Array(O).map((_, o) => b[o] * scale[o] + shift[o]);
      const wn = `${p.inputs[1]}#folded`, bn = `${p.name}/bias#folded`;
      consts.set(wn, { shape: w.shape, data: wd });
      consts.set(bn, { shape: [O], data: bd });
      p.inputs = [p.inputs[0], wn, bn];
      rename.set(n.output, p.output);
      continue;
    }
    const six = n.op === 'clip' && n.attrs.min === 0 && n.attrs.max === 6;
    if (foldable && (n.op === 'relu' || six)) {
      p.attrs.act = n.op === 'relu' ? 'relu' : 'relu6';
      rename.set(n.output, p.output);
      continue;
    }
    if (n.op === 'conv') {
      const q = producer.get(n.inputs[0]);
      const pads = (q?.attrs.pads ?? []) as number[];
      if (q?.op === 'pad' && q.attrs.value === 0 && readers.get(q.output) === 1 && pads.length === 8 && [0, 1, 4, 5].every((i) => pads[i] === 0)) {
        const [t, l, b, r] = n.attrs.pad as number[];
        n.attrs.pad = [t + pads[2], l + pads[3], b + pads[6], r + pads[7]];
        n.inputs[0] = q.inputs[0];
        nodes.splice(nodes.indexOf(q), 1);
      }
    }
    nodes.push(n);
    producer.set(n.output, n);
  }
  const read = new Set(nodes.flatMap((n) => n.inputs));
  for (const k of [...consts.keys()]) if (!read.has(k)) consts.delete(k);
  return { input: g.input, output: src(g.output), nodes, consts };
}

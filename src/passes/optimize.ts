import type { Graph, Node } from '../ir/graph.js';
import { numberAt, sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import { FUSABLE } from '../ops/conv.js';
import { opDef } from '../ops/index.js';
import { sinkTransposes } from './layout.js';
import { sweep } from './sweep.js';

/** Largest tensor constant folding may create (elements): bigger results stay computed at run time. */
export const FOLD_LIMIT = 1 << 22;

/** Ops never folded: their outputs are not a function of their inputs' values alone. */
const UNFOLDED = new Set(['Dropout', 'NonMaxSuppression', 'Switch', 'Merge', '_TfLoop', 'If', 'Loop']);

/**
 * Runs every node whose inputs are all constants once, at import, and keeps its outputs as
 * constants (shape arithmetic on initializers, weight transposes, DequantizeLinear of weights).
 */
export async function foldConstants(g: Graph): Promise<Graph> {
  const consts = new Map(g.consts);
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    const def = opDef(n.op);
    const ins = n.inputs.map((t) => (t === '' ? undefined : consts.get(t)));
    const foldable = def && n.inputs.every((t, i) => t === '' || ins[i]) && !UNFOLDED.has(n.op);
    if (foldable) {
      const outs = await def.run(ins, n, { opset: g.opset });
      if (outs.every((o) => sizeOf(o.shape) <= FOLD_LIMIT)) {
        n.outputs.forEach((o, i) => o && outs[i] && consts.set(o, outs[i]));
        continue;
      }
    }
    nodes.push(n);
  }
  return dropDead({ ...g, nodes, consts });
}

/**
 * Which of `nodes` (in run order) compute from constants and input shapes alone: Shape and Size,
 * and any node whose inputs are constants or such nodes' outputs (a Shape -> Gather -> Concat ->
 * Reshape chain, up to the Reshape). Their outputs are fixed once the graph's input shapes are,
 * unless a shape they read depends on data (a runtime checks the shapes Shape and Size read).
 */
export function shapeOnly(g: Graph, nodes: Node[]): boolean[] {
  const fixed = new Set(g.consts.keys());
  return nodes.map((n) => {
    const only = !UNFOLDED.has(n.op) && (n.op === 'Shape' || n.op === 'Size' || n.inputs.every((t) => t === '' || fixed.has(t)));
    if (only) for (const o of n.outputs) fixed.add(o);
    return only;
  });
}

/** Removes nodes nothing reads on the way to the outputs, and constants no node reads. */
export function dropDead(g: Graph): Graph {
  const live = new Set(g.outputs.map((o) => o.name));
  const nodes: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => live.has(o))) continue;
    nodes.unshift(n);
    for (const t of n.inputs) live.add(t);
  }
  const consts = new Map([...g.consts].filter(([k]) => live.has(k)));
  return { ...g, nodes, consts };
}

/** Identity nodes removed: their readers read the input instead (an Identity that names a graph output stays). */
export function skipIdentities(g: Graph): Graph {
  const outputs = new Set(g.outputs.map((o) => o.name));
  const alias = new Map<string, string>();
  const nodes: Node[] = [];
  const resolve = (t: string) => alias.get(t) ?? t;
  for (const n of g.nodes) {
    const inputs = n.inputs.map(resolve);
    if (n.op === 'Identity' && !outputs.has(n.outputs[0]) && inputs[0]) alias.set(n.outputs[0], inputs[0]);
    else nodes.push({ ...n, inputs });
  }
  return { ...g, nodes };
}

/** Who reads each value. */
function readers(g: Graph): Map<string, Node[]> {
  const r = new Map<string, Node[]>();
  const add = (t: string, n: Node) => {
    const list = r.get(t);
    if (list) list.push(n);
    else r.set(t, [n]);
  };
  for (const n of g.nodes) for (const t of n.inputs) add(t, n);
  for (const o of g.outputs) add(o.name, { op: '<output>', name: o.name, inputs: [], outputs: [], attrs: {} });
  return r;
}

/**
 * Folds zero pads, batch norms and per-channel Mul/Add into the convolutions around them, finds
 * swish-like activations and PReLU written out, moves a Linear layer's bias Add into its MatMul,
 * then moves an activation that alone reads a Conv or Gemm output into it (`_act`). Conv and Gemm
 * kernels, reference and wasm, apply it.
 */
export function fuse(g: Graph): Graph {
  const consts = new Map(g.consts);
  let nodes = g.nodes.slice();
  const renamed = (from: Node, to: string): Node => ({ ...from, outputs: [to] });
  nodes = foldZeroPads(nodes, consts, g);
  nodes = foldChannelAffine(nodes, consts, g);
  nodes = swishPatterns(nodes, consts, g);
  nodes = preluPatterns(nodes, consts, g);
  nodes = matmulBias(nodes, consts, g);
  // Each activation reads one output: the fusions are independent, one sweep does them all.
  const r = readers({ ...g, nodes }), s = sweep();
  for (const prod of nodes) {
    if ((prod.op !== 'Conv' && prod.op !== 'Gemm') || prod.attrs._act) continue;
    const rs = r.get(prod.outputs[0]) ?? [];
    const act = rs.length === 1 && (FUSABLE.includes(rs[0].op) || rs[0].op === '_SiLU') ? rs[0] : undefined;
    if (!act || !s.free(prod, act)) continue;
    const attrs = activationAttrs(act, consts);
    if (!attrs) continue;
    s.take(prod, { ...renamed(prod, act.outputs[0]), attrs: { ...prod.attrs, ...attrs } });
    s.take(act, null);
  }
  return dropDead({ ...g, nodes: s.apply(nodes), consts });
}

/**
 * PReLU written out as Keras and tfjs-converter write it: Relu(x) + (x - Abs(x)) * c, with c a constant
 * (alpha / 2 folded in), becomes PRelu(x, 2c). Bit for bit the same: x - |x| is 2x exactly for x < 0
 * and 0 otherwise, and (2x) * c equals x * (2c) (scaling by 2 is exact). tfjs-converter sometimes
 * fuses the Relu into the convolution before it, leaving x + (x - Abs(x)) * c with x >= 0 already:
 * PRelu(x, 2c) too, which passes x through.
 */
function preluPatterns(nodes: Node[], consts: Map<string, Tensor>, g: Graph): Node[] {
  const p = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const r = readers({ ...g, nodes });
  const only = (n: Node | undefined, reader: Node) => n !== undefined && (r.get(n.outputs[0]) ?? []).every((q) => q === reader);
  const nonNegative = (t: string) => {
    const n = p.get(t);
    return n?.op === 'Relu' || ((n?.op === 'Conv' || n?.op === 'Gemm') && (n.attrs._act === 'relu' || (n.attrs._act === 'clip' && (n.attrs._min as number) >= 0)));
  };
  const replaced = new Map<Node, Node>(), gone = new Set<Node>();
  for (const add of nodes) {
    if (add.op !== 'Add') continue;
    for (const k of [0, 1]) {
      const relu = p.get(add.inputs[k]), mul = p.get(add.inputs[1 - k]);
      // Relu(x) read by this Add alone, or an x that is never negative.
      const x = relu?.op === 'Relu' && only(relu, add) ? relu.inputs[0] : nonNegative(add.inputs[k]) ? add.inputs[k] : undefined;
      if (x === undefined || mul?.op !== 'Mul' || !only(mul, add)) continue;
      const j = consts.has(mul.inputs[1]) ? 0 : 1, c = consts.get(mul.inputs[1 - j]), sub = p.get(mul.inputs[j]);
      const abs = sub?.op === 'Sub' && sub.inputs[0] === x ? p.get(sub.inputs[1]) : undefined;
      if (!c || c.dtype !== 'float32' || abs?.op !== 'Abs' || abs.inputs[0] !== x || !only(sub, mul) || !only(abs, sub!)) continue;
      const slope = `${add.name}:prelu_slope`;
      consts.set(slope, { ...c, data: (c.data as Float32Array).map((v) => v * 2) });
      replaced.set(add, { op: 'PRelu', name: add.name, inputs: [x, slope], outputs: add.outputs, attrs: {} });
      for (const n of [mul, sub!, abs, ...(x === add.inputs[k] ? [] : [relu!])]) gone.add(n);
      break;
    }
  }
  return nodes.filter((n) => !gone.has(n)).map((n) => replaced.get(n) ?? n);
}

/**
 * An Add of a constant [N] that alone reads a MatMul by a constant 2-d [K, N] weight becomes the
 * MatMul's third input (PyTorch exports write every Linear layer so): the GEMM kernels add it in
 * their accumulators instead of a pass over the output.
 */
function matmulBias(nodes: Node[], consts: Map<string, Tensor>, g: Graph): Node[] {
  const r = readers({ ...g, nodes });
  const fused = new Map<Node, Node>(), gone = new Set<Node>();
  for (const mm of nodes) {
    const w = consts.get(mm.inputs[1]);
    if (mm.op !== 'MatMul' || mm.inputs.length !== 2 || w?.dtype !== 'float32' || w.shape.length !== 2) continue;
    const rs = r.get(mm.outputs[0]) ?? [], add = rs[0];
    if (rs.length !== 1 || add.op !== 'Add' || add.inputs[0] === add.inputs[1]) continue;
    const bias = add.inputs[0] === mm.outputs[0] ? add.inputs[1] : add.inputs[0], b = consts.get(bias);
    if (b?.dtype !== 'float32' || b.shape.length !== 1 || b.shape[0] !== w.shape[1]) continue;
    fused.set(mm, { ...mm, inputs: [...mm.inputs, bias], outputs: add.outputs });
    gone.add(add);
  }
  return nodes.filter((n) => !gone.has(n)).map((n) => fused.get(n) ?? n);
}

function activationAttrs(n: Node, consts: Map<string, Tensor>): Record<string, number | string> | undefined {
  switch (n.op) {
    case 'Relu': return { _act: 'relu' };
    case 'Sigmoid': return { _act: 'sigmoid' };
    case 'HardSwish': return { _act: 'hardswish' };
    case 'Tanh': return { _act: 'tanh' };
    case '_SiLU': return { _act: 'silu' };
    case 'LeakyRelu': return { _act: 'leaky', _alpha: (n.attrs.alpha as number | undefined) ?? 0.01 };
    case 'Clip': {
      const bound = (i: number, attr: string, dflt: number) => {
        const t = n.inputs[i];
        if (t) return consts.has(t) ? numberAt(consts.get(t)!, 0) : undefined;
        return (n.attrs[attr] as number | undefined) ?? dflt;
      };
      const min = bound(1, 'min', -Infinity), max = bound(2, 'max', Infinity);
      return min === undefined || max === undefined ? undefined : { _act: 'clip', _min: min, _max: max };
    }
    default: return undefined;
  }
}

/** A constant's single value, if it holds one (any shape of one element). */
function scalarOf(consts: Map<string, Tensor>, t: string | undefined): number | undefined {
  const c = t ? consts.get(t) : undefined;
  return c && c.data.length === 1 && c.dtype === 'float32' ? (c.data as Float32Array)[0] : undefined;
}

/** A constant zero Pad of the spatial axes alone (NCHW), read only by a Conv, becomes the Conv's padding. */
function foldZeroPads(nodes: Node[], consts: Map<string, Tensor>, g: Graph): Node[] {
  const r = readers({ ...g, nodes });
  const producer = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const gone = new Set<Node>();
  const out = nodes.map((conv) => {
    if (conv.op !== 'Conv' || (conv.attrs.auto_pad !== undefined && conv.attrs.auto_pad !== 'NOTSET')) return conv;
    const pad = producer.get(conv.inputs[0]);
    if (pad?.op !== 'Pad' || (r.get(pad.outputs[0]) ?? []).length !== 1 || (pad.attrs.mode ?? 'constant') !== 'constant' || pad.inputs[3]) return conv;
    const p = consts.get(pad.inputs[1]), v = pad.inputs[2] ? scalarOf(consts, pad.inputs[2]) : 0;
    if (!p || v !== 0 || p.data.length !== 8) return conv;
    const q = Array.from(p.data as BigInt64Array, Number);
    if (q[0] || q[1] || q[4] || q[5] || q.some((x) => x < 0)) return conv;
    const old = (conv.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
    gone.add(pad);
    return { ...conv, inputs: [pad.inputs[0], ...conv.inputs.slice(1)], attrs: { ...conv.attrs, auto_pad: 'NOTSET', pads: [old[0] + q[2], old[1] + q[3], old[2] + q[6], old[3] + q[7]] } };
  });
  return out.filter((n) => !gone.has(n));
}

/**
 * The per-channel affine map y = x * scale + shift that a node applies to a Conv's O channels,
 * if it is one with constant parameters: a Mul or Add of one value per channel ([O, 1, 1],
 * [1, O, 1, 1], ...) or of one value, or a BatchNormalization in inference form.
 */
function channelAffine(next: Node, input: string, O: number, consts: Map<string, Tensor>): { scale?: Float32Array; shift?: Float32Array } | undefined {
  const perChannel = (t: string | undefined) => {
    const c = t ? consts.get(t) : undefined;
    if (!c || c.dtype !== 'float32' || !(c.data.length === 1 || (c.data.length === O && c.shape.length >= 3 && c.shape[c.shape.length - 3] === O))) return undefined;
    const d = c.data as Float32Array;
    return d.length === 1 ? new Float32Array(O).fill(d[0]) : d;
  };
  if (next.op === 'Mul' || next.op === 'Add') {
    const v = perChannel(next.inputs[0] === input ? next.inputs[1] : next.inputs[0]);
    return v && (next.op === 'Mul' ? { scale: v } : { shift: v });
  }
  if (next.op !== 'BatchNormalization' || next.attrs.training_mode === 1 || next.outputs.slice(1).some((o) => o)) return undefined;
  const p = next.inputs.slice(1).map((t) => consts.get(t));
  if (!p.every((t) => t?.dtype === 'float32' && t.data.length === O)) return undefined;
  const [s, b, m, v] = p.map((t) => t!.data as Float32Array);
  const eps = (next.attrs.epsilon as number | undefined) ?? 1e-5;
  const scale = new Float32Array(O), shift = new Float32Array(O);
  for (let o = 0; o < O; o++) {
    scale[o] = s[o] / Math.sqrt(v[o] + eps);
    shift[o] = b[o] - m[o] * scale[o];
  }
  return { scale, shift };
}

/** A per-channel affine map (channelAffine) that alone reads a Conv's output, folded into the Conv's weights and bias. */
function foldChannelAffine(nodes: Node[], consts: Map<string, Tensor>, g: Graph): Node[] {
  for (let changed = true; changed;) {
    const r = readers({ ...g, nodes }), s = sweep();
    for (const conv of nodes) {
      if (conv.op !== 'Conv' || conv.attrs._act || !consts.has(conv.inputs[1]) || (conv.inputs[2] && !consts.has(conv.inputs[2]))) continue;
      const rs = r.get(conv.outputs[0]) ?? [];
      const w = consts.get(conv.inputs[1])!, O = w.shape[0];
      const affine = rs.length === 1 && w.dtype === 'float32' && s.free(conv, rs[0]) ? channelAffine(rs[0], conv.outputs[0], O, consts) : undefined;
      if (!affine) continue;
      const { scale, shift } = affine, next = rs[0];
      const K = sizeOf(w.shape) / O;
      const oldB = conv.inputs[2] ? consts.get(conv.inputs[2])!.data as Float32Array : new Float32Array(O);
      const nw = scale ? zeros('float32', w.shape) : w, nb = zeros('float32', [O]);
      for (let o = 0; o < O; o++) {
        if (scale) for (let i = o * K; i < (o + 1) * K; i++) (nw.data as Float32Array)[i] = (w.data as Float32Array)[i] * scale[o];
        (nb.data as Float32Array)[o] = oldB[o] * (scale ? scale[o] : 1) + (shift ? shift[o] : 0);
      }
      const wName = `${conv.name}:W*`, bName = `${conv.name}:B+${next.name}`;
      consts.set(wName, nw);
      consts.set(bName, nb);
      s.take(conv, { ...conv, inputs: [conv.inputs[0], wName, bName], outputs: next.outputs.slice(0, 1) });
      s.take(next, null);
    }
    changed = s.changed;
    nodes = s.apply(nodes);
  }
  return nodes;
}

/** A Clip to [0, 6] (from its inputs, or its attributes before opset 11). */
function hardSwishClip(clip: Node, consts: Map<string, Tensor>): boolean {
  const lo = clip.inputs[1] ? scalarOf(consts, clip.inputs[1]) : clip.attrs.min as number | undefined;
  const hi = clip.inputs[2] ? scalarOf(consts, clip.inputs[2]) : clip.attrs.max as number | undefined;
  return lo === 0 && hi === 6;
}

/**
 * Swish-like activations written out op by op: x * clip(x + 3, 0, 6) / 6 and x * HardSigmoid(x) (1/6, 1/2) become
 * HardSwish, (x * c) * clip(x + 3, 0, 6) becomes HardSwish times 6c; x * sigmoid(x) after a Conv becomes the Conv's `_act` 'silu'.
 */
function swishPatterns(nodes: Node[], consts: Map<string, Tensor>, g: Graph): Node[] {
  for (let changed = true; changed;) {
    const p = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const r = readers({ ...g, nodes }), s = sweep();
    const single = (t: string) => (r.get(t) ?? []).length;
    // add computes x + 3.
    const plusThree = (add: Node | undefined, x: string) => add?.op === 'Add' && (add.inputs[0] === x ? scalarOf(consts, add.inputs[1]) : add.inputs[1] === x ? scalarOf(consts, add.inputs[0]) : undefined) === 3;
    for (const mul of nodes) {
      if ((mul.op !== 'Mul' && mul.op !== 'Div') || !s.free(mul)) continue;
      // y = (x * clip(x + 3, 0, 6)) / 6, or * (1/6)
      const scale = mul.op === 'Div' ? 1 / (scalarOf(consts, mul.inputs[1]) ?? NaN) : scalarOf(consts, mul.inputs[1]) ?? scalarOf(consts, mul.inputs[0]);
      const inner = p.get(mul.inputs[scalarOf(consts, mul.inputs[0]) !== undefined ? 1 : 0]);
      if (scale !== undefined && Math.abs(scale - 1 / 6) < 1e-6 && inner?.op === 'Mul' && single(inner.outputs[0]) === 1) {
        for (const k of [0, 1]) {
          const clip = p.get(inner.inputs[k]), x = inner.inputs[1 - k];
          const add = clip?.op === 'Clip' ? p.get(clip.inputs[0]) : undefined;
          if (clip?.op === 'Clip' && hardSwishClip(clip, consts) && plusThree(add, x) && single(clip!.outputs[0]) === 1 && single(add!.outputs[0]) === 1 && s.free(inner, clip, add)) {
            s.take(mul, { op: 'HardSwish', name: mul.name, inputs: [x], outputs: mul.outputs, attrs: {} });
            for (const n of [inner, clip!, add!]) s.take(n, null);
            break;
          }
        }
        if (!s.free(mul)) continue;
      }
      if (mul.op !== 'Mul') continue;
      // y = (x * c) * clip(x + 3, 0, 6) = 6c HardSwish(x), as TF graphs write it: c 1/6, or MediaPipe's
      // float16 0.16663 (then a Mul by 6c follows).
      for (const k of [0, 1]) {
        const clip = p.get(mul.inputs[k]), scaled = p.get(mul.inputs[1 - k]);
        if (clip?.op !== 'Clip' || scaled?.op !== 'Mul' || !hardSwishClip(clip, consts)) continue;
        const j = scalarOf(consts, scaled.inputs[0]) !== undefined ? 0 : 1, x = scaled.inputs[1 - j], c = scalarOf(consts, scaled.inputs[j]);
        const add = p.get(clip.inputs[0]);
        if (c === undefined || !plusThree(add, x) || single(clip.outputs[0]) !== 1 || single(scaled.outputs[0]) !== 1 || single(add!.outputs[0]) !== 1 || !s.free(scaled, clip, add!)) continue;
        if (Math.abs(6 * c - 1) < 1e-6) s.take(mul, { op: 'HardSwish', name: mul.name, inputs: [x], outputs: mul.outputs, attrs: {} });
        else {
          const h = `${mul.name}:hardswish`, factor = `${mul.name}:6c`;
          consts.set(factor, { dtype: 'float32', shape: [], data: Float32Array.of(6 * c) });
          s.take(mul, [{ op: 'HardSwish', name: h, inputs: [x], outputs: [h], attrs: {} }, { op: 'Mul', name: mul.name, inputs: [h, factor], outputs: mul.outputs, attrs: {} }]);
        }
        for (const n of [scaled, clip, add!]) s.take(n, null);
        break;
      }
      if (!s.free(mul)) continue;
      for (const k of [0, 1]) {
        const gate = p.get(mul.inputs[k]), x = mul.inputs[1 - k];
        if (!gate || gate.inputs[0] !== x || single(gate.outputs[0]) !== 1) continue;
        const hardSwish = gate.op === 'HardSigmoid' && Math.abs(((gate.attrs.alpha as number | undefined) ?? 0.2) - 1 / 6) < 1e-6 && ((gate.attrs.beta as number | undefined) ?? 0.5) === 0.5;
        const silu = gate.op === 'Sigmoid' && p.get(x)?.op === 'Conv' && !p.get(x)!.attrs._act && single(x) === 2;
        if ((!hardSwish && !silu) || !s.free(gate)) continue;
        // The SiLU's Conv is read by it (fused into the Conv later): no other rewrite of this sweep may move it.
        s.take(mul, { op: hardSwish ? 'HardSwish' : '_SiLU', name: mul.name, inputs: [x], outputs: mul.outputs, attrs: {} }, [p.get(x)]);
        s.take(gate, null);
        break;
      }
    }
    changed = s.changed;
    nodes = s.apply(nodes);
  }
  return nodes;
}

/**
 * Transformer-style blocks written out op by op (ConvNeXt, ViT exports before opset 17/20):
 * Pow(x, 2) becomes Mul(x, x); x / sqrt(2) -> Erf -> + 1 -> * x -> * 0.5 becomes Gelu; mean /
 * variance over the last axis -> normalize -> scale, shift becomes LayerNormalization.
 */
function normPatterns(nodes: Node[], consts: Map<string, Tensor>, g: Graph): Node[] {
  nodes = nodes.map((n) => (n.op === 'Pow' && scalarOf(consts, n.inputs[1]) === 2 ? { ...n, op: 'Mul', inputs: [n.inputs[0], n.inputs[0]] } : n));
  const other = (n: Node, t: string) => (n.inputs[0] === t ? n.inputs[1] : n.inputs[0]);
  for (let changed = true; changed;) {
    const p = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const r = readers({ ...g, nodes }), s = sweep();
    const only = (t: string) => (r.get(t) ?? []).length === 1;
    for (const half of nodes) {
      // Gelu: Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5), the 0.5 on either Mul.
      if (half.op !== 'Mul' || !s.free(half)) continue;
      const c = scalarOf(consts, half.inputs[1]) ?? scalarOf(consts, half.inputs[0]);
      const prod = p.get(half.inputs[scalarOf(consts, half.inputs[1]) !== undefined ? 0 : 1]);
      if (c !== 0.5 || prod?.op !== 'Mul' || !only(prod.outputs[0])) continue;
      for (const k of [0, 1]) {
        const add = p.get(prod.inputs[k]), x = prod.inputs[1 - k];
        const erf = add?.op === 'Add' ? p.get(add.inputs[scalarOf(consts, add.inputs[1]) === 1 ? 0 : 1]) : undefined;
        const div = erf?.op === 'Erf' ? p.get(erf.inputs[0]) : undefined;
        const root = div?.op === 'Div' && div.inputs[0] === x ? scalarOf(consts, div.inputs[1]) : div?.op === 'Mul' && div.inputs[0] === x ? 1 / (scalarOf(consts, div.inputs[1]) ?? NaN) : undefined;
        if (!add || !erf || !div || root === undefined || Math.abs(root - Math.SQRT2) > 1e-4 || ![add, erf, div].every((n) => only(n.outputs[0])) || !s.free(prod, add, erf, div)) continue;
        s.take(half, { op: 'Gelu', name: half.name, inputs: [x], outputs: half.outputs, attrs: {} });
        for (const n of [prod, add, erf, div]) s.take(n, null);
        break;
      }
    }
    for (const shift of nodes) {
      // LayerNormalization over the last axis: Add(Mul(Div(Sub(x, mean), Sqrt(Add(mean(Sub^2), eps))), gamma), beta).
      if (shift.op !== 'Add' || !s.free(shift)) continue;
      const scale = [0, 1].map((k) => p.get(shift.inputs[k])).find((n) => n?.op === 'Mul');
      if (!scale || !only(scale.outputs[0])) continue;
      const beta = other(shift, scale.outputs[0]);
      const div = [0, 1].map((k) => p.get(scale.inputs[k])).find((n) => n?.op === 'Div');
      if (!div || !only(div.outputs[0])) continue;
      const gamma = other(scale, div.outputs[0]);
      const sub = p.get(div.inputs[0]), sqrt = p.get(div.inputs[1]);
      const addEps = sqrt?.op === 'Sqrt' ? p.get(sqrt.inputs[0]) : undefined;
      const eps = addEps?.op === 'Add' ? scalarOf(consts, addEps.inputs[1]) : undefined;
      const varMean = addEps ? p.get(addEps.inputs[0]) : undefined;
      const square = varMean?.op === 'ReduceMean' ? p.get(varMean.inputs[0]) : undefined;
      const mean = sub?.op === 'Sub' ? p.get(sub.inputs[1]) : undefined;
      const x = sub?.inputs[0];
      const lastAxis = (n: Node | undefined) => {
        if (n?.op !== 'ReduceMean' || n.attrs.keepdims === 0) return false;
        const axes = n.inputs[1] ? consts.get(n.inputs[1]) : undefined;
        const list = axes ? Array.from(axes.data as BigInt64Array, Number) : (n.attrs.axes as number[] | undefined);
        return list?.length === 1 && list[0] === -1;
      };
      if (!sub || !sqrt || eps === undefined || !square || square.op !== 'Mul' || square.inputs[0] !== sub.outputs[0] || square.inputs[1] !== sub.outputs[0]
        || !lastAxis(varMean) || !lastAxis(mean) || mean!.inputs[0] !== x || !consts.has(gamma) || !consts.has(beta)) continue;
      const gone = [scale, div, sub, sqrt, addEps!, varMean!, square, mean!];
      if (new Set(r.get(sub.outputs[0]) ?? []).size !== 2 || ![scale, sqrt, addEps!, varMean!, square, mean!].every((n) => only(n.outputs[0])) || !s.free(...gone)) continue;
      s.take(shift, { op: 'LayerNormalization', name: shift.name, inputs: [x!, gamma, beta], outputs: shift.outputs, attrs: { axis: -1, epsilon: eps } });
      for (const n of gone) s.take(n, null);
    }
    changed = s.changed;
    nodes = s.apply(nodes);
  }
  return nodes;
}

/**
 * A two-input Einsum that is a batched matrix product becomes MatMul, with a Transpose of the last two
 * axes where an operand or the output has them the other way round, so that the GEMM kernels run it
 * (MaxViT's attention is written so). Its terms: the same batch letters leading all three, then one
 * free letter and the one contracted letter in either order; no ellipsis, no letter twice in a term.
 */
function einsumMatMul(nodes: Node[]): Node[] {
  return nodes.flatMap((n) => {
    const eq = typeof n.attrs.equation === 'string' ? n.attrs.equation.replace(/\s+/g, '') : '';
    const m = /^([A-Za-z]+),([A-Za-z]+)->([A-Za-z]+)$/.exec(eq);
    if (n.op !== 'Einsum' || n.inputs.length !== 2 || !m) return [n];
    const [a, b, o] = [m[1], m[2], m[3]].map((t) => [...t]);
    if ([a, b, o].some((t) => new Set(t).size !== t.length)) return [n];
    const r = o.length, batch = o.slice(0, -2);
    if (r < 2 || a.length !== r || b.length !== r || batch.some((l, i) => a[i] !== l || b[i] !== l)) return byMatrix(n, a, b, o) ?? [n];
    const [ta, tb] = [a.slice(-2), b.slice(-2)], k = ta.find((l) => tb.includes(l));
    const i = ta.find((l) => l !== k), j = tb.find((l) => l !== k);
    if (!k || !i || !j || i === j || o.includes(k) || !o.slice(-2).includes(i) || !o.slice(-2).includes(j)) return [n];
    const swap = [...Array.from({ length: r - 2 }, (_, d) => d), r - 1, r - 2];
    const pre: Node[] = [];
    const operand = (t: string, last: string[], want: string[], tag: string) => {
      if (last[0] === want[0]) return t;
      pre.push({ op: 'Transpose', name: `${n.name}:${tag}`, inputs: [t], outputs: [`${n.name}:${tag}`], attrs: { perm: swap } });
      return `${n.name}:${tag}`;
    };
    const x = operand(n.inputs[0], ta, [i, k], 'a'), y = operand(n.inputs[1], tb, [k, j], 'b');
    if (o[r - 2] === i) return [...pre, { op: 'MatMul', name: n.name, inputs: [x, y], outputs: n.outputs, attrs: {} }];
    const ij = `${n.name}:ij`;
    return [...pre, { op: 'MatMul', name: `${n.name}:matmul`, inputs: [x, y], outputs: [ij], attrs: {} },
      { op: 'Transpose', name: n.name, inputs: [ij], outputs: n.outputs, attrs: { perm: swap } }];
  });
}

/**
 * A two-input Einsum where one operand is a matrix sharing one letter with the other, summed over
 * (a dense layer over any axis: jax2tf writes 'abcg,gf->abcf'), as MatMul of the other operand with
 * that letter moved last by the matrix with it first, then the output's letter order: Transposes
 * where an order differs. Null where the equation is not of that form.
 */
function byMatrix(n: Node, a: string[], b: string[], o: string[]): Node[] | null {
  const [x, w, xs, ws] = b.length === 2 ? [n.inputs[0], n.inputs[1], a, b] : a.length === 2 ? [n.inputs[1], n.inputs[0], b, a] : [];
  if (!x || !w || !xs || !ws) return null;
  const k = ws.find((l) => xs.includes(l)), j = ws.find((l) => l !== k);
  if (!k || !j || xs.includes(j) || o.includes(k) || o.length !== xs.length || !o.includes(j) || xs.some((l) => l !== k && !o.includes(l))) return null;
  const out: Node[] = [];
  const transpose = (t: string, from: string[], to: string[], tag: string) => {
    if (from.join('') === to.join('')) return t;
    out.push({ op: 'Transpose', name: `${n.name}:${tag}`, inputs: [t], outputs: [`${n.name}:${tag}`], attrs: { perm: to.map((l) => from.indexOf(l)) } });
    return `${n.name}:${tag}`;
  };
  const rest = xs.filter((l) => l !== k), product = [...rest, j];
  const xk = transpose(x, xs, [...rest, k], 'x'), wk = transpose(w, ws, [k, j], 'w');
  if (product.join('') === o.join('')) return [...out, { op: 'MatMul', name: n.name, inputs: [xk, wk], outputs: n.outputs, attrs: {} }];
  out.push({ op: 'MatMul', name: `${n.name}:matmul`, inputs: [xk, wk], outputs: [`${n.name}:product`], attrs: {} });
  return [...out, { op: 'Transpose', name: n.name, inputs: [`${n.name}:product`], outputs: n.outputs, attrs: { perm: o.map((l) => product.indexOf(l)) } }];
}

/** The import-time passes, in order. */
export async function optimizeGraph(g: Graph): Promise<Graph> {
  const folded = await foldConstants(g);
  // Normalization patterns first: over the source's last axis they are LayerNormalization, which
  // the layout pass would otherwise turn into a normalization over the channel axis (no such op).
  const normed = dropDead({ ...folded, nodes: einsumMatMul(normPatterns(folded.nodes, folded.consts, folded)) });
  return fuse(dropDead(skipIdentities(sinkTransposes(normed))));
}

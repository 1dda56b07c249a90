import { ArgumentError } from '../../errors.js';
import type { AttrValue, Graph, Node } from '../../ir/graph.js';
import { fromNumbers, type DType, type Tensor } from '../../ir/tensor.js';
import { fusedActivation } from '../../ops/conv.js';
import { ProtoWriter } from './protobuf.js';

const CODES: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 };

/** Attributes ONNX declares as floats (a JS number does not say which). */
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'gamma', 'epsilon', 'momentum', 'bias', 'value_float', 'extrapolation_value', 'cubic_coeff_a', 'min', 'max', 'value', 'lambd', 'ratio']);
const FLOAT_LISTS = new Set(['scales', 'value_floats']);

function writeTensor(w: ProtoWriter, t: Tensor, name: string) {
  const d = t.data;
  w.packedInts(1, t.shape).int(2, CODES[t.dtype]).string(8, name).bytes(9, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
}

function writeAttr(w: ProtoWriter, name: string, a: AttrValue) {
  w.string(1, name);
  if (typeof a === 'number') {
    if (FLOAT_ATTRS.has(name) || !Number.isInteger(a)) w.float(2, a).int(20, 1);
    else w.int(3, a).int(20, 2);
  } else if (typeof a === 'string') w.string(4, a).int(20, 3);
  else if (Array.isArray(a)) {
    if (a.every((x) => typeof x === 'string')) {
      for (const s of a as string[]) w.string(9, s);
      w.int(20, 8);
    } else if (FLOAT_LISTS.has(name)) w.packedFloats(7, a as number[]).int(20, 6);
    else w.packedInts(8, a as number[]).int(20, 7);
  } else if ('dtype' in a) w.message(5, (tw) => writeTensor(tw, a, '')).int(20, 4);
  else throw new Error(`attribute ${name}: sub-graphs are not written`);
}

/** The activation a fusion moved into a node, as the ONNX node(s) it was. */
/**
 * Ops the passes made that are newer than the graph's opset (HardSwish 14, LayerNormalization 17,
 * Gelu 20), written out as the older ops they replaced.
 */
function lower(n: Node, extra: Map<string, Tensor>, opset: number): Node[] | undefined {
  const c = (name: string, v: number) => {
    const k = `${n.name}:${name}`;
    extra.set(k, fromNumbers('float32', [], [v]));
    return k;
  };
  const t = (s: string) => `${n.outputs[0]}:${s}`;
  const node = (op: string, suffix: string, inputs: string[], out: string, attrs: Node['attrs'] = {}): Node => ({ op, name: `${n.name}:${suffix}`, inputs, outputs: [out], attrs });
  const x = n.inputs[0], y = n.outputs[0];
  if (n.op === 'HardSwish' && opset < 14) {
    return [node('HardSigmoid', 'gate', [x], t('gate'), { alpha: 1 / 6, beta: 0.5 }), node('Mul', 'mul', [x, t('gate')], y)];
  }
  if (n.op === 'Gelu' && opset < 20) {
    return [
      node('Div', 'div', [x, c('sqrt2', Math.SQRT2)], t('scaled')), node('Erf', 'erf', [t('scaled')], t('erf')),
      node('Add', 'add', [t('erf'), c('one', 1)], t('plus')), node('Mul', 'mul', [x, t('plus')], t('prod')), node('Mul', 'half', [t('prod'), c('half', 0.5)], y),
    ];
  }
  if (n.op === 'LayerNormalization' && opset < 17 && ((n.attrs.axis as number | undefined) ?? -1) === -1) {
    const mean = (inp: string, out: string, suffix: string) => node('ReduceMean', suffix, [inp], out, { axes: [-1], keepdims: 1 });
    const tail = n.inputs[2] ? [node('Mul', 'scale', [t('norm'), n.inputs[1]], t('scaled')), node('Add', 'shift', [t('scaled'), n.inputs[2]], y)]
      : [node('Mul', 'scale', [t('norm'), n.inputs[1]], y)];
    return [
      mean(x, t('mean'), 'mean'), node('Sub', 'sub', [x, t('mean')], t('centred')), node('Mul', 'square', [t('centred'), t('centred')], t('square')),
      mean(t('square'), t('var'), 'var'), node('Add', 'eps', [t('var'), c('eps', (n.attrs.epsilon as number | undefined) ?? 1e-5)], t('vare')),
      node('Sqrt', 'sqrt', [t('vare')], t('std')), node('Div', 'norm', [t('centred'), t('std')], t('norm')), ...tail,
    ];
  }
  return undefined;
}

function unfuse(n: Node, extra: Map<string, Tensor>, opset: number): Node[] {
  const older = lower(n, extra, opset);
  if (older) return older;
  if (n.op === 'MatMul' && n.inputs.length === 3) {
    const product = `${n.outputs[0]}:matmul`;
    return [{ ...n, inputs: n.inputs.slice(0, 2), outputs: [product] }, { op: 'Add', name: `${n.name}:bias`, inputs: [product, n.inputs[2]], outputs: n.outputs, attrs: {} }];
  }
  if (n.op === '_SiLU') {
    const gate = `${n.outputs[0]}:sigmoid`;
    return [{ op: 'Sigmoid', name: `${n.name}:sigmoid`, inputs: n.inputs, outputs: [gate], attrs: {} }, { op: 'Mul', name: n.name, inputs: [n.inputs[0], gate], outputs: n.outputs, attrs: {} }];
  }
  const a = fusedActivation(n);
  if (a.kind === 'none') return [n];
  const attrs = Object.fromEntries(Object.entries(n.attrs).filter(([k]) => !k.startsWith('_')));
  const mid = `${n.outputs[0]}:pre_act`, out = n.outputs[0];
  const head: Node = { ...n, attrs, outputs: [mid] };
  if (a.kind === 'silu') {
    const gate = `${n.outputs[0]}:sigmoid`;
    return [head, { op: 'Sigmoid', name: `${n.name}:sigmoid`, inputs: [mid], outputs: [gate], attrs: {} }, { op: 'Mul', name: `${n.name}:silu`, inputs: [mid, gate], outputs: [out], attrs: {} }];
  }
  const op = { relu: 'Relu', clip: 'Clip', leaky: 'LeakyRelu', sigmoid: 'Sigmoid', hardswish: 'HardSwish', tanh: 'Tanh' }[a.kind];
  if (op === 'HardSwish') return [head, ...lower({ op, name: `${n.name}:act`, inputs: [mid], outputs: [out], attrs: {} }, extra, opset) ?? [{ op, name: `${n.name}:act`, inputs: [mid], outputs: [out], attrs: {} }]];
  const inputs = [mid];
  if (a.kind === 'clip' && opset < 11) return [head, { op, name: `${n.name}:act`, inputs, outputs: [out], attrs: { min: a.min, max: a.max } }];
  if (a.kind === 'clip') {
    for (const [k, v] of [['min', a.min], ['max', a.max]] as const) {
      const name = `${n.name}:${k}`;
      extra.set(name, fromNumbers('float32', [], [v]));
      inputs.push(name);
    }
  }
  return [head, { op, name: `${n.name}:act`, inputs, outputs: [out], attrs: a.kind === 'leaky' ? { alpha: a.alpha } : {} }];
}

/**
 * An IR graph as an ONNX model (IR version 8, the graph's default-domain opset): fused
 * activations become their nodes again, constants initializers. For running the same graph in
 * onnxruntime as an oracle or a peer, and for `faster-cnn export`.
 */
export function writeOnnx(g: Graph, name = 'faster-cnn'): Uint8Array {
  const own = g.nodes.filter((n) => n.op.startsWith('_') && n.op !== '_SiLU');
  if (own.length) throw new ArgumentError('graph', own.map((n) => `${n.name} (${n.op})`).join(', '), 'nodes ONNX has an operator for (tables trained as weights have none)');
  const extra = new Map<string, Tensor>();
  const nodes = g.nodes.flatMap((n) => unfuse(n, extra, g.opset));
  const w = new ProtoWriter();
  w.int(1, 8).string(2, 'faster-cnn').string(3, '0.1.0');
  w.message(8, (o) => o.string(1, '').int(2, g.opset));
  w.message(7, (gw) => {
    for (const n of nodes) {
      gw.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i);
        for (const o of n.outputs) nw.string(2, o);
        nw.string(3, n.name).string(4, n.op);
        for (const [k, v] of Object.entries(n.attrs)) if (!k.startsWith('_')) nw.message(5, (aw) => writeAttr(aw, k, v));
      });
    }
    gw.string(2, name);
    for (const [k, t] of [...g.consts, ...extra]) gw.message(5, (tw) => writeTensor(tw, t, k));
    for (const [field, list] of [[11, g.inputs], [12, g.outputs]] as const) {
      for (const v of list) {
        gw.message(field, (vw) => vw.string(1, v.name).message(2, (type) => type.message(1, (tt) => {
          tt.int(1, CODES[v.dtype]);
          if (v.shape) tt.message(2, (s) => v.shape!.forEach((d) => s.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)))));
        })));
      }
    }
  });
  return w.finish();
}

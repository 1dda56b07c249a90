import { pciltConv2d } from '../../conv/conv2d.js';
import type { Tensor } from '../../ir/tensor.js';
import { numbers } from '../../ir/tensor.js';
import { pciltConvAttrs, pciltConvOut } from '../../ops/pcilt-conv.js';
import { fail, need, registerKernel, type Inputs, type OpContext } from '../../ops/registry.js';
import { roundEven } from '../../ops/unary.js';
import type { Node } from '../../ir/graph.js';
import { pciltFromEntries, type PciltTables } from '../../tables/pcilt.js';
import type { Shape4 } from '../../tensor.js';

/**
 * `_PciltConv` through pciltConv2d: integer entries that fit 16 bits run on the engine 'auto'
 * picks (the wasm kernels), float entries on the JS one. Tables are laid out once per constant.
 */
const laidOut = new WeakMap<object, PciltTables>();

function tablesOf(t: Tensor, shape: Shape4, bits: number, constant: boolean): PciltTables {
  const cached = constant ? laidOut.get(t.data) : undefined;
  if (cached) return cached;
  const v = numbers(t);
  const int16 = t.dtype === 'int32' && Array.prototype.every.call(v, (e: number) => e >= -32768 && e <= 32767);
  const tables = pciltFromEntries(shape, bits, int16 ? Int16Array.from(v) : Float32Array.from(v));
  if (constant) laidOut.set(t.data, tables);
  return tables;
}

async function run(ins: Inputs, node: Node, ctx: OpContext): Promise<Tensor[]> {
  const x = need(ins, 0, node), t = need(ins, 1, node);
  const a = pciltConvAttrs(node, x, t);
  pciltConvOut(node, x, a);
  const O = t.shape[0], L = (1 << a.bits) - 1;
  const tables = tablesOf(t, [O, x.shape[1], a.kernel[0], a.kernel[1]], a.bits, ctx.constant?.(t) ?? false);
  const s = ins[2] ? numbers(ins[2]) : null, b = ins[3] ? numbers(ins[3]) : null;
  if ((s && s.length !== O) || (b && b.length !== O)) fail(node, `${s?.length ?? b?.length} scales or biases for ${O} output channels`);
  const xd = x.data as Float32Array, codes = new Uint8Array(xd.length);
  for (let i = 0; i < xd.length; i++) {
    const q = roundEven(Math.fround(xd[i] / a.scale));
    codes[i] = q < 0 ? 0 : q > L ? L : q;
  }
  const shape: Shape4 = a.dense ? [x.shape[0], x.shape[1], 1, 1] : (x.shape as Shape4);
  const backend = ctx.quant?.backend ?? 'auto';
  const acc = await pciltConv2d({ data: codes, shape }, tables, { padding: a.pads, stride: a.strides, threads: ctx.threads, backend });
  const [N, , OH, OW] = acc.shape, P = OH * OW;
  const y = new Float32Array(acc.data.length), ad = acc.data;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const k = s ? s[o] : 1, c = b ? b[o] : 0, base = (n * O + o) * P;
      for (let i = base; i < base + P; i++) y[i] = ad[i] * k + c;
    }
  }
  ctx.quant?.choices?.set(node.name, { kernel: `pcilt-tables:${backend}`, bits: a.bits, tableBytes: tables.bytes, macs: y.length * t.shape[1] });
  return [{ dtype: 'float32', shape: a.dense ? [N, O] : [N, O, OH, OW], data: y }];
}

registerKernel({ op: '_PciltConv', backend: 'wasm', variant: 'pcilt-tables', supports: (ins) => ins[0]?.dtype === 'float32', run });

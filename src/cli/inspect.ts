import { writeFile } from 'node:fs/promises';
import { ONNX_TESTDATA, conformance, conformanceReport } from '../bench/conformance.js';
import { machineName } from '../bench/machine.js';
import { ArgumentError } from '../errors.js';
import { sizeOf, zeros, type Tensor } from '../ir/tensor.js';
import { importModel } from '../nn/api.js';
import type { NodeTiming } from '../runtime/session.js';
import { inputShapeFlags } from './import.js';
import { customLayersFlag, parse } from './args.js';

/** Multiply-accumulates of a node, from the shapes one run found. */
function macs(op: string, ins: number[][], out: number[]): number {
  if (op === 'Conv' && ins[1]) return sizeOf(out) * sizeOf(ins[1].slice(1));
  if (op === 'Gemm' && ins[1]) return sizeOf(out) * (ins[0]?.[1] ?? 0);
  if (op === 'MatMul' && ins[0]) return sizeOf(out) * ins[0][ins[0].length - 1];
  return 0;
}

/** `faster-cnn inspect FILE [--input-shape NAME=AxBxC] [--custom-layers FILE.mjs] [--json]`: inputs, outputs, op histogram, parameters, MACs. */
export async function inspectCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, 'input-shape': { type: 'string', multiple: true }, 'custom-layers': { type: 'string' } });
  const file = positionals[0];
  if (!file) throw new ArgumentError('FILE', file, 'a model: .onnx, model.json, a .js module or .fcnn');
  const model = await importModel(file, { inputShapes: inputShapeFlags(values['input-shape']), customLayers: await customLayersFlag(values['custom-layers']) });
  const g = model.graph;
  if (!g) throw new ArgumentError('FILE', file, 'an imported model (MNIST models trained here have no graph to inspect)');
  const ops: Record<string, number> = {};
  for (const n of g.nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;
  let params = 0;
  for (const t of g.consts.values()) params += sizeOf(t.shape);
  // One run on zeros binds every size: named input sizes from the stored preprocessing (or 1 and 224).
  const feeds: Record<string, Tensor> = {};
  g.inputs.forEach((v, i) => {
    const shape = i === 0 ? model.inputShape(1) : (v.shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    feeds[v.name] = zeros(v.dtype, shape);
  });
  const profile: NodeTiming[] = [];
  let total = 0;
  let ran = true;
  try {
    await model.session!.run(feeds, { profile });
    const shapes = new Map<string, number[]>(Object.entries(feeds).map(([k, v]) => [k, v.shape]));
    for (const [k, t] of g.consts) shapes.set(k, t.shape);
    for (const n of model.session!.nodes) {
      const p = profile.find((q) => q.node === n.name);
      if (p) shapes.set(n.outputs[0], p.shape);
      total += macs(n.op, n.inputs.map((t) => shapes.get(t) ?? []), p?.shape ?? []);
    }
  } catch {
    ran = false;
  }
  const report = {
    inputs: g.inputs, outputs: g.outputs, opset: g.opset, nodes: g.nodes.length, ops, parameters: params,
    macs: ran ? total : null, macsFor: ran ? Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.shape])) : null,
  };
  if (values.json) {
    console.log(JSON.stringify(report));
    return;
  }
  const dims = (s: (number | string)[] | null) => (s ? `[${s.join(', ')}]` : '(shape not declared)');
  console.log(`${file}: opset ${g.opset}, ${g.nodes.length} nodes, ${(params / 1e6).toFixed(2)} M parameters`);
  for (const v of g.inputs) console.log(`  input  ${v.name}: ${v.dtype} ${dims(v.shape)}`);
  for (const v of g.outputs) console.log(`  output ${v.name}: ${v.dtype} ${dims(v.shape)}`);
  console.log(`  ops: ${Object.entries(ops).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(ran ? `  ${(total / 1e9).toFixed(3)} G multiply-accumulates for ${Object.entries(report.macsFor!).map(([k, s]) => `${k} [${s}]`).join(', ')}`
    : '  multiply-accumulates: unknown (the model did not run on zeros of its input shapes)');
}

/** `faster-cnn conformance [--dir DIR] [--report FILE] [--json]`: ONNX's backend tests through the runtime. */
export async function conformanceCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { dir: { type: 'string' }, report: { type: 'string' }, json: { type: 'boolean' }, backend: { type: 'string' } });
  const backend = (values.backend ?? 'auto') as 'auto' | 'ref' | 'webgpu';
  if (!['auto', 'ref', 'webgpu'].includes(backend)) throw new ArgumentError('--backend', backend, 'auto, ref or webgpu');
  const cases = await conformance(String(values.dir ?? ONNX_TESTDATA), { backend }, (done, all) => (done % 100 === 0 || done === all) && process.stderr.write(`\rconformance: ${done}/${all} tests`));
  process.stderr.write('\n');
  const run = cases.filter((c) => c.status !== 'skip'), pass = run.filter((c) => c.status === 'pass');
  if (values.json) console.log(JSON.stringify(cases));
  else console.log(`${pass.length} of ${run.length} pass (${((100 * pass.length) / Math.max(1, run.length)).toFixed(1)}%); ${cases.length - run.length} use other ops or types`);
  if (values.report) await writeFile(String(values.report), conformanceReport(cases, machineName()));
}

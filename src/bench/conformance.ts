import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readIrTensor, readOnnx } from '../formats/onnx/read-ir.js';
import { Msg } from '../formats/onnx/reader.js';
import { ONNX_DTYPE } from '../ops/cast.js';
import { numbers, type Tensor } from '../ir/tensor.js';
import { Session, type RunOptions } from '../runtime/session.js';

/** Where Debian's libonnx-testdata puts ONNX's backend conformance tests. */
export const ONNX_TESTDATA = '/usr/share/libonnx-testdata/data';
const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'];

/** The ONNX operators vision CNN exports use (issue 18's list, and Einsum, which transformer exports such as MaxViT write): the conformance run counts every test made only of these. */
export const VISION_OPS = [
  'Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Einsum', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'BatchNormalization',
  'InstanceNormalization', 'LayerNormalization', 'LRN', 'Dropout', 'Identity', 'Constant',
  'Relu', 'Clip', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softplus', 'Erf', 'Softmax', 'LogSoftmax',
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Neg', 'Abs', 'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Min', 'Max', 'Sum', 'Mean', 'Sign',
  'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'Where',
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare',
  'ArgMax', 'ArgMin', 'TopK', 'Shape', 'Gather', 'If', 'Loop', 'GatherElements', 'GatherND', 'ScatterND', 'ScatterElements', 'Scatter', 'NonZero', 'Slice', 'Concat', 'Split', 'Squeeze', 'Unsqueeze', 'Reshape', 'Flatten', 'Transpose', 'Expand',
  'Tile', 'Pad', 'Range', 'ConstantOfShape', 'Cast', 'Resize', 'Upsample', 'DepthToSpace', 'SpaceToDepth',
  'QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'NonMaxSuppression',
];

export interface ConformanceCase { suite: string; name: string; ops: string[]; status: 'pass' | 'fail' | 'skip'; why?: string }

/** The ops and tensor dtypes a test model uses, read without importing it. */
function survey(bytes: Uint8Array): { ops: string[]; dtypes: number[] } {
  const m = new Msg(bytes);
  const ops = new Set<string>(), dtypes = new Set<number>();
  const walk = (g: Msg) => {
    for (const n of g.msgs(1)) {
      ops.add(n.str(7) && n.str(7) !== 'ai.onnx' ? `${n.str(7)}.${n.str(4)}` : n.str(4));
      for (const a of n.msgs(5)) {
        const sub = a.msg(6);
        if (sub) walk(sub);
        const t = a.msg(5);
        if (t) dtypes.add(t.int(2));
      }
    }
    for (const t of g.msgs(5)) dtypes.add(t.int(2));
    for (const v of [...g.msgs(11), ...g.msgs(12)]) {
      const type = v.msg(2);
      const tt = type?.msg(1);
      if (tt) dtypes.add(tt.int(1));
      else if (type) dtypes.add(-1); // sequences, maps, optionals (a sub-graph's value without a type is inferred)
    }
  };
  walk(m.msg(7)!);
  return { ops: [...ops], dtypes: [...dtypes] };
}

/** Compares as ONNX's backend tests do: |got - want| <= atol + rtol * |want|, NaN where NaN; exact for integers. */
export function closeEnough(got: Tensor, want: Tensor, rtol = 1e-3, atol = 1e-5): string | null {
  if (got.dtype !== want.dtype) return `dtype ${got.dtype}, expected ${want.dtype}`;
  if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) return `shape [${got.shape}], expected [${want.shape}]`;
  const g = numbers(got), w = numbers(want);
  let worst = -1, at = -1;
  for (let i = 0; i < w.length; i++) {
    if (Number.isNaN(w[i]) && Number.isNaN(g[i])) continue;
    const err = Math.abs(g[i] - w[i]) - (got.dtype === 'float32' ? atol + rtol * Math.abs(w[i]) : 0);
    if (!(err <= 0) && (err > worst || Number.isNaN(err))) [worst, at] = [err, i];
  }
  return at < 0 ? null : `element ${at}: ${g[at]}, expected ${w[at]}`;
}

/** Runs one test directory: every test_data_set_* through the runtime. */
export async function runCase(dir: string, opts: RunOptions = {}): Promise<string | null> {
  const graph = readOnnx(new Uint8Array(readFileSync(join(dir, 'model.onnx'))));
  const session = new Session(graph);
  const sets = readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort();
  for (const set of sets) {
    const read = (prefix: string) => readdirSync(join(dir, set)).filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
      .sort((a, b) => parseInt(a.slice(prefix.length), 10) - parseInt(b.slice(prefix.length), 10))
      .map((f) => readIrTensor(new Msg(new Uint8Array(readFileSync(join(dir, set, f))))));
    const inputs = read('input_'), expected = read('output_');
    const feeds: Record<string, Tensor> = {};
    // Test inputs follow the graph's input order (names in the .pb files are often empty).
    graph.inputs.forEach((v, i) => {
      const t = inputs[i];
      if (t) feeds[v.name] = { dtype: t.dtype, shape: t.shape, data: t.data };
    });
    const got = await session.run(feeds, opts);
    for (let i = 0; i < expected.length; i++) {
      const name = graph.outputs[i].name;
      const why = closeEnough(got[name], expected[i]);
      if (why) return `${set}, output ${name}: ${why}`;
    }
  }
  return null;
}

/**
 * The conformance run: every test in libonnx-testdata whose ops are all in VISION_OPS and whose
 * tensors all have a dtype the runtime has; the rest are listed as skipped with the reason.
 */
export async function conformance(root = ONNX_TESTDATA, opts: RunOptions = {}, progress?: (done: number, total: number) => void): Promise<ConformanceCase[]> {
  const cases: ConformanceCase[] = [];
  const dirs = SUITES.flatMap((s) => (existsSync(join(root, s)) ? readdirSync(join(root, s)).sort().map((d) => [s, d]) : []))
    .filter(([s, d]) => existsSync(join(root, s, d, 'model.onnx')));
  for (const [suite, name] of dirs) {
    const dir = join(root, suite, name);
    const { ops, dtypes } = survey(new Uint8Array(readFileSync(join(dir, 'model.onnx'))));
    const outside = ops.filter((o) => !VISION_OPS.includes(o));
    const badTypes = dtypes.filter((t) => !ONNX_DTYPE[t]);
    if (outside.length || badTypes.length) {
      cases.push({ suite, name, ops, status: 'skip', why: outside.length ? `ops outside the list: ${outside.join(', ')}` : `tensor types outside the runtime's: ${badTypes.join(', ')}` });
    } else {
      let why: string | null;
      try {
        why = await runCase(dir, opts);
      } catch (e) {
        why = (e as Error).message.split('\n').join(' ');
      }
      cases.push({ suite, name, ops, status: why ? 'fail' : 'pass', ...(why ? { why } : {}) });
    }
    progress?.(cases.length, dirs.length);
  }
  return cases;
}

/** docs/conformance.md: the pass rate, every failure with its reason, the op coverage. */
export function conformanceReport(cases: ConformanceCase[], machine: string): string {
  const run = cases.filter((c) => c.status !== 'skip'), pass = run.filter((c) => c.status === 'pass');
  const fails = run.filter((c) => c.status === 'fail');
  const lines = [
    '# ONNX backend conformance',
    '',
    `Generated by \`npx faster-cnn conformance --report docs/conformance.md\` on ${machine}. The tests come from`,
    `Debian's \`libonnx-testdata\` (ONNX's backend test data: node, pytorch-converted, pytorch-operator and simple).`,
    'Counted: every test whose ops are all in the vision-CNN list of issue 18 and whose tensors are float32, int32,',
    'int64, uint8, int8 or bool; outputs compared as ONNX does (|got - want| <= 1e-5 + 1e-3 |want|; integers exact).',
    '',
    `**${pass.length} of ${run.length} pass (${((100 * pass.length) / Math.max(run.length, 1)).toFixed(1)}%)**; ${cases.length - run.length} tests use other ops or types.`,
    '',
    '## Failures',
    '',
    fails.length ? '| suite | test | why |\n|---|---|---|' : 'None.',
    ...fails.map((c) => `| ${c.suite} | ${c.name} | ${(c.why ?? '').replace(/\|/g, '\\|').slice(0, 300)} |`),
    '',
    '## Per suite',
    '',
    '| suite | counted | pass |',
    '|---|---|---|',
    ...SUITES.map((s) => {
      const r = run.filter((c) => c.suite === s);
      return `| ${s} | ${r.length} | ${r.filter((c) => c.status === 'pass').length} |`;
    }),
    '',
  ];
  return lines.join('\n');
}

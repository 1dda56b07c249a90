#!/usr/bin/env node
import { createRequire } from 'node:module';
import { FasterCnnError } from '../errors.js';
import { tablesCommand } from './tables.js';
import { demoCommand } from './demo.js';
import { benchCommand } from '../bench/bench.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { predictCommand } from './predict.js';
import { finetuneCommand } from './finetune.js';
import { webCommand } from './web.js';
import { exportCommand } from './export.js';
import { importCommand, runCommand } from './import.js';
import { conformanceCommand, inspectCommand } from './inspect.js';
import { checkModelsCommand } from '../bench/real-models.js';
import { benchModelsCommand } from '../bench/models.js';
import { firstCallCommand, firstCallWorker } from '../bench/first-call.js';
import { tuneCommand } from './tune.js';
import { calibrateCommand } from './calibrate.js';
import { webgpuModelsCommand } from '../bench/webgpu-models.js';
import { runOrder, runProfile } from '../bench/worker.js';

const HELP = `faster-cnn: exact lookup-table (PCILT) convolution

Commands:
  demo                      PCILT vs direct multiplication on the seed's layers (npm start)
  tables [--in C] [--out O] [--kernel K] [--bits 1,2,4,8] [--weight-bits W] [--json]
                            table bytes of every variant for one layer, against the seed's
  bench [--layers seed,mnist-b1,mnist-b64] [--bits 1,2,4,8] [--threads 1,2] [--runs N] [--rounds R]
        [--impls LIST] [--json] [--report FILE] [--quick] [--no-profile] [--backend wasm|webgpu [--sweep] [--anchor FILE]]
                            PCILT vs direct multiplication vs onnxruntime and tfjs, same data, one run;
                            --backend webgpu: PCILT vs dot4I8Packed direct on the GPU (seed layer by default);
                            --sweep also times the kernels' other workgroup shapes; --anchor adds
                            scripts/gpu/torch_anchor.py's PyTorch figures to the report
  train mnist --activation-bits B [--weight-bits W] [--epochs E] [--seed S] [--out FILE] [--limit N] [--lr X]
                            quantization-aware training of the seed's CNN on MNIST, with a progress bar
  eval FILE [--json] [--limit N] [--backend B]
                            test accuracy, PCILT vs direct agreement and per-layer times of a model
  predict FILE IMAGE [--json]
                            the digit in a PNG or JPEG image (any size; dark-on-light is inverted)
  finetune-tables FILE --range filter|table|entry [--epochs E] [--limit N] [--lr LR] [--out FILE] [--json]
                            train the PCILT tables themselves (the paper's "PCILTs as weights") of every
                            convolution and fully connected layer that reads activation codes, and
                            compare with plain QAT
  export FILE --out FILE.onnx
                            the network as ONNX (opset 13, QuantizeLinear/DequantizeLinear around Conv/Gemm)
  import MODEL --out FILE.fcnn [--activation-bits B] [--calibrate DIR] [--calibration-method mse|minmax]
         [--levels uniform|fit|additive] [--ranges channel|tensor] [--refit DIR [--refit-layers pointwise|all]] [--limit N]
         [--input-shape NAME=1x3x224x224] [--custom-layers FILE.mjs] [preprocessing flags]
                            an ONNX model (any inputs and outputs, named sizes kept open unless pinned
                            with --input-shape), a TF.js model.json (layers or graph) or a JS module
                            exporting one, as a .fcnn graph; activations quantized to B bits (static
                            ranges from the images in DIR, else measured per input; 'mse' clips each
                            range where the layers' outputs err least and corrects their mean error;
                            --levels fit|additive: non-uniform levels per layer input where they measure
                            better; additive ones run on the bit-serial tables at the speed of uniform codes;
                            --ranges channel: a range per channel of each layer input, folded into the
                            weights (opt-in; default: one per tensor); --refit DIR: refit the 1 x 1 and
                            dense layers' weights to their quantized inputs on the images in DIR and
                            their mirror images (opt-in; over 50 images, may hold DIR of --calibrate));
                            --custom-layers: a module exporting customLayers, the Keras layer classes a
                            TF.js layers model's library registers itself, built from ONNX operators
                            (also taken by run, inspect, export and tune)
  run FILE IMAGE [--top 5] [--json] [--profile] [--activation-bits B] [--kernel auto|pcilt|direct]
      [--threads N] [--backend webgpu] [preprocessing flags]
                            one PNG/JPEG through an imported model (.fcnn, .onnx, model.json) with its
                            stored preprocessing; prints every output; --profile: per-node times and
                            the kernel each ran ('auto': what it measured)
  inspect FILE [--input-shape NAME=AxBxC] [--json]
                            a model's inputs, outputs, op histogram, parameters and multiply-accumulates
  conformance [--dir DIR] [--report FILE] [--json] [--backend auto|ref|webgpu]
                            ONNX's backend conformance tests (Debian's libonnx-testdata) through the runtime
  check-models [--photos DIR] [--models a,b] [--time] [--runs N] [--backend webgpu] [--report FILE] [--json FILE]
                            real pretrained models from npm packages and PyTorch exports: each output
                            against tfjs / onnxruntime on a photo; --time: speed against tfjs-backend-wasm
                            and onnxruntime-web
      preprocessing flags:  --size WxH --resize bilinear|nearest --align-corners --scale X --offset X
                            --mean R,G,B --std R,G,B --channels rgb|bgr|gray
  bench-models --photos DIR [--models mobilenet_v2,mobilenet_v2_mid,inception_v3] [--bits 8,4] [--runs N]
               [--threads T] [--json FILE] [--report FILE] [--levels] [--tune] [--refit DIR]
                            imports the pretrained nsfwjs models and checks them against tfjs on real
                            photographs (float32, 8- and 4-bit: dynamic, min/max and MSE-calibrated ranges;
                            --levels: Lloyd-Max and additive non-uniform levels too; --tune: the plan
                            'tune' picks on the calibration photos, timed with the 8-bit model; --refit:
                            below 8 bits, the layers refitted on the calibration photos, DIR's pictures
                            and their mirror images (scripts/fetch-refit-photos.sh)), timed against
                            tfjs-wasm and onnxruntime-web
  tune MODEL --calibrate DIR --out FILE.fcnn [--budget 0.02] [--agreement 0.97] [--widths 8,6,4,3,2]
       [--latency measured|estimated] [--report FILE.svg] [--limit N] [--align-corners] [--json]
                            per-layer activation widths chosen by measured speed and error against float:
                            prints every plan tried, writes the fastest within the budget; --report: SVG
  bench-first-call --photos DIR [--models mobilenet_v2,...,mnist-a2] [--bits 8] [--runs N] [--report FILE] [--json]
                            each model's first call, second call and steady state in fresh processes, from a
                            fresh import and from the .fcnn that faster-cnn import writes
  calibrate-machine [--json]
                            measures this machine's kernels anew (about 1.5 s; otherwise done once, on a
                            quantized model's first run) and prints the cost lines 'auto' predicts from
  bench-webgpu-models MODEL... [--batch 1,16] [--bits 0,8] [--runs N] [--anchor torch.json] [--report FILE] [--json]
                            whole models on WebGPU (model.run with backend 'webgpu'), checked against wasm
                            at batch 1; --bits: float32 (0) and layers on codes (calibrated min/max);
                            --anchor: PyTorch's figures from scripts/gpu/torch_models.py
  web [--port 8080] [--no-isolation]
                            serves the MNIST drawing page on localhost (npm run web)
  help                      this text
`;

const commands: Record<string, (argv: string[]) => unknown> = {
  tables: tablesCommand,
  demo: demoCommand,
  bench: benchCommand,
  train: trainCommand,
  eval: evalCommand,
  predict: predictCommand,
  'finetune-tables': finetuneCommand,
  import: importCommand,
  'bench-models': benchModelsCommand,
  'bench-first-call': firstCallCommand,
  'calibrate-machine': calibrateCommand,
  tune: tuneCommand,
  'bench-webgpu-models': webgpuModelsCommand,
  'bench-first-call-worker': (argv) => firstCallWorker(JSON.parse(argv[0])),
  run: runCommand,
  inspect: inspectCommand,
  conformance: conformanceCommand,
  'check-models': checkModelsCommand,
  web: webCommand,
  export: exportCommand,
  // Internal: the bench runs every implementation in a child process of its own.
  'bench-worker': (argv) => runOrder(JSON.parse(argv[0])),
  'bench-profile': (argv) => {
    const o = JSON.parse(argv[0]);
    return runProfile(o.layer, o.bits, o.threads);
  },
};

/** One command's lines of HELP (its usage line and the more deeply indented lines after it); undefined for internal commands. */
function commandHelp(cmd: string): string | undefined {
  const lines = HELP.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`  ${cmd} `) || l === `  ${cmd}`);
  if (at < 0) return undefined;
  let end = at + 1;
  while (end < lines.length && lines[end].startsWith('    ')) end++;
  return `${lines.slice(at, end).join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd === '--version') {
    console.log(createRequire(import.meta.url)('../../package.json').version);
    return 0;
  }
  const run = commands[cmd];
  if (!run) {
    process.stderr.write(`faster-cnn: unknown command "${cmd}"\n\n${HELP}`);
    return 2;
  }
  const usage = commandHelp(cmd);
  if (usage && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`Usage: faster-cnn${usage.slice(1)}`);
    return 0;
  }
  try {
    await run(rest);
    return 0;
  } catch (e) {
    if (e instanceof FasterCnnError) {
      process.stderr.write(`faster-cnn ${cmd}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

// A closed pipe (faster-cnn eval ... | head) ends the output, not the program with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));

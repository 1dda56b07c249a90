import { parse } from './args.js';
import { calibrateMachine } from '../kernels/wasm/calibrate.js';
import { costModelFile } from '../backends/cost-model.js';

/**
 * `faster-cnn calibrate-machine [--json]`: measures this machine's kernels anew (what 'auto'
 * predicts a model layer's kernel from, otherwise done once on first use) and prints each family's
 * cost line.
 */
export async function calibrateCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' } });
  const m = await calibrateMachine((msg) => process.stderr.write(`\r${msg}\x1b[K`));
  process.stderr.write('\n');
  if (values.json) {
    console.log(JSON.stringify(m, null, 2));
    return;
  }
  console.log(`${m.machine}: calibrated in ${(m.calibrationMs / 1000).toFixed(1)} s, kept in ${await costModelFile()}`);
  console.log('family (kernel | threads | layer kind | width)   ms at 1M units  exponent  calibrated units');
  for (const [family, l] of Object.entries(m.lines)) {
    console.log(`${family.padEnd(46)} ${l.msAtMillion.toFixed(3).padStart(14)}  ${l.exponent.toFixed(2).padStart(8)}  ${(l.minUnits / 1e6).toFixed(1)}M..${(l.maxUnits / 1e6).toFixed(1)}M`);
  }
  console.log('units: multiply-accumulates (direct), times the activation bits (look-ups)');
}

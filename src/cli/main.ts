#!/usr/bin/env node
import { createRequire } from 'node:module';
import { FasterCnnError } from '../errors.js';
import { tablesCommand } from './tables.js';
import { demoCommand } from './demo.js';

const HELP = `faster-cnn: exact lookup-table (PCILT) convolution

Commands:
  demo                      PCILT vs direct multiplication on the seed's layers (npm start)
  tables [--in C] [--out O] [--kernel K] [--bits 1,2,4,8] [--weight-bits W] [--json]
                            table bytes of every variant for one layer, against the seed's
  help                      this text
`;

const commands: Record<string, (argv: string[]) => unknown> = {
  tables: tablesCommand,
  demo: demoCommand,
};

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

process.exitCode = await main(process.argv.slice(2));

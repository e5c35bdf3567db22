#!/usr/bin/env node
/**
 * The `shoal` command. Each command group lives in its own module and registers itself here. This file (with the
 * daemons' entry points it starts) is the only place that reads argv, prints errors for people and exits.
 */
import { Command, CommanderError } from 'commander';
import { StorageError } from '../common/index.js';
import { registerClusterCommands } from './cluster.js';
import { registerCrushCommands } from './crush.js';
import { registerObjectCommands } from './objects.js';
import { registerUpCommand } from './up.js';
import { registerS3Commands } from './s3.js';
import { registerPgCommands } from './pgs.js';
import { registerBenchCommands } from './bench.js';
import { registerImageCommands, registerNbdCommand } from './image.js';
import { registerFsCommands } from './fs.js';
import { exitStatusFor } from './exit-status.js';

function buildProgram(): Command {
  const program = new Command('shoal')
    .description('Shoal: distributed object, block and file storage')
    .version('0.1.0')
    .showHelpAfterError()
    .option('-c, --conf <file>', 'cluster config (default: $SHOAL_CONF, then ./.shoal/shoal.conf)')
    .exitOverride();
  registerCrushCommands(program);
  registerClusterCommands(program);
  registerUpCommand(program);
  registerObjectCommands(program);
  registerS3Commands(program);
  registerPgCommands(program);
  registerBenchCommands(program);
  registerImageCommands(program);
  registerNbdCommand(program);
  registerFsCommands(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    const storageError = StorageError.from(error);
    process.stderr.write(`shoal: ${storageError.code}: ${storageError.message}\n`);
    if (storageError.code === 'INTERNAL' && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
    return exitStatusFor(storageError.code);
  }
}

process.exitCode = await main(process.argv);

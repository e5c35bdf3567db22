import type { Command } from 'commander';

/** `shoal crush build|test|show`: offline tools for CRUSH maps (like crushtool). */
export function registerCrushCommands(program: Command): void {
  program.command('crush').description('build, test and show CRUSH maps offline');
}

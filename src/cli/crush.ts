import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { StorageError } from '../common/index.js';
import { buildClusterMap, compileCrush, formatTree, formatUtilization, testRule } from '../crush/index.js';
import { clusterMapFromJson, clusterMapToJson, type ClusterMap } from '../protocol/index.js';

/** Parses a decimal integer option; INVALID_ARGUMENT (not a crash or NaN) for anything else. */
function integer(name: string, text: string, min: number, max: number): number {
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new StorageError('INVALID_ARGUMENT', `--${name} must be an integer in [${min}, ${max}], not ${JSON.stringify(text)}`);
  }
  return value;
}

/** A 16.16 weight from a decimal like `1.5` (CRUSH weights are conventionally given as decimals). */
function weight(name: string, text: string): number {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Math.round(Number(text) * 0x10000) : NaN;
  if (!Number.isSafeInteger(value) || value > 0xffff_ffff) {
    throw new StorageError('INVALID_ARGUMENT', `--${name} must be a decimal weight below 65536, not ${JSON.stringify(text)}`);
  }
  return value;
}

function readMap(path: string): ClusterMap {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StorageError('NOT_FOUND', `map file ${path} does not exist`);
    throw new StorageError('INVALID_ARGUMENT', `cannot read map file ${path}: ${(error as Error).message}`);
  }
  const map = clusterMapFromJson(text);
  // Validates the hierarchy and rules, so a broken map is reported here rather than as odd mappings.
  compileCrush(map.crush);
  return map;
}

function print(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
}

/** `shoal crush build|test|show`: offline tools for CRUSH maps (like crushtool). */
export function registerCrushCommands(program: Command): void {
  const crush = program.command('crush').description('build, test and show CRUSH maps offline');

  crush
    .command('build')
    .description('print a cluster map (JSON map file) with root "default", optional racks, hosts and OSDs')
    .requiredOption('--hosts <n>', 'number of hosts')
    .requiredOption('--osds-per-host <n>', 'OSDs in each host')
    .option('--racks <n>', 'racks between the root and the hosts (hosts split evenly)', '0')
    .option('--osd-weight <w>', 'crush weight of each OSD, as a decimal', '1')
    .option('--fsid <id>', 'cluster id to write into the map')
    .action((options: { hosts: string; osdsPerHost: string; racks: string; osdWeight: string; fsid?: string }) => {
      const map = buildClusterMap({
        hosts: integer('hosts', options.hosts, 1, 100_000),
        osdsPerHost: integer('osds-per-host', options.osdsPerHost, 1, 10_000),
        racks: integer('racks', options.racks, 0, 100_000),
        osdWeight: weight('osd-weight', options.osdWeight),
        ...(options.fsid === undefined ? {} : { fsid: options.fsid }),
      });
      process.stdout.write(clusterMapToJson(map));
    });

  crush
    .command('test')
    .description('print the mapping of each input x: "rule R x N [osd,...]" (holes print as 2147483647)')
    .requiredOption('--map <file>', 'JSON map file (from `shoal crush build` or the monitors)')
    .requiredOption('--rule <rule>', 'rule id or name')
    .requiredOption('--num-rep <n>', 'number of replicas or shards to ask for')
    .option('--min-x <x>', 'first input', '0')
    .option('--max-x <x>', 'last input', '1023')
    .option('--mark-out <ids>', 'comma-separated OSD ids to treat as out')
    .option('--show-utilization', 'after the mappings, print placements per OSD')
    .action(
      (options: {
        map: string;
        rule: string;
        numRep: string;
        minX: string;
        maxX: string;
        markOut?: string;
        showUtilization?: boolean;
      }) => {
        const map = readMap(options.map);
        const markOut =
          options.markOut === undefined || options.markOut.trim() === ''
            ? []
            : options.markOut.split(',').map((id) => integer('mark-out', id, 0, 0x7fff_ffff));
        const test = testRule(map, {
          rule: options.rule,
          numRep: integer('num-rep', options.numRep, 0, 256),
          minX: integer('min-x', options.minX, 0, 0xffff_ffff),
          maxX: integer('max-x', options.maxX, 0, 0xffff_ffff),
          markOut,
        });
        print(test.lines);
        if (options.showUtilization) print(formatUtilization(map, test));
      },
    );

  crush
    .command('show')
    .description('print the CRUSH hierarchy as a tree, with OSD status, and the rules')
    .requiredOption('--map <file>', 'JSON map file')
    .action((options: { map: string }) => {
      print(formatTree(readMap(options.map)));
    });
}

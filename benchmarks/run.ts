/**
 * `npm run bench -- [name ...]`: runs the named benchmarks (all when none is named). Each prints its figures as
 * ratios against a baseline measured in the same run, with the command that produced them.
 */
type Benchmark = () => Promise<void>;

const benchmarks: Record<string, () => Promise<Benchmark>> = {
  crush: async () => (await import('./crush.js')).run,
  objects: async () => (await import('./objects.js')).run,
  store: async () => (await import('./store.js')).run,
  messenger: async () => (await import('./messenger.js')).run,
  s3: async () => (await import('./s3.js')).run,
  erasure: async () => (await import('./erasure.js')).run,
  block: async () => (await import('./block.js')).run,
  recovery: async () => (await import('./recovery.js')).run,
  fs: async () => (await import('./fs.js')).run,
  // Runs the others in child processes; never part of "all".
  report: async () => (await import('./report.js')).run,
};

const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = names.filter((n) => !Object.hasOwn(benchmarks, n));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(benchmarks).join(', ')}\n`);
  process.exitCode = 2;
} else {
  for (const name of names.length > 0 ? names : Object.keys(benchmarks).filter((n) => n !== 'report')) {
    process.stdout.write(`\n== bench ${name} ==\n`);
    const load = benchmarks[name];
    if (load) await (await load())();
  }
}

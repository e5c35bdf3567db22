/**
 * Crash safety of LevelStore: a child process applies a known stream of transactions and is killed with SIGKILL at
 * a random moment (seeded), again and again over the same directory. After each kill the store must hold exactly
 * the state after some prefix of the stream that includes every acknowledged transaction: every object at its old
 * or its new version, multi-object transactions all or nothing, no checksum failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LevelStore, MemStore, type ObjectStore } from '../../../osd/store/index.js';
import { seededRandom } from '../../helpers/seed.js';
import { crashTransaction } from './crash-workload.js';

const childScript = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const rounds = Number(process.env['SHOAL_CRASH_ROUNDS'] ?? 20);

/** Everything observable except mtimes, as one hash. */
async function digest(store: ObjectStore): Promise<string> {
  const hash = createHash('sha256');
  for (const pg of await store.listCollections()) {
    hash.update(`pg ${pg}\n`);
    let after: string | undefined;
    for (;;) {
      const page = await store.listObjects(pg, after === undefined ? { limit: 100 } : { after, limit: 100 });
      for (const name of page.names) {
        const oid = { pg, name };
        const data = await store.read(oid);
        hash.update(`object ${name} ${data.length} `).update(data);
        for (const [k, v] of await store.getXattrs(oid)) hash.update(`x ${k}=`).update(v);
        const omap = await store.omapList(oid, { limit: 1000 });
        for (const e of omap.entries) hash.update(`o ${e.key}=`).update(e.value);
      }
      if (!page.more) break;
      after = page.names[page.names.length - 1];
    }
    const meta = await store.pgMetaList(pg, { limit: 10_000 });
    for (const e of meta.entries) hash.update(`m ${e.key}=`).update(e.value);
  }
  return hash.digest('hex');
}

interface ChildRun {
  submitted: number[];
  acked: number[];
  stderr: string;
}

/**
 * Runs the child and kills it `killAfterMs` after it is ready, or after it was spawned when `duringStart` (then the
 * kill may land in recovery). Start-up time varies a lot on a busy machine, hence the two clocks.
 */
function runChild(dir: string, seed: number, first: number, killAfterMs: number, duringStart: boolean): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childScript, dir, String(seed), String(first)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let timer = setTimeout(() => child.kill('SIGKILL'), duringStart ? killAfterMs : 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      const wasReady = out.startsWith('ready');
      out += chunk.toString();
      if (!duringStart && !wasReady && out.startsWith('ready')) {
        clearTimeout(timer);
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      const submitted: number[] = [];
      const acked: number[] = [];
      for (const line of out.split('\n')) {
        const [kind, index] = line.split(' ');
        if (kind === 's') submitted.push(Number(index));
        if (kind === 'a') acked.push(Number(index));
      }
      resolve({ submitted, acked, stderr });
    });
  });
}

test('LevelStore survives SIGKILL at random moments: state is always a prefix containing every ack', async (t) => {
  const random = seededRandom(t);
  const seed = random.seed;
  const dir = await mkdtemp(join(tmpdir(), 'shoal-crash-'));
  const model = new MemStore();
  await model.start();
  let applied = 0; // the model holds the state after transactions [0, applied)
  let totalAcked = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const duringStart = random.chance(0.2);
      const killAfterMs = random.int(0, 300);
      const run = await runChild(dir, seed, applied, killAfterMs, duringStart);
      assert.equal(run.stderr.includes('failed'), false, `seed ${seed} round ${round}: child reported ${run.stderr}`);
      const low = Math.max(applied, ...run.acked.map((i) => i + 1));
      const high = Math.max(applied, ...run.submitted.map((i) => i + 1));
      totalAcked += run.acked.length;

      const store = new LevelStore({ dir });
      await store.start();
      let found: string;
      try {
        found = await digest(store);
      } finally {
        await store.stop();
      }
      while (applied < low) await model.apply(crashTransaction(seed, applied++));
      let expected = await digest(model);
      while (expected !== found && applied < high) {
        await model.apply(crashTransaction(seed, applied++));
        expected = await digest(model);
      }
      assert.equal(
        found,
        expected,
        `seed ${seed} round ${round} (killed ${killAfterMs} ms after ${duringStart ? 'spawn' : 'ready'}): the store matches no prefix in [${low}, ${high}] (replay: SHOAL_SEED=${seed})`,
      );
    }
    t.diagnostic(`${rounds} kills, ${applied} transactions survived, ${totalAcked} acknowledged`);

    // After all those crashes nothing leaked: every data file, inline blob and onode belongs to a live object.
    const store = new LevelStore({ dir });
    await store.start();
    try {
      await store.settle();
      const counts = await store.recordCounts();
      const kinds = { none: 0, inline: 0, file: 0 };
      for (const pg of await store.listCollections()) {
        for (const name of (await store.listObjects(pg, { limit: 10_000 })).names) kinds[(await store.locate({ pg, name })).kind]++;
      }
      const objects = kinds.none + kinds.inline + kinds.file;
      assert.equal(counts['O'] ?? 0, objects, `seed ${seed}: onodes`);
      assert.equal((await store.statfs()).objects, objects, `seed ${seed}: object count`);
      assert.equal(counts['I'] ?? 0, kinds.inline, `seed ${seed}: inline blobs`);
      assert.equal(counts['G'] ?? 0, 0, `seed ${seed}: garbage left`);
      let files = 0;
      for (const sub of await readdir(join(dir, 'data'))) files += (await readdir(join(dir, 'data', sub))).length;
      assert.equal(files, kinds.file, `seed ${seed}: data files`);
    } finally {
      await store.stop();
    }
    assert.ok(totalAcked > 0, `seed ${seed}: no transaction was ever acknowledged; the child never got going`);
  } finally {
    await model.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

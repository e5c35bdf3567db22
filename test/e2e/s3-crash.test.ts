/**
 * The S3 gateway killed with -9 in the middle of a large upload (`shoal up --restart` starts it again): completed
 * objects are intact, the interrupted one is invisible, and the garbage collector (run here with a clock past the
 * grace time) deletes every data object the interrupted upload had written, and none of the completed ones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock, ObjectClient, createLogger, parseClusterConfig } from '../../src/index.js';
import { unsignedPayload } from '../../gateway/s3/sigv4.js';
import { S3Store, garbageShards } from '../../gateway/s3/store.js';
import { waitFor } from '../helpers/processes.js';
import { openSigned, signedRequest, startS3Cluster, type S3Cluster } from '../helpers/s3-cluster.js';

let cluster: S3Cluster;
let client: ObjectClient | undefined;
const bucket = 'crash';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function dataObjects(objects: ObjectClient): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await objects.list('s3.data', cursor !== undefined ? { cursor } : {});
    names.push(...page.names);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return names;
}

before(async () => {
  cluster = await startS3Cluster('s3-crash', { restart: true });
  const confPath = join(cluster.dir, 'shoal.conf');
  client = new ObjectClient(parseClusterConfig(readFileSync(confPath, 'utf8'), confPath), { clientName: 'client.s3-crash-test' });
  await client.start();
});

after(async () => {
  await client?.stop();
  await cluster?.stop();
});

test('kill -9 of the gateway mid-upload: completed objects intact, the partial one invisible, its data collected', async () => {
  const objects = client as ObjectClient;
  assert.equal((await signedRequest(cluster, { method: 'PUT', path: `/${bucket}` })).status, 200);
  const complete = new Map<string, Buffer>([
    ['small', randomBytes(1000)],
    ['five', randomBytes(5 * 1024 * 1024 + 3)],
    ['nine', randomBytes(9 * 1024 * 1024 + 17)],
  ]);
  for (const [key, data] of complete) {
    const r = await signedRequest(cluster, { method: 'PUT', path: `/${bucket}/${key}`, body: data });
    assert.equal(r.status, 200, r.body.toString());
  }
  const before = new Set(await dataObjects(objects));

  // A 64 MiB upload, streamed 1 MiB at a time; stop sending after 20 MiB and hold the request open.
  const total = 64 * 1024 * 1024;
  const upload = openSigned(cluster, { method: 'PUT', path: `/${bucket}/partial`, payloadHash: unsignedPayload, headers: { 'content-length': String(total) } });
  const outcome = upload.reply.then(
    (r) => `answered ${r.status} ${r.code}`,
    (error: unknown) => `failed: ${String(error)}`,
  );
  for (let sent = 0; sent < 20 * 1024 * 1024; sent += 1024 * 1024) {
    if (!upload.request.write(randomBytes(1024 * 1024))) await once(upload.request, 'drain');
  }
  // The gateway has written stripes of the new instance (`<bucket id>.<instance>.<n>`) once they show in the pool.
  const partial = await waitFor('stripes of the upload in s3.data', 60_000, async () => {
    const fresh = (await dataObjects(objects)).filter((n) => !before.has(n));
    return fresh.length >= 2 ? fresh : undefined;
  }, 200);
  const instances = new Set(partial.map((n) => n.split('.').slice(0, 2).join('.')));
  assert.equal(instances.size, 1, `one instance being written: ${partial.join(', ')}`);
  const prefix = `${[...instances][0] ?? ''}.`;

  const oldPid = cluster.gatewayPid();
  assert.ok(oldPid, 'the gateway pid is in s3.pid');
  process.kill(oldPid, 'SIGKILL');
  assert.match(await outcome, /^failed/, 'the upload was cut off');
  upload.request.destroy();

  // shoal up --restart starts a new gateway on the same port.
  await waitFor('a new gateway to serve', 60_000, async () => {
    const pid = cluster.gatewayPid();
    if (pid === undefined || pid === oldPid) return undefined;
    return (await signedRequest(cluster, { method: 'GET', path: '/' })).status === 200 ? true : undefined;
  }, 250);
  assert.match(cluster.output(), /s3 exited \(SIGKILL\); restarting it/);

  const checkComplete = async (when: string) => {
    for (const [key, data] of complete) {
      const r = await signedRequest(cluster, { method: 'GET', path: `/${bucket}/${key}` });
      assert.equal(r.status, 200, `${key} ${when}`);
      assert.equal(sha256(r.body), sha256(data), `${key} ${when}`);
    }
  };
  await checkComplete('after the restart');
  const head = await signedRequest(cluster, { method: 'HEAD', path: `/${bucket}/partial` });
  assert.equal(head.status, 404, 'the interrupted upload is invisible');
  const listed = await signedRequest(cluster, { method: 'GET', path: `/${bucket}`, query: 'list-type=2' });
  const keys = [...listed.body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
  assert.deepEqual(keys, [...complete.keys()].sort());

  // The collector, with a clock past the grace time, deletes the interrupted instance and nothing else.
  const store = new S3Store(objects, { clock: new ManualClock(Date.now() + 24 * 3600_000), logger: createLogger({ name: 's3.store.test', level: 'error' }) });
  const collected = await store.collectGarbage();
  assert.ok(collected >= 1, `collected ${collected} instances`);
  const left = await dataObjects(objects);
  assert.deepEqual(left.filter((n) => n.startsWith(prefix)), [], 'no data object of the interrupted upload remains');
  assert.deepEqual(left.filter((n) => before.has(n)).sort(), [...before].sort(), 'the completed objects keep all their data');
  assert.equal(await store.collectGarbage(), 0, 'a second pass finds nothing');
  await checkComplete('after garbage collection');
});

test('replaced and deleted objects: the collector deletes exactly their stripes, found by their recorded size', async () => {
  const objects = client as ObjectClient;
  const put = async (key: string, data: Buffer) => {
    const before = new Set(await dataObjects(objects));
    const r = await signedRequest(cluster, { method: 'PUT', path: `/${bucket}/${key}`, body: data });
    assert.equal(r.status, 200, r.body.toString());
    return (await dataObjects(objects)).filter((n) => !before.has(n));
  };
  const first = await put('replaced', randomBytes(9 * 1024 * 1024 + 17));
  assert.equal(first.length, 3, `a 9 MiB object has 3 stripes: ${first.join(', ')}`);
  const second = randomBytes(5 * 1024 * 1024);
  const kept = await put('replaced', second);
  // A committed PUT leaves no garbage record for its own data: the one written before the data is dropped right
  // after the answer (not before it, so poll a little).
  const keptInstance = (kept[0] ?? '').split('.')[1] ?? '';
  assert.ok(keptInstance.length > 0);
  let records: string[] = [];
  for (let waited = 0; ; waited += 50) {
    records = [];
    for (let shard = 0; shard < garbageShards; shard++) records.push(...(await objects.omapList('s3.meta', `gc.${shard}`, { limit: 10_000 }).catch(() => ({ entries: [] }))).entries.map(([k]) => k));
    if (!records.some((k) => k.endsWith(`.${keptInstance}`)) || waited >= 2000) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(records.filter((k) => k.endsWith(`.${keptInstance}`)), [], 'no garbage record for the current data');
  assert.ok(records.some((k) => k.endsWith(`.${(first[0] ?? '').split('.')[1]}`)), 'the replaced data has its record');
  const removed = await put('removed', randomBytes(4 * 1024 * 1024 + 1));
  assert.equal((await signedRequest(cluster, { method: 'DELETE', path: `/${bucket}/removed` })).status, 204);

  const store = new S3Store(objects, { clock: new ManualClock(Date.now() + 24 * 3600_000), logger: createLogger({ name: 's3.store.test', level: 'error' }) });
  assert.ok((await store.collectGarbage()) >= 2);
  const left = new Set(await dataObjects(objects));
  assert.deepEqual([...first, ...removed].filter((n) => left.has(n)), [], 'the replaced and the deleted stripes are gone');
  assert.deepEqual(kept.filter((n) => !left.has(n)), [], 'the current stripes stay');
  const r = await signedRequest(cluster, { method: 'GET', path: `/${bucket}/replaced` });
  assert.equal(sha256(r.body), sha256(second));
});

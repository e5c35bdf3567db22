import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/index.js';
import { WatchRegistry, defaultWatchLimits } from '../../../osd/watch.js';

test('watch registry: a notify completes on every ack, times out the silent, and skips watchers that left', async () => {
  const clock = new ManualClock();
  const registry = new WatchRegistry(clock);
  registry.watch('1.0/o', 'w1');
  registry.watch('1.0/o', 'w2');
  const poll1 = registry.poll('1.0/o', 'w1', 10_000);
  const notify = registry.notify('1.0/o', 'me', Buffer.from('hi'), 5000);
  const [n] = await poll1;
  assert.equal(Buffer.from(n?.payload ?? []).toString(), 'hi');
  registry.ack('w1', n?.notifyId ?? 0, Buffer.from('ok'));
  clock.advance(5001);
  const result = await notify;
  assert.deepEqual([...result.acks.keys()], ['w1']);
  assert.deepEqual(result.timeouts, ['w2'], 'w2 never polled');
  // The queued notification waits for w2's next poll.
  assert.equal((await registry.poll('1.0/o', 'w2', 1000)).length, 1);
  registry.unwatch('1.0/o', 'w2');
  const second = registry.notify('1.0/o', 'me', Buffer.from('again'), 5000);
  const [m] = await registry.poll('1.0/o', 'w1', 1000);
  registry.ack('w1', m?.notifyId ?? 0, Buffer.alloc(0));
  assert.deepEqual((await second).timeouts, []);
});

test('watch registry: an idle watcher is dropped; dropAll ends polls; polling an unknown watch is NOT_FOUND', async () => {
  const clock = new ManualClock();
  const registry = new WatchRegistry(clock, { ...defaultWatchLimits, watcherIdleMs: 1000 });
  registry.watch('1.0/o', 'w1');
  clock.advance(2000);
  const result = await registry.notify('1.0/o', 'me', Buffer.alloc(0), 100);
  assert.equal(result.acks.size + result.timeouts.length, 0, 'the idle watcher was dropped');
  registry.watch('1.0/p', 'w2');
  const poll = registry.poll('1.0/p', 'w2', 10_000);
  registry.dropAll('1.0/');
  assert.deepEqual(await poll, []);
  await assert.rejects(registry.poll('1.0/p', 'w2', 10), /re-register/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { StorageError, monitorRpc, wire } from '../../../src/index.js';
import { RpcClient, RpcServer } from '../../../src/net/index.js';

test('gRPC transport: typed calls, StorageError codes cross the wire, garbage is refused, streams end cleanly', async () => {
  const server = new RpcServer({ address: '127.0.0.1:0' });
  server.unary(monitorRpc.status, async () => wire.MonitorStatus.create({ name: 'a', role: 'leader', term: 7 }));
  server.unary(monitorRpc.command, async (request) => {
    throw new StorageError('NOT_FOUND', `pool ${request.command?.poolRm?.name} does not exist`);
  });
  server.unary(monitorRpc.getMap, async () => {
    throw new Error('boom');
  });
  server.serverStream(monitorRpc.subscribe, (request, sink) => {
    for (let i = 1; i <= 3; i++) sink.write({ full: Buffer.from([Number(request.fromEpoch) + i]) });
    sink.end();
  });
  await server.start();
  const client = new RpcClient(`127.0.0.1:${server.port}`);
  try {
    const status = await client.call(monitorRpc.status, {}, { timeoutMs: 2000 });
    assert.deepEqual([status.name, status.role, status.term], ['a', 'leader', 7]);

    await assert.rejects(
      client.call(monitorRpc.command, { command: { poolRm: { name: 'x' } } }, { timeoutMs: 2000 }),
      (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND' && /pool x/.test(e.message),
    );
    await assert.rejects(
      client.call(monitorRpc.getMap, {}, { timeoutMs: 2000 }),
      (e: unknown) => e instanceof StorageError && e.code === 'INTERNAL',
    );

    const received: number[] = [];
    await new Promise<void>((resolve, reject) => {
      client.stream(monitorRpc.subscribe, { fromEpoch: 10 }, {
        onMessage: (m) => received.push(m.full?.[0] ?? -1),
        onEnd: (error) => (error ? reject(error) : resolve()),
      });
    });
    assert.deepEqual(received, [11, 12, 13]);

    // Raw bytes that are not a CommandRequest: the server answers with an error and keeps serving.
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const rawError = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(
        monitorRpc.command.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        (error) => resolve(error),
      ),
    );
    raw.close();
    assert.equal(rawError?.metadata.get('shoal-code')[0], 'CORRUPT_DATA');
    assert.equal((await client.call(monitorRpc.status, {}, { timeoutMs: 2000 })).name, 'a');
  } finally {
    client.close();
    await server.stop();
  }
});

test('gRPC transport: an unreachable server is UNAVAILABLE or TIMEOUT, within the deadline', async () => {
  const client = new RpcClient('127.0.0.1:1');
  try {
    await assert.rejects(
      client.call(monitorRpc.status, {}, { timeoutMs: 500 }),
      (e: unknown) => e instanceof StorageError && (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT'),
    );
  } finally {
    client.close();
  }
});

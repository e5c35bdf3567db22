import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import {
  StorageError,
  bufferPool,
  encodeFrameHead,
  errorCodes,
  type FrameHeader,
  type LogFields,
  type Logger,
} from '../../../src/index.js';
import {
  MessengerClient,
  MessengerPool,
  MessengerServer,
  type MessengerServerOptions,
  type RequestHandler,
} from '../../../src/net/index.js';
import { FrameParser } from '../../../src/net/messenger-frame.js';
import { seededRandom } from '../../helpers/seed.js';

const noBytes = new Uint8Array(0);
const timeoutMs = 10_000;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();

/** Waits for a state the test is about to assert on; fails (instead of hanging) if it never comes. */
async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail(`never happened: ${what}`);
}

function isCode(code: StorageError['code']) {
  return (e: unknown) => e instanceof StorageError && e.code === code;
}

/** A promise with its resolve function, for handlers that wait until the test lets them go. */
function gate(): { promise: Promise<void>; open(): void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function startServer(
  t: TestContext,
  handler: RequestHandler,
  options: Partial<MessengerServerOptions> = {},
): Promise<MessengerServer> {
  const server = new MessengerServer({ address: '127.0.0.1:0', stopGraceMs: 100, ...options }).onRequest(handler);
  await server.start();
  t.after(() => server.stop());
  return server;
}

function clientFor(t: TestContext, server: MessengerServer, options: Partial<ConstructorParameters<typeof MessengerClient>[0]> = {}) {
  const client = new MessengerClient({ address: `127.0.0.1:${server.port}`, ...options });
  t.after(() => client.close());
  return client;
}

const echo: RequestHandler = async (request) => ({ header: sha256(request.payload), payload: request.payload });

/** Prefix and header of a request frame declaring `payloadBytes`. */
function head(fields: Partial<FrameHeader>, payloadBytes: number): Buffer {
  const header: FrameHeader = { id: 1, kind: 'request', op: 'echo', errorCode: '', errorMessage: '', opHeader: noBytes };
  return encodeFrameHead({ ...header, ...fields }, payloadBytes);
}

function frame(fields: Partial<FrameHeader>, payload?: Uint8Array): Buffer[] {
  const first = head(fields, payload?.length ?? 0);
  return payload === undefined ? [first] : [first, Buffer.from(payload)];
}

/** A raw TCP peer that collects every byte the server sends and notices when the server closes. */
async function rawPeer(port: number): Promise<{ socket: net.Socket; received: () => Buffer; closed: () => boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return { socket, received: () => Buffer.concat(chunks), closed: () => closed };
}

function parseAll(bytes: Buffer): { header: FrameHeader; payload: Buffer | undefined }[] {
  const parser = new FrameParser({ headerBytesMax: 64 * 1024, payloadBytesMax: 256 * 1024 * 1024 });
  parser.push(bytes);
  const out: { header: FrameHeader; payload: Buffer | undefined }[] = [];
  for (let f = parser.next(); f !== undefined; f = parser.next()) out.push({ header: f.header, payload: f.payload });
  return out;
}

test('messenger: payloads of 0 B, 1 B, 4 KiB and 8 MiB round-trip intact, with their op headers', async (t) => {
  const random = seededRandom(t);
  const server = await startServer(t, echo);
  const client = clientFor(t, server);
  for (const size of [0, 1, 4096, 8 * 1024 * 1024]) {
    const payload = random.bytes(size);
    const reply = await client.request('echo', Buffer.from(`op header ${size}`), payload, { timeoutMs });
    assert.deepEqual(Buffer.from(reply.header), sha256(payload), `header for ${size} B`);
    assert.deepEqual(sha256(reply.payload), sha256(payload), `payload for ${size} B`);
    assert.equal(reply.payload.length, size);
  }
  const seen: string[] = [];
  const server2 = await startServer(t, async (request) => {
    seen.push(`${request.op}:${Buffer.from(request.header).toString()}:${request.payload.length}:${request.oneWay}`);
    return {};
  });
  const reply = await clientFor(t, server2).request('x', Buffer.from('h'), undefined, { timeoutMs });
  assert.deepEqual([reply.header.length, reply.payload.length], [0, 0]);
  assert.deepEqual(seen, ['x:h:0:false']);
  assert.equal(client.stats().connects, 1);
});

test('messenger: 1000 concurrent requests on one connection, answered out of order, each to its caller', async (t) => {
  const random = seededRandom(t);
  const delays = Array.from({ length: 1000 }, () => random.int(0, 20));
  const server = await startServer(
    t,
    async (request) => {
      const index = request.payload.readUInt32BE(0);
      await new Promise((resolve) => setTimeout(resolve, delays[index]));
      return { header: request.header, payload: Buffer.concat([request.payload, Buffer.from('!')]) };
    },
    { inflightRequestsMax: 1000 },
  );
  const client = clientFor(t, server, { inflightRequestsMax: 1000 });
  const completed: number[] = [];
  const replies = await Promise.all(
    Array.from({ length: 1000 }, async (_, i) => {
      const payload = Buffer.alloc(4 + (i % 97));
      payload.writeUInt32BE(i, 0);
      const reply = await client.request('delay', Buffer.from(String(i)), payload, { timeoutMs });
      completed.push(i);
      return { i, reply, payload };
    }),
  );
  for (const { i, reply, payload } of replies) {
    assert.equal(Buffer.from(reply.header).toString(), String(i));
    assert.deepEqual(reply.payload, Buffer.concat([payload, Buffer.from('!')]));
  }
  assert.notDeepEqual(completed, [...completed].sort((a, b) => a - b), 'replies arrived in request order');
  assert.equal(client.stats().connects, 1);
  assert.equal(server.stats().connections.length, 1);
});

test('messenger: mixed small and large payloads, read in place, stay intact both ways while the server pauses and resumes', async (t) => {
  const random = seededRandom(t);
  const server = await startServer(
    t,
    async (request) => {
      await new Promise((resolve) => setTimeout(resolve, request.payload.length % 3));
      return { header: sha256(request.payload), payload: request.payload };
    },
    { inflightRequestsMax: 2 },
  );
  const client = clientFor(t, server, { inflightRequestsMax: 64 });
  const sizes = Array.from({ length: 120 }, () => random.pick([0, 1, 100, 4096, 65_535, 65_536, 70_001, 300_000, 2 * 1024 * 1024 + 3]));
  await Promise.all(
    sizes.map(async (size, i) => {
      const payload = random.bytes(size);
      const reply = await client.request('echo', Buffer.from(String(i)), payload, { timeoutMs });
      assert.deepEqual(Buffer.from(reply.header), sha256(payload), `request ${i} (${size} B) as the server saw it`);
      assert.deepEqual(sha256(reply.payload), sha256(payload), `reply ${i} (${size} B)`);
    }),
  );
  assert.equal(client.stats().connects, 1);
  // Both ends read into buffers the parser picks (socket-reader.ts); on this Node the server's accepted sockets must
  // too, or the OSDs silently lose that saving.
  assert.equal(server.stats().connections[0]?.readsInPlace, true, `in-place reads unavailable on Node ${process.version}`);
});

test('messenger: every StorageError code crosses the wire; unknown errors become INTERNAL and are logged', async (t) => {
  const logged: [string, LogFields | undefined][] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error: (message, fields) => logged.push([message, fields]),
    child: () => logger,
  };
  const server = await startServer(
    t,
    async (request) => {
      if (request.op === 'boom') throw new TypeError('secret details of a bug');
      if (request.op === 'sync-throw') return (() => { throw new StorageError('NOT_FOUND', 'thrown synchronously'); })();
      throw new StorageError(request.op as StorageError['code'], `failed with ${request.op}`);
    },
    { logger },
  );
  const client = clientFor(t, server);
  for (const code of errorCodes) {
    await assert.rejects(
      client.request(code, noBytes, undefined, { timeoutMs }),
      (e: unknown) => e instanceof StorageError && e.code === code && e.message === `failed with ${code}`,
      code,
    );
  }
  await assert.rejects(client.request('boom', noBytes, undefined, { timeoutMs }), isCode('INTERNAL'));
  assert.equal(logged.length, 1);
  assert.equal(logged[0]?.[1]?.['op'], 'boom');
  await assert.rejects(client.request('sync-throw', noBytes, undefined, { timeoutMs }), isCode('NOT_FOUND'));
});

test('messenger: a reply later than timeoutMs is TIMEOUT; the late reply is dropped and the connection still works', async (t) => {
  const held = gate();
  const server = await startServer(t, async (request) => {
    if (request.op === 'slow') await held.promise;
    return { payload: Buffer.from(request.op) };
  });
  const client = clientFor(t, server);
  await assert.rejects(client.request('slow', noBytes, undefined, { timeoutMs: 50 }), isCode('TIMEOUT'));
  assert.equal(client.stats().inflightRequests, 0);
  held.open();
  await until('the late reply has arrived', () => server.stats().handledRequests === 1);
  const reply = await client.request('fast', noBytes, undefined, { timeoutMs });
  assert.equal(reply.payload.toString(), 'fast');
  // A client that never connects times out too (a routable but silent address is not available here; an unused port
  // refuses, which is UNAVAILABLE).
  const nobody = new MessengerClient({ address: '127.0.0.1:1' });
  await assert.rejects(nobody.request('x', noBytes, undefined, { timeoutMs }), isCode('UNAVAILABLE'));
  nobody.close();
});

test('messenger: a server that goes away fails in-flight requests with UNAVAILABLE; the client reconnects to its successor', async (t) => {
  const held = gate();
  const first = new MessengerServer({ address: '127.0.0.1:0', stopGraceMs: 0 }).onRequest(async () => {
    await held.promise;
    return {};
  });
  await first.start();
  const port = first.port;
  const client = new MessengerClient({ address: `127.0.0.1:${port}` });
  t.after(() => client.close());
  const inflight = Array.from({ length: 5 }, () => client.request('hang', noBytes, undefined, { timeoutMs }));
  await until('the server has all five', () => first.stats().connections[0]?.inflightRequests === 5);
  await first.stop();
  for (const request of inflight) await assert.rejects(request, isCode('UNAVAILABLE'));
  held.open();

  // Nobody listening: queued requests fail with UNAVAILABLE instead of waiting for their timeout.
  await assert.rejects(client.request('x', noBytes, undefined, { timeoutMs }), isCode('UNAVAILABLE'));

  const second = await startServer(t, echo, { address: `127.0.0.1:${port}` });
  const reply = await client.request('echo', noBytes, Buffer.from('again'), { timeoutMs });
  assert.equal(reply.payload.toString(), 'again');
  assert.ok(client.stats().connects >= 2);
  assert.equal(second.stats().connections.length, 1);

  // A connection cut from the server side (as by a crash) is the same as a stop.
  const third = new MessengerServer({ address: '127.0.0.1:0', stopGraceMs: 0 }).onRequest(() => new Promise(() => {}));
  await third.start();
  const thirdClient = new MessengerClient({ address: `127.0.0.1:${third.port}` });
  const hanging = thirdClient.request('hang', noBytes, undefined, { timeoutMs });
  await until('the request is running', () => third.stats().connections[0]?.inflightRequests === 1);
  await third.stop();
  await assert.rejects(hanging, isCode('UNAVAILABLE'));
  thirdClient.close();
});

test('messenger: stop lets running handlers answer within the grace; a closed client fails its calls with SHUTTING_DOWN', async (t) => {
  const held = gate();
  const server = new MessengerServer({ address: '127.0.0.1:0', stopGraceMs: 5000 }).onRequest(async (request) => {
    await held.promise;
    return { payload: request.payload };
  });
  await server.start();
  const client = clientFor(t, server);
  const running = client.request('r', noBytes, Buffer.from('answered'), { timeoutMs });
  await until('the handler runs', () => server.stats().connections[0]?.inflightRequests === 1);
  const stopped = server.stop();
  held.open();
  assert.equal((await running).payload.toString(), 'answered');
  await stopped;

  const other = await startServer(t, () => new Promise(() => {}));
  const closing = clientFor(t, other);
  const pending = closing.request('r', noBytes, undefined, { timeoutMs });
  await until('the request is on the wire', () => closing.stats().inflightRequests === 1);
  closing.close();
  await assert.rejects(pending, isCode('SHUTTING_DOWN'));
  await assert.rejects(closing.request('r', noBytes, undefined, { timeoutMs }), isCode('SHUTTING_DOWN'));
});

test('messenger: hostile bytes close only the offending connection; the server keeps serving the others', async (t) => {
  const random = seededRandom(t);
  const server = await startServer(t, echo, { payloadBytesMax: 1024 * 1024, idleTimeoutMs: 200 });
  const good = clientFor(t, server);
  const check = async (what: string) => {
    const reply = await good.request('echo', noBytes, Buffer.from(what), { timeoutMs });
    assert.equal(reply.payload.toString(), what);
  };
  await check('before');

  const badPrefix = (headerBytes: number, payloadBytes: number, version = 1, flags = 0) => {
    const b = Buffer.alloc(12);
    b.set([0x53, 0x4d, version, flags]);
    b.writeUInt32BE(headerBytes, 4);
    b.writeUInt32BE(payloadBytes, 8);
    return b;
  };
  const validHead = frame({})[0] as Buffer;
  const hostile: [string, Buffer[]][] = [
    ['random garbage', [random.bytes(4096)]],
    ['an HTTP request', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]],
    ['huge declared header', [badPrefix(0xffff_ffff, 0)]],
    ['header over the limit', [badPrefix(64 * 1024 + 1, 0), Buffer.alloc(64 * 1024 + 1)]],
    ['unknown version', [badPrefix(2, 0, 9), Buffer.from([0x10, 0x01])]],
    ['unknown flags', [badPrefix(2, 0, 1, 0x80), Buffer.from([0x10, 0x01])]],
    ['undecodable header', [badPrefix(6, 0), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])]],
    ['header with no kind', [badPrefix(2, 0), Buffer.from([0x08, 0x05])]],
    ['unknown kind', [badPrefix(2, 0), Buffer.from([0x10, 0x09])]],
    ['a response sent to a server', frame({ kind: 'response' })],
    ['a valid frame then garbage', [...frame({}, Buffer.from('ok')), random.bytes(64)]],
  ];
  for (const [what, bytes] of hostile) {
    const errorsBefore = server.stats().protocolErrors;
    const peer = await rawPeer(server.port);
    for (const b of bytes) peer.socket.write(b);
    await until(`${what}: connection closed`, peer.closed);
    assert.equal(server.stats().protocolErrors, errorsBefore + 1, `${what}: closed as a protocol error`);
    await check(`after ${what}`);
  }

  // Truncated frames and a half-open peer: a prefix, part of a header, or part of a payload, then silence (closed by
  // the idle timeout) or then a FIN (closed at once).
  const truncated: [string, Buffer][] = [
    ['half a prefix', validHead.subarray(0, 5)],
    ['prefix and part of the header', validHead.subarray(0, validHead.length - 1)],
    ['part of a payload', Buffer.concat([head({}, 100), Buffer.alloc(10)])],
  ];
  for (const [what, bytes] of truncated) {
    for (const fin of [false, true]) {
      const peer = await rawPeer(server.port);
      peer.socket.write(bytes);
      if (fin) peer.socket.end();
      await until(`${what} (${fin ? 'FIN' : 'silence'}): connection closed`, peer.closed);
      await check(`after ${what}`);
    }
  }

  // A payload over the limit is skipped unread and answered TOO_LARGE; the connection goes on.
  const peer = await rawPeer(server.port);
  const big = 2 * 1024 * 1024;
  peer.socket.write(head({ id: 7 }, big));
  peer.socket.write(Buffer.alloc(big));
  for (const b of frame({ id: 8 }, Buffer.from('still here'))) peer.socket.write(b);
  await until('two replies', () => parseAll(peer.received()).length === 2);
  const [tooLarge, fine] = parseAll(peer.received());
  assert.deepEqual([tooLarge?.header.id, tooLarge?.header.errorCode], [7, 'TOO_LARGE']);
  assert.deepEqual([fine?.header.id, fine?.payload?.toString()], [8, 'still here']);
  assert.equal(peer.closed(), false);
  peer.socket.destroy();

  assert.equal(server.stats().protocolErrors, hostile.length);
  await check('at the end');
});

test('messenger: a client with more requests than its in-flight bound queues them and completes all; past the queue, BUSY', async (t) => {
  let running = 0;
  let runningMax = 0;
  const server = await startServer(t, async (request) => {
    running++;
    runningMax = Math.max(runningMax, running);
    await new Promise((resolve) => setImmediate(resolve));
    running--;
    return { payload: request.payload };
  });
  const client = clientFor(t, server, { inflightRequestsMax: 4 });
  const replies = await Promise.all(
    Array.from({ length: 300 }, (_, i) => client.request('q', noBytes, Buffer.from(String(i)), { timeoutMs })),
  );
  replies.forEach((reply, i) => assert.equal(reply.payload.toString(), String(i)));
  assert.ok(runningMax <= 4, `server saw ${runningMax} at once`);

  const held = gate();
  const blocked = await startServer(t, async (request) => {
    if (request.op === 'q') await held.promise;
    return {};
  });
  const small = clientFor(t, blocked, { inflightRequestsMax: 2, queuedRequestsMax: 3 });
  // Connected first: until then every request waits in the queue.
  await small.request('warm', noBytes, undefined, { timeoutMs });
  const accepted = Array.from({ length: 5 }, () => small.request('q', noBytes, undefined, { timeoutMs }));
  await assert.rejects(small.request('q', noBytes, undefined, { timeoutMs }), isCode('BUSY'));
  await until('two requests on the wire', () => small.stats().inflightRequests === 2);
  assert.equal(small.stats().queuedRequests, 3);
  held.open();
  await Promise.all(accepted);
});

test('messenger: the server stops reading a connection at its in-flight bound and resumes when handlers finish', async (t) => {
  const held = gate();
  let started = 0;
  const server = await startServer(
    t,
    async () => {
      started++;
      await held.promise;
      return {};
    },
    { inflightRequestsMax: 3 },
  );
  const client = clientFor(t, server, { inflightRequestsMax: 50 });
  const requests = Array.from({ length: 20 }, () => client.request('q', noBytes, Buffer.alloc(1000), { timeoutMs }));
  await until('the server pauses the connection', () => server.stats().connections[0]?.pausedFor === 'inflight');
  await until('the client has sent all 20', () => client.stats().inflightRequests === 20);
  assert.equal(started, 3);
  assert.equal(server.stats().connections[0]?.inflightRequests, 3);
  held.open();
  await Promise.all(requests);
  assert.equal(started, 20);
  assert.equal(server.stats().connections[0]?.pausedFor, undefined);
  assert.equal(server.stats().inflightPayloadBytes, 0);
});

test('messenger: the server-wide payload budget pauses reading until handlers release their bytes', async (t) => {
  const held = gate();
  let started = 0;
  const server = await startServer(
    t,
    async () => {
      started++;
      await held.promise;
      return {};
    },
    { inflightPayloadBytesMax: 100_000 },
  );
  const a = clientFor(t, server);
  const b = clientFor(t, server);
  const requests = [a, b, a, b].map((c) => c.request('q', noBytes, Buffer.alloc(60_000), { timeoutMs }));
  await until('both connections are paused for the budget', () => {
    const paused = server.stats().connections.map((c) => c.pausedFor);
    return paused.length === 2 && paused.every((p) => p === 'budget');
  });
  assert.equal(started, 2);
  held.open();
  await Promise.all(requests);
  assert.equal(started, 4);
});

test('messenger: a peer that does not read its replies makes the server stop reading it, not buffer without bound', async (t) => {
  const replyBytes = 1024 * 1024;
  const inflightRequestsMax = 4;
  const server = await startServer(t, async () => ({ payload: Buffer.alloc(replyBytes, 7) }), { inflightRequestsMax });
  const peer = await rawPeer(server.port);
  peer.socket.pause();
  const requests = 300;
  for (let id = 1; id <= requests; id++) for (const b of frame({ id, op: 'big' })) peer.socket.write(b);
  await until('the server stops reading for write backpressure', () => server.stats().connections[0]?.pausedFor === 'write');
  const stats = server.stats();
  const connection = stats.connections[0];
  assert.ok(stats.handledRequests < requests, `handled ${stats.handledRequests} of ${requests}`);
  assert.ok(
    (connection?.bufferedWriteBytes ?? 0) <= (inflightRequestsMax + 1) * (replyBytes + 64),
    `buffered ${connection?.bufferedWriteBytes} bytes of replies`,
  );
  // Reading again releases everything.
  let replies = 0;
  const parser = new FrameParser({ headerBytesMax: 64 * 1024, payloadBytesMax: 2 * replyBytes });
  peer.socket.removeAllListeners('data');
  peer.socket.on('data', (chunk: Buffer) => {
    parser.push(chunk);
    while (parser.next() !== undefined) replies++;
  });
  peer.socket.resume();
  await until('every reply arrives', () => replies === requests);
  peer.socket.destroy();
});

test('messenger: a payload forwarded to a slow peer stays intact after its handler gave up on it (pooled buffers are held until written)', async (t) => {
  // More than loopback's socket buffers hold, so most of the forwarded frame is still queued when the handler returns.
  const bytes = 32 * 1024 * 1024;
  const accepted: net.Socket[] = [];
  const slow = net.createServer({ pauseOnConnect: true }, (socket) => accepted.push(socket));
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of accepted) socket.destroy();
    slow.close();
  });
  const forwarder = new MessengerClient({ address: `127.0.0.1:${(slow.address() as net.AddressInfo).port}` });
  t.after(() => forwarder.close());
  let forwardFailed = false;
  const server = await startServer(t, async (request) => {
    if (request.op === 'forward') {
      await forwarder.request('copy', noBytes, request.payload, { timeoutMs: 300 }).catch(() => (forwardFailed = true));
    }
    return {};
  });
  const client = clientFor(t, server);
  await client.request('forward', noBytes, Buffer.alloc(bytes, 0xaa), { timeoutMs });
  assert.ok(forwardFailed, 'the forward should have timed out with its bytes still queued');
  // Received while the forward is still being written: had the first handler's buffer gone back to the pool when
  // the handler returned, this payload would be read into it.
  await client.request('keep', noBytes, Buffer.alloc(bytes, 0xbb), { timeoutMs });
  const peer = accepted[0];
  assert.ok(peer, 'the forwarder connected');
  const parser = new FrameParser({ headerBytesMax: 64 * 1024, payloadBytesMax: 2 * bytes });
  let forwarded: Buffer | undefined;
  peer.on('data', (chunk: Buffer) => {
    parser.push(chunk);
    for (let f = parser.next(); f !== undefined; f = parser.next()) if (f.header.op === 'copy') forwarded = f.payload;
  });
  peer.resume();
  await until('the forwarded frame arrives whole', () => forwarded !== undefined);
  assert.equal(forwarded?.length, bytes);
  assert.equal(forwarded?.indexOf(0xbb), -1, 'the forwarded payload was overwritten by a later request');
  assert.ok(forwarded?.every((b) => b === 0xaa));
});

test('messenger: a queued pooled payload stays intact after its caller gave its buffer back', async (t) => {
  const bytes = 1024 * 1024;
  const first = gate();
  const received: Buffer[] = [];
  const server = await startServer(t, async (request) => {
    if (request.op === 'first') await first.promise;
    else received.push(Buffer.from(request.payload));
    return {};
  });
  const client = clientFor(t, server, { inflightRequestsMax: 1 });
  const busy = client.request('first', noBytes, undefined, { timeoutMs });
  await until('the first request occupies the only slot', () => client.stats().inflightRequests === 1);
  const payload = bufferPool.acquire(bytes).fill(0xaa);
  const queued = client.request('second', noBytes, payload, { timeoutMs });
  assert.equal(client.stats().queuedRequests, 1);
  // The caller is done with its buffer; had the client not held it, the next acquire of that size would get it.
  bufferPool.release(payload);
  const other = bufferPool.acquire(bytes).fill(0xbb);
  first.open();
  await Promise.all([busy, queued]);
  assert.equal(received.length, 1);
  assert.equal(received[0]?.indexOf(0xbb), -1, 'the queued payload was overwritten');
  bufferPool.release(other);
});

test('messenger: one-way messages reach the handler and get no reply', async (t) => {
  const seen: string[] = [];
  const server = await startServer(t, async (request) => {
    seen.push(`${request.op}:${request.oneWay}:${request.payload.toString()}`);
    if (request.payload.toString() === 'fail') throw new StorageError('BUSY', 'ignored');
    return { payload: Buffer.from('nobody reads this') };
  });
  const client = clientFor(t, server);
  await client.notify('ping', noBytes, Buffer.from('fail'), { timeoutMs });
  await client.notify('ping', noBytes, Buffer.from('a'), { timeoutMs });
  const reply = await client.request('req', noBytes, Buffer.from('b'), { timeoutMs });
  assert.equal(reply.payload.toString(), 'nobody reads this');
  assert.deepEqual(seen, ['ping:true:fail', 'ping:true:a', 'req:false:b']);
});

test('messenger: the handshake hook runs before any request; without it, or failing it, requests get AUTH_FAILED', async (t) => {
  const server = await startServer(t, echo, {
    handshake: () => {
      let round = 0;
      return {
        async step(message) {
          round++;
          if (round === 1) return { done: false, payload: Buffer.from('challenge') };
          if (message.payload.toString() !== 'proof of challenge') throw new StorageError('AUTH_FAILED', 'bad proof');
          return { done: true };
        },
      };
    },
  });
  const address = `127.0.0.1:${server.port}`;
  const prove = (answer: string) => async (exchange: (h: Uint8Array, p?: Uint8Array) => Promise<{ payload: Buffer }>) => {
    const challenge = await exchange(noBytes, Buffer.from('hello'));
    await exchange(noBytes, Buffer.from(`${answer} of ${challenge.payload.toString()}`));
  };
  const good = new MessengerClient({ address, handshake: prove('proof') });
  const wrong = new MessengerClient({ address, handshake: prove('guess') });
  const none = new MessengerClient({ address });
  t.after(() => [good, wrong, none].forEach((c) => c.close()));
  assert.equal((await good.request('echo', noBytes, Buffer.from('in'), { timeoutMs })).payload.toString(), 'in');
  await assert.rejects(wrong.request('echo', noBytes, Buffer.from('x'), { timeoutMs }), isCode('AUTH_FAILED'));
  await assert.rejects(none.request('echo', noBytes, Buffer.from('x'), { timeoutMs }), isCode('AUTH_FAILED'));
  assert.equal((await good.request('echo', noBytes, Buffer.from('still'), { timeoutMs })).payload.toString(), 'still');
});

test('messenger: oversized requests fail at the client; the pool keeps one client per address within its bound', async (t) => {
  const server = await startServer(t, echo);
  const limited = clientFor(t, server, { payloadBytesMax: 10, headerBytesMax: 100 });
  await assert.rejects(limited.request('x', noBytes, Buffer.alloc(11), { timeoutMs }), isCode('TOO_LARGE'));
  await assert.rejects(limited.request('x', Buffer.alloc(100), undefined, { timeoutMs }), isCode('TOO_LARGE'));
  assert.equal(limited.stats().connects, 0);

  const other = await startServer(t, echo);
  const pool = new MessengerPool({ peersMax: 1 });
  t.after(() => pool.close());
  const one = `127.0.0.1:${server.port}`;
  const two = `127.0.0.1:${other.port}`;
  assert.equal((await pool.request(one, 'e', noBytes, Buffer.from('1'), { timeoutMs })).payload.toString(), '1');
  assert.equal(pool.client(one), pool.client(one));
  assert.equal((await pool.request(two, 'e', noBytes, Buffer.from('2'), { timeoutMs })).payload.toString(), '2');
  assert.equal(pool.size, 1);
  await until('the evicted connection is gone', () => server.stats().connections.length === 0);
});

/**
 * The load generator's raw GET client (benchmarks/lib/s3-raw-get.ts) against a real HTTP server on 127.0.0.1: bodies
 * counted across reads and keep-alive reuse, error bodies kept, the signature a SigV4 server accepts, and what it
 * refuses to read (chunked bodies, no Content-Length, bytes past the length) failing the request, not hanging.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { RawGetter, parseResponseHead } from '../../../benchmarks/lib/s3-raw-get.js';
import { verifyRequest } from '../../../gateway/s3/sigv4.js';

const accessKey = 'AKIDRAWGETTEST';
const secretKey = 'raw-get-secret';
const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
let port = 0;
let connections = 0;
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = req.url ?? '';
  if (url === '/big') {
    // Written in pieces, so the body arrives over many reads.
    res.writeHead(200, { 'content-length': big.length });
    for (let at = 0; at < big.length; at += 100_000) res.write(big.subarray(at, at + 100_000));
    res.end();
  } else if (url === '/missing') {
    const body = '<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>';
    res.writeHead(404, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } else if (url === '/chunked') {
    res.writeHead(200, { 'transfer-encoding': 'chunked' });
    res.end('abc');
  } else if (url === '/signed') {
    let status = 200;
    try {
      verifyRequest({ method: 'GET', rawPath: '/signed', rawQuery: '', headers: req.headers }, (key) => (key === accessKey ? secretKey : undefined), Date.now());
    } catch {
      status = 403;
    }
    res.writeHead(status, { 'content-length': 2 });
    res.end('ok');
  } else {
    res.writeHead(200, { 'content-length': 5 });
    res.end('hello');
  }
});
server.on('connection', () => connections++);

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const getter = () => new RawGetter({ endpoint: `http://127.0.0.1:${port}`, accessKey, secretKey, region: 'us-east-1', requestTimeoutMs: 5000 });

test('a body over many reads is counted whole, and the socket is reused for the next request', async () => {
  const g = getter();
  try {
    const before = connections;
    assert.deepEqual(await g.get('/big'), { status: 200, length: big.length, text: '' });
    assert.deepEqual(await g.get('/small'), { status: 200, length: 5, text: '' });
    assert.equal(connections - before, 1);
    const both = await Promise.all([g.get('/big'), g.get('/big')]);
    assert.deepEqual(both.map((r) => r.length), [big.length, big.length]);
  } finally {
    g.close();
  }
});

test('an error status keeps its body; the request is signed so that a SigV4 server accepts it', async () => {
  const g = getter();
  try {
    const missing = await g.get('/missing');
    assert.equal(missing.status, 404);
    assert.match(missing.text, /NoSuchKey/);
    assert.equal((await g.get('/signed')).status, 200);
  } finally {
    g.close();
  }
});

test('a chunked body fails the request with a clear error', async () => {
  const g = getter();
  try {
    await assert.rejects(g.get('/chunked'), /chunked response body is not read by this client/);
    // The next request gets a fresh connection.
    assert.equal((await g.get('/small')).length, 5);
  } finally {
    g.close();
  }
});

test('bytes past Content-Length, or a server that closes mid-body, fail the request', async () => {
  const liar = net.createServer((socket) => {
    socket.once('data', (request) => {
      if (request.toString().startsWith('GET /extra ')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcdef');
      else socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    });
  });
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
  const g = new RawGetter({ endpoint: `http://127.0.0.1:${(liar.address() as AddressInfo).port}`, accessKey, secretKey, region: 'us-east-1' });
  try {
    await assert.rejects(g.get('/extra'), /past the response's Content-Length/);
    await assert.rejects(g.get('/short'), /closed by the server/);
  } finally {
    g.close();
    await new Promise((resolve) => liar.close(resolve));
  }
});

test('response heads: status, length and connection; no length only where HTTP allows none', () => {
  assert.deepEqual(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive'), { status: 200, length: 12, close: false });
  assert.deepEqual(parseResponseHead('HTTP/1.1 204 No Content'), { status: 204, length: 0, close: false });
  assert.deepEqual(parseResponseHead('HTTP/1.0 200 OK\r\ncontent-length: 1'), { status: 200, length: 1, close: true });
  assert.throws(() => parseResponseHead('HTTP/1.1 200 OK'), /without Content-Length/);
  assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: -4'), /bad Content-Length/);
  assert.throws(() => parseResponseHead('SSH-2.0-OpenSSH'), /not an HTTP\/1.x response/);
});

/**
 * The S3 HTTP server: parses the request (path-style or virtual-host addressing), authenticates it (SigV4 header,
 * presigned query, streaming chunks), routes it to a handler over the S3Store, and answers S3's headers and XML.
 * Every failure becomes an S3 error response from the one table in s3-error.ts; nothing a client sends can stop the
 * server. One access-log line per request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Clock, type Logger, type Startable } from '../../src/index.js';
import { IdSource } from './ids.js';
import { S3Error, toS3Error } from './s3-error.js';
import type { S3Store } from './store.js';
import { verifyRequest, type AuthResult, type SignedAuth } from './sigv4.js';
import { errorXml } from './xml.js';
import { handlers, type RequestContext } from './handlers.js';

/** How much of a refused request's unread body is read (and dropped) so that the client sees the answer, and for how long. */
const drainBytesMax = 8 * 1024 * 1024;
const drainMsMax = 5000;

export interface S3GatewayOptions {
  /** host:port to listen on (port 0: any free port). */
  listen: string;
  region: string;
  /** Virtual-host addressing: requests to `<bucket>.<domain>` address that bucket. */
  domain?: string;
  maxSkewMs: number;
}

export interface S3Gateway extends Startable {
  /** host:port it listens on, once started. */
  readonly address: string;
}

function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`listen address must be host:port: ${listen}`);
  return { host: listen.slice(0, i), port };
}

/** Bucket and key of a request: virtual-host style when the Host is `<bucket>.<domain>`, else path style. */
export function addressOf(rawPath: string, host: string | undefined, domain: string | undefined): { bucket: string; key: string } {
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new S3Error('InvalidRequest', 'The request path is not valid percent-encoding');
    }
  };
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  if (domain && hostname.endsWith(`.${domain}`)) {
    return { bucket: hostname.slice(0, -domain.length - 1), key: decode(rawPath.slice(1)) };
  }
  const path = rawPath.slice(1);
  const slash = path.indexOf('/');
  if (slash < 0) return { bucket: decode(path), key: '' };
  return { bucket: decode(path.slice(0, slash)), key: decode(path.slice(slash + 1)) };
}

export function createS3Gateway(options: S3GatewayOptions, deps: { store: S3Store; clock: Clock; logger: Logger }): S3Gateway {
  const { store, clock, logger } = deps;
  let server: Server | undefined;
  let address = '';
  const sockets = new Set<import('node:net').Socket>();

  async function authenticate(req: IncomingMessage, rawPath: string, rawQuery: string): Promise<{ auth: AuthResult; user?: string }> {
    const headers = req.headers;
    // The secret lookup is asynchronous (the keys live in the cluster): find the access key first, then verify.
    const credential = /Credential=([^/,\s]+)\//.exec(String(headers.authorization ?? ''))?.[1] ??
      new URLSearchParams(rawQuery).get('X-Amz-Credential')?.split('/')[0];
    const key = credential ? await store.lookupKey(credential) : undefined;
    const result = verifyRequest(
      { method: req.method ?? 'GET', rawPath, rawQuery, headers },
      (accessKey: string) => (key && key.accessKey === accessKey ? key.secretKey : undefined),
      clock.nowMs(),
      { maxSkewMs: options.maxSkewMs },
    );
    return key && !result.anonymous ? { auth: result, user: key.user } : { auth: result };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    if (!rawPath.startsWith('/')) throw new S3Error('InvalidRequest', 'The request path must start with /');
    const { bucket, key } = addressOf(rawPath, req.headers.host, options.domain);
    const { auth, user } = await authenticate(req, rawPath, rawQuery);
    if (auth.anonymous || !user) throw new S3Error('AccessDenied', 'Access Denied (anonymous requests are not allowed)');
    const ctx: RequestContext = {
      req,
      res,
      requestId,
      bucketName: bucket,
      key,
      query: new URLSearchParams(rawQuery),
      user,
      auth: auth as SignedAuth,
      store,
      clock,
      region: options.region,
    };
    await handlers.route(ctx);
  }

  function sendError(req: IncomingMessage, res: ServerResponse, requestId: string, error: S3Error): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = req.method === 'HEAD' || error.status === 304 ? '' : errorXml({
      code: error.code,
      message: error.message,
      resource: (req.url ?? '/').split('?')[0] ?? '/',
      requestId,
      details: error.details,
    });
    let answered = false;
    const answer = () => {
      if (answered) return;
      answered = true;
      if (res.destroyed) return;
      res.writeHead(error.status, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(body),
        'x-amz-request-id': requestId,
        'x-amz-id-2': requestId,
        ...(req.complete ? {} : { connection: 'close' }),
      });
      res.end(body);
      // A request whose body was not read: close the connection rather than read what may be gigabytes.
      // (The socket is null once the connection is gone, e.g. a client that hung up mid-body.)
      if (!req.complete) req.socket?.destroySoon?.();
    };
    const declared = Number(req.headers['content-length'] ?? 0);
    if (req.complete || req.destroyed || declared > drainBytesMax) {
      answer();
      return;
    }
    // The client is still sending a body we refused part-way (a bad chunk signature, say). Closing with its bytes
    // unread makes TCP reset the connection, and the client then loses this answer and sees a network error; so
    // read and drop the rest first, as long as it is small and comes quickly, then answer.
    let drained = 0;
    const timer = clock.setTimer(drainMsMax, () => done());
    const onData = (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > drainBytesMax) done();
    };
    const done = () => {
      timer.cancel();
      req.off('data', onData).off('end', done).off('close', done);
      answer();
    };
    req.on('data', onData).once('end', done).once('close', done);
    req.resume();
  }

  const requestIds = new IdSource();

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const requestId = requestIds.next().toUpperCase();
    const started = clock.monotonicMs();
    // Read now: once a failed request's connection is destroyed, req.socket is null, and reading it in the log line
    // below threw an unhandled rejection that killed the gateway (any client could do it with a bad chunk signature).
    const remote = req.socket?.remoteAddress;
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', requestId);
    res.setHeader('server', 'Shoal');
    req.on('error', () => {}); // a client that goes away mid-body: the handler sees the stream end early
    handle(req, res, requestId)
      .catch((error: unknown) => {
        const s3 = toS3Error(error);
        if (s3.code === 'InternalError') logger.error('request failed', { requestId, method: req.method, url: req.url, error: String(error), stack: (error as Error)?.stack });
        sendError(req, res, requestId, s3);
      })
      .finally(() => {
        logger.info('request', {
          requestId,
          method: req.method,
          url: req.url,
          status: res.statusCode,
          ms: Math.round(clock.monotonicMs() - started),
          remote,
        });
      })
      .catch((error: unknown) => logger.error('request bookkeeping failed', { requestId, error: String(error) }));
  }

  return {
    get address() {
      return address;
    },
    async start() {
      const { host, port } = splitHostPort(options.listen);
      server = createServer({ requestTimeout: 0, headersTimeout: 60_000, maxHeaderSize: 64 * 1024 }, onRequest);
      server.keepAliveTimeout = 65_000;
      server.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      server.on('clientError', (_error, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        else socket.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        (server as Server).once('error', reject);
        (server as Server).listen(port, host, () => resolve());
      });
      const a = server.address();
      address = a && typeof a === 'object' ? `${host}:${a.port}` : options.listen;
    },
    async stop() {
      if (!server) return;
      const s = server;
      server = undefined;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeIdleConnections();
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, 2000).unref();
      });
    },
  };
}

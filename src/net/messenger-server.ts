/**
 * The server end of the data-plane messenger. Each accepted connection is parsed frame by frame and each request
 * handed to the one handler; responses go back as handlers finish, in any order, matched by id.
 *
 * Nothing a peer sends can crash the server or make it hold unbounded memory:
 * - a frame that cannot be valid (bad magic, version, flags or kind, undecodable or oversized header) closes that
 *   connection only; an oversized payload is skipped unread and its request answered with TOO_LARGE;
 * - reading from a connection stops (socket paused) while it has `inflightRequestsMax` handlers running, while its
 *   responses are backed up in the socket (a slow reader), or while the whole server's running handlers hold more
 *   than `inflightPayloadBytesMax` payload bytes; it resumes when the cause clears;
 * - a connection with nothing in flight and no traffic for `idleTimeoutMs` (idle, or half-open mid-frame) is closed;
 * - handler errors become error responses; unknown ones are INTERNAL and logged.
 */
import * as net from 'node:net';
import {
  StorageError,
  bufferPool,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Startable,
} from '../common/index.js';
import type { FrameHeader } from '../protocol/index.js';
import { FrameParser, FrameWriter, type FrameLimits, type ParsedFrame } from './messenger-frame.js';
import { readAccepted } from './socket-reader.js';
import {
  errorFields,
  messengerDefaults,
  parseAddress,
  peerName,
  type MessengerResponse,
  type RequestHandler,
  type ServerHandshakeSession,
} from './messenger-types.js';

export interface MessengerServerOptions {
  /** host:port; port 0 picks a free one (see `port` after start). */
  address: string;
  logger?: Logger;
  clock?: Clock;
  headerBytesMax?: number;
  payloadBytesMax?: number;
  /** Handlers running at once for one connection; at the bound the server stops reading it. */
  inflightRequestsMax?: number;
  /** Payload bytes held by running handlers, whole server; past it no connection is read. */
  inflightPayloadBytesMax?: number;
  connectionsMax?: number;
  idleTimeoutMs?: number;
  /** How long `stop` lets running handlers finish before cutting their connections. */
  stopGraceMs?: number;
  /** When set, each connection must complete a handshake (one session per connection) before any request. */
  handshake?: (peer: string) => ServerHandshakeSession;
}

/** Why reading from a connection is paused. */
export type PauseReason = 'inflight' | 'write' | 'budget' | 'handshake';

export interface ServerConnectionStats {
  peer: string;
  inflightRequests: number;
  inflightPayloadBytes: number;
  /** Set while the server is not reading this connection. */
  pausedFor: PauseReason | undefined;
  /** Bytes received and not yet handed to a handler. */
  bufferedReadBytes: number;
  /** Response bytes queued in the socket, not yet taken by the kernel. */
  bufferedWriteBytes: number;
  /** Whether the socket reads into buffers the parser picks (socket-reader.ts), not into fresh chunks. */
  readsInPlace: boolean;
}

export interface MessengerServerStats {
  connections: ServerConnectionStats[];
  inflightPayloadBytes: number;
  /** Requests handled (answered or failed) since start; one-way messages included. */
  handledRequests: number;
  /** Connections closed because of what the peer sent. */
  protocolErrors: number;
}

interface Settings extends FrameLimits {
  inflightRequestsMax: number;
  inflightPayloadBytesMax: number;
  idleTimeoutMs: number;
}

const noBytes = new Uint8Array(0);

export class MessengerServer implements Startable {
  readonly #options: MessengerServerOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #settings: Settings;
  readonly #connections = new Set<ServerConnection>();
  #server: net.Server | undefined;
  #handler: RequestHandler = async (request) => {
    throw new StorageError('INVALID_ARGUMENT', `no handler for op ${request.op}`);
  };
  #port = 0;
  #stopping = false;
  #inflightPayloadBytes = 0;
  #handledRequests = 0;
  #protocolErrors = 0;

  constructor(options: MessengerServerOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#settings = {
      headerBytesMax: options.headerBytesMax ?? messengerDefaults.headerBytesMax,
      payloadBytesMax: options.payloadBytesMax ?? messengerDefaults.payloadBytesMax,
      inflightRequestsMax: options.inflightRequestsMax ?? messengerDefaults.serverInflightRequestsMax,
      inflightPayloadBytesMax: options.inflightPayloadBytesMax ?? messengerDefaults.serverInflightPayloadBytesMax,
      idleTimeoutMs: options.idleTimeoutMs ?? messengerDefaults.serverIdleTimeoutMs,
    };
    if (this.#settings.inflightRequestsMax < 1) throw new TypeError('inflightRequestsMax must be at least 1');
  }

  get port(): number {
    return this.#port;
  }

  /** The one handler for every op; it dispatches on `request.op`. Replaces any earlier handler. */
  onRequest(handler: RequestHandler): this {
    this.#handler = handler;
    return this;
  }

  stats(): MessengerServerStats {
    return {
      connections: [...this.#connections].map((c) => c.stats()),
      inflightPayloadBytes: this.#inflightPayloadBytes,
      handledRequests: this.#handledRequests,
      protocolErrors: this.#protocolErrors,
    };
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const { host, port } = parseAddress(this.#options.address);
    this.#stopping = false;
    // Half-open allowed: a peer that sends its last request and then shuts down its side still gets the answers.
    const server = net.createServer({ noDelay: true, keepAlive: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      this.#accept(socket),
    );
    server.maxConnections = this.#options.connectionsMax ?? messengerDefaults.connectionsMax;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) =>
        reject(new StorageError('UNAVAILABLE', `cannot listen on ${this.#options.address}: ${error.message}`));
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // Accept errors (EMFILE and the like) must not take the daemon down; each is logged and serving goes on.
    server.on('error', (error) => this.#logger.error('messenger server error', { error: String(error) }));
    const bound = server.address();
    this.#port = typeof bound === 'object' && bound ? bound.port : port;
    this.#server = server;
  }

  /**
   * Stops accepting connections; new requests on open ones are refused with SHUTTING_DOWN; running handlers get
   * `stopGraceMs` to finish and have their responses flushed, then every connection is closed.
   */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of this.#connections) connection.closeWhenIdle();
    const graceMs = this.#options.stopGraceMs ?? messengerDefaults.stopGraceMs;
    const timer = this.#clock.setTimer(graceMs, () => {
      for (const connection of this.#connections) connection.destroy();
    });
    await closed;
    timer.cancel();
  }

  #accept(socket: net.Socket): void {
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    const connection = new ServerConnection(socket, this.#settings, this.#logger, {
      handler: (request) => this.#handler(request),
      handshake: this.#options.handshake,
      stopping: () => this.#stopping,
      budgetExhausted: () => this.#inflightPayloadBytes >= this.#settings.inflightPayloadBytesMax,
      reserve: (bytes) => {
        this.#inflightPayloadBytes += bytes;
      },
      release: (bytes) => this.#release(bytes),
      handled: () => {
        this.#handledRequests++;
      },
      protocolError: () => {
        this.#protocolErrors++;
      },
      closed: () => this.#connections.delete(connection),
    });
    this.#connections.add(connection);
  }

  #release(bytes: number): void {
    const wasExhausted = this.#inflightPayloadBytes >= this.#settings.inflightPayloadBytesMax;
    this.#inflightPayloadBytes -= bytes;
    if (wasExhausted && this.#inflightPayloadBytes < this.#settings.inflightPayloadBytesMax) {
      for (const connection of this.#connections) connection.pump();
    }
  }
}

interface ConnectionHooks {
  handler: RequestHandler;
  handshake: ((peer: string) => ServerHandshakeSession) | undefined;
  stopping(): boolean;
  budgetExhausted(): boolean;
  reserve(bytes: number): void;
  release(bytes: number): void;
  handled(): void;
  protocolError(): void;
  closed(): void;
}

class ServerConnection {
  readonly #socket: net.Socket;
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #hooks: ConnectionHooks;
  readonly #parser: FrameParser;
  readonly #writer: FrameWriter;
  readonly #peer: string;
  /** Present until the handshake completes (absent from the start when the server needs none). */
  #handshake: ServerHandshakeSession | undefined;
  #handshakeRunning = false;
  #inflightRequests = 0;
  #inflightPayloadBytes = 0;
  #pausedFor: PauseReason | undefined;
  #closeWhenIdle = false;
  #closed = false;
  #readsInPlace = false;

  constructor(socket: net.Socket, settings: Settings, logger: Logger, hooks: ConnectionHooks) {
    this.#socket = socket;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#peer = peerName(socket.remoteAddress, socket.remotePort);
    this.#logger = logger.child({ peer: this.#peer });
    this.#parser = new FrameParser(settings);
    this.#writer = new FrameWriter(socket);
    this.#handshake = hooks.handshake?.(this.#peer);
    socket.setNoDelay(true);
    socket.setTimeout(settings.idleTimeoutMs);
    // Accepted paused (pauseOnConnect), so no byte is read before this decides where reads go.
    this.#readsInPlace = readAccepted(socket, this.#parser, () => {
      if (!this.#closed) this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('timeout', () => {
      if (this.#inflightRequests > 0 && !this.#closed) return;
      this.#logger.debug('closing idle messenger connection', { midFrame: this.#parser.midFrame });
      socket.destroy();
    });
    socket.on('end', () => {
      // The peer sent everything it will send; answer what is running, then close our side.
      this.closeWhenIdle();
    });
    socket.on('error', (error) => this.#logger.debug('messenger connection error', { error: error.message }));
    socket.on('close', () => {
      this.#closed = true;
      this.#hooks.closed();
    });
  }

  stats(): ServerConnectionStats {
    return {
      peer: this.#peer,
      inflightRequests: this.#inflightRequests,
      inflightPayloadBytes: this.#inflightPayloadBytes,
      pausedFor: this.#pausedFor,
      bufferedReadBytes: this.#parser.bufferedBytes + this.#socket.readableLength,
      bufferedWriteBytes: this.#socket.writableLength,
      readsInPlace: this.#readsInPlace,
    };
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Ends the connection once its running handlers have answered (now if none are running). */
  closeWhenIdle(): void {
    this.#closeWhenIdle = true;
    if (this.#inflightRequests === 0 && !this.#closed) this.#hangUp();
  }

  /** Hands out parsed frames while nothing blocks, then pauses or resumes the socket to match. */
  pump(): void {
    while (!this.#closed) {
      const blocked = this.#blockedBy();
      if (blocked !== undefined) {
        this.#pausedFor = blocked;
        if (!this.#socket.isPaused()) this.#socket.pause();
        return;
      }
      let frame: ParsedFrame | undefined;
      try {
        frame = this.#parser.next();
      } catch (error) {
        this.#protocolViolation(error);
        return;
      }
      if (frame === undefined) break;
      this.#dispatch(frame);
    }
    if (this.#pausedFor !== undefined && !this.#closed) {
      this.#pausedFor = undefined;
      this.#socket.resume();
    }
  }

  #blockedBy(): PauseReason | undefined {
    if (this.#handshakeRunning) return 'handshake';
    if (this.#inflightRequests >= this.#settings.inflightRequestsMax) return 'inflight';
    if (this.#socket.writableNeedDrain) return 'write';
    if (this.#hooks.budgetExhausted()) return 'budget';
    return undefined;
  }

  /**
   * Sends what is queued (an error reply), then closes; nothing more is read. A peer that never closes its side is
   * cut off by the idle timeout.
   */
  #hangUp(): void {
    this.#closed = true;
    this.#socket.end();
  }

  #protocolViolation(error: unknown): void {
    this.#hooks.protocolError();
    this.#logger.warn('closing messenger connection: bad frame', { error: String(error) });
    this.#closed = true;
    this.#socket.destroy();
  }

  #dispatch(frame: ParsedFrame): void {
    const { header } = frame;
    switch (header.kind) {
      case 'response':
        this.#protocolViolation(new StorageError('CORRUPT_DATA', `unexpected response frame (id ${header.id})`));
        return;
      case 'handshake':
        this.#dispatchHandshake(frame);
        return;
      case 'request':
      case 'oneWay':
        this.#dispatchRequest(frame);
        return;
    }
  }

  #dispatchRequest(frame: ParsedFrame): void {
    const { header } = frame;
    const oneWay = header.kind === 'oneWay';
    if (this.#handshake !== undefined) {
      this.#hooks.protocolError();
      this.#logger.warn('closing messenger connection: request before the handshake', { op: header.op });
      if (!oneWay) this.#respondError(header, new StorageError('AUTH_FAILED', 'handshake required before requests'));
      this.#hangUp();
      return;
    }
    if (frame.payload === undefined) {
      const error = new StorageError(
        'TOO_LARGE',
        `${header.op}: payload of ${frame.discardedPayloadBytes} bytes exceeds ${this.#settings.payloadBytesMax}`,
      );
      this.#logger.warn('messenger request payload too large', { op: header.op, bytes: frame.discardedPayloadBytes });
      if (!oneWay) this.#respondError(header, error);
      this.#hooks.handled();
      return;
    }
    if (this.#closeWhenIdle || this.#hooks.stopping()) {
      if (!oneWay) this.#respondError(header, new StorageError('SHUTTING_DOWN', 'server is stopping'));
      return;
    }
    const payloadBytes = frame.payload.length;
    this.#inflightRequests++;
    this.#inflightPayloadBytes += payloadBytes;
    this.#hooks.reserve(payloadBytes);
    let result: Promise<MessengerResponse | void>;
    try {
      result = this.#hooks.handler({
        op: header.op,
        header: header.opHeader,
        payload: frame.payload,
        peer: this.#peer,
        oneWay,
      });
    } catch (error) {
      result = Promise.reject(error);
    }
    const payload = frame.payload;
    result.then(
      (response) => this.#finish(header, payload, oneWay, response ?? undefined, undefined),
      (error: unknown) => this.#finish(header, payload, oneWay, undefined, error),
    );
  }

  #finish(
    request: FrameHeader,
    payload: Buffer,
    oneWay: boolean,
    response: MessengerResponse | undefined,
    error: unknown,
  ): void {
    const payloadBytes = payload.length;
    this.#inflightRequests--;
    this.#inflightPayloadBytes -= payloadBytes;
    this.#hooks.handled();
    if (error !== undefined) this.#logHandlerError(request.op, error, oneWay);
    if (!oneWay && !this.#closed) {
      if (error !== undefined) this.#respondError(request, error);
      else this.#respond(request, response);
    }
    // The handler is done with the request's payload (it may not keep it: see MessengerRequest) and hands over its
    // hold on a pooled response payload of its own; frames still being written keep their own holds.
    const responsePayload = response?.payload;
    if (responsePayload !== undefined && responsePayload.buffer !== payload.buffer) bufferPool.release(responsePayload);
    bufferPool.release(payload);
    // Released after the response is queued, so a waiting connection sees our write backpressure when it decides.
    this.#hooks.release(payloadBytes);
    if (this.#closed) return;
    if (this.#closeWhenIdle && this.#inflightRequests === 0) {
      this.#hangUp();
      return;
    }
    this.pump();
  }

  #logHandlerError(op: string, error: unknown, oneWay: boolean): void {
    if (error instanceof StorageError) {
      if (oneWay) this.#logger.debug('one-way message failed', { op, code: error.code, error: error.message });
      return;
    }
    this.#logger.error('internal error in messenger handler', { op, error: String(error) });
  }

  #respond(request: FrameHeader, response: MessengerResponse | undefined): void {
    const header = response?.header ?? noBytes;
    const payload = response?.payload;
    if (header.length > this.#settings.headerBytesMax - 64 || (payload?.length ?? 0) > this.#settings.payloadBytesMax) {
      const error = new StorageError('TOO_LARGE', `${request.op}: response exceeds the messenger's size limits`);
      this.#logger.error('messenger response too large', { op: request.op, headerBytes: header.length });
      this.#respondError(request, error);
      return;
    }
    this.#writer.write(
      { id: request.id, kind: 'response', op: '', errorCode: '', errorMessage: '', opHeader: header },
      payload,
    );
  }

  #respondError(request: FrameHeader, error: unknown): void {
    const fields = errorFields(error);
    this.#writer.write({ id: request.id, kind: 'response', op: '', opHeader: noBytes, ...fields }, undefined);
  }

  #dispatchHandshake(frame: ParsedFrame): void {
    const { header } = frame;
    const session = this.#handshake;
    if (session === undefined || frame.payload === undefined) {
      this.#hooks.protocolError();
      const error =
        frame.payload === undefined
          ? new StorageError('TOO_LARGE', 'handshake payload too large')
          : new StorageError('INVALID_ARGUMENT', 'no handshake expected on this connection');
      this.#logger.warn('closing messenger connection: unexpected handshake', { error: error.message });
      this.#respondError(header, error);
      this.#hangUp();
      return;
    }
    this.#handshakeRunning = true;
    let step: ReturnType<ServerHandshakeSession['step']>;
    try {
      step = session.step({ header: header.opHeader, payload: frame.payload });
    } catch (error) {
      step = Promise.reject(error);
    }
    step.then(
      (result) => {
        this.#handshakeRunning = false;
        if (this.#closed) return;
        if (result.done) this.#handshake = undefined;
        this.#respond(header, result);
        this.pump();
      },
      (error: unknown) => {
        this.#handshakeRunning = false;
        if (this.#closed) return;
        this.#hooks.protocolError();
        this.#logger.warn('messenger handshake failed', { error: String(error) });
        this.#respondError(header, error);
        this.#hangUp();
      },
    );
  }
}

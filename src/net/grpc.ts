/**
 * The control plane over gRPC (grpc-js), typed by the RpcDescriptors of src/protocol. Errors cross the wire as a gRPC
 * status plus the StorageError code in trailing metadata (`shoal-code`), and come back out as the same StorageError;
 * this file is the one table between the two. A request that does not decode is answered with CORRUPT_DATA: no
 * client input can reach a handler undecoded or crash the server.
 */
import * as grpc from '@grpc/grpc-js';
import {
  StorageError,
  isErrorCode,
  type ErrorCode,
  type Logger,
  type Startable,
  silentLogger,
} from '../common/index.js';
import type { RpcDescriptor, ServerStreamRpc, UnaryRpc } from '../protocol/index.js';

const codeKey = 'shoal-code';
export const maxMessageBytes = 64 * 1024 * 1024;

const statusFor: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  NOT_EMPTY: grpc.status.FAILED_PRECONDITION,
  PRECONDITION_FAILED: grpc.status.FAILED_PRECONDITION,
  STALE_EPOCH: grpc.status.FAILED_PRECONDITION,
  NOT_PRIMARY: grpc.status.FAILED_PRECONDITION,
  NOT_LEADER: grpc.status.UNAVAILABLE,
  NO_QUORUM: grpc.status.UNAVAILABLE,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  BUSY: grpc.status.RESOURCE_EXHAUSTED,
  INSUFFICIENT_REPLICAS: grpc.status.UNAVAILABLE,
  INSUFFICIENT_SHARDS: grpc.status.UNAVAILABLE,
  CHECKSUM_MISMATCH: grpc.status.DATA_LOSS,
  CORRUPT_DATA: grpc.status.INVALID_ARGUMENT,
  UNSUPPORTED_VERSION: grpc.status.UNIMPLEMENTED,
  AUTH_FAILED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  NO_SPACE: grpc.status.RESOURCE_EXHAUSTED,
  TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  SHUTTING_DOWN: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
};

function toServiceError(error: unknown, logger: Logger, path: string): Partial<grpc.ServiceError> {
  const storageError = StorageError.from(error);
  if (storageError.code === 'INTERNAL') logger.error('internal error in handler', { path, error: String(error) });
  const metadata = new grpc.Metadata();
  metadata.set(codeKey, storageError.code);
  return { code: statusFor[storageError.code], details: storageError.message, metadata };
}

/** Turns a grpc-js client error back into the StorageError the server raised (or the transport failure). */
export function fromServiceError(error: grpc.ServiceError, path: string): StorageError {
  const sent = error.metadata?.get(codeKey)[0];
  if (typeof sent === 'string' && isErrorCode(sent)) return new StorageError(sent, error.details, { cause: error });
  switch (error.code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return new StorageError('TIMEOUT', `${path}: deadline exceeded`, { cause: error });
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
      return new StorageError('UNAVAILABLE', `${path}: ${error.details || 'unavailable'}`, { cause: error });
    case grpc.status.RESOURCE_EXHAUSTED:
      return new StorageError('TOO_LARGE', `${path}: ${error.details}`, { cause: error });
    default:
      return new StorageError('INTERNAL', `${path}: ${error.details || error.message}`, { cause: error });
  }
}

type Decoded<T> = { ok: true; value: T } | { ok: false; error: unknown };

function methodDefinition<Req, Res>(descriptor: RpcDescriptor<Req, Res>): grpc.MethodDefinition<Decoded<Req>, Res> {
  return {
    path: descriptor.path,
    requestStream: false,
    responseStream: descriptor.kind === 'serverStream',
    requestSerialize: (value: Decoded<Req>) => {
      if (!value.ok) throw new TypeError('cannot serialize a failed decode');
      return Buffer.from(descriptor.request.encode(value.value));
    },
    requestDeserialize: (bytes: Buffer): Decoded<Req> => {
      try {
        return { ok: true, value: descriptor.request.decode(bytes) };
      } catch (error) {
        return { ok: false, error };
      }
    },
    responseSerialize: (value: Res) => Buffer.from(descriptor.response.encode(value)),
    responseDeserialize: (bytes: Buffer) => descriptor.response.decode(bytes),
  };
}

export interface CallContext {
  peer: string;
  deadlineMs?: number;
}

export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

export interface StreamSink<Res> {
  /** Queues a message; returns false when the client is slow (buffers are full) so the producer can back off. */
  write(message: Res): boolean;
  end(): void;
  fail(error: unknown): void;
  /** Called once when the client goes away or the call ends. */
  onClose(callback: () => void): void;
  readonly closed: boolean;
}

export type StreamHandler<Req, Res> = (request: Req, sink: StreamSink<Res>, context: CallContext) => void;

export interface RpcServerOptions {
  /** host:port; port 0 picks a free one (see `port` after start). */
  address: string;
  logger?: Logger;
}

export class RpcServer implements Startable {
  readonly #server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  });
  readonly #options: RpcServerOptions;
  readonly #logger: Logger;
  readonly #definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  readonly #implementation: grpc.UntypedServiceImplementation = {};
  #port = 0;
  #started = false;

  constructor(options: RpcServerOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  get port(): number {
    return this.#port;
  }

  unary<Req, Res>(descriptor: UnaryRpc<Req, Res>, handler: UnaryHandler<Req, Res>): this {
    const name = descriptor.path;
    this.#definition[name] = methodDefinition(descriptor) as unknown as grpc.MethodDefinition<unknown, unknown>;
    this.#implementation[name] = ((call: grpc.ServerUnaryCall<Decoded<Req>, Res>, callback: grpc.sendUnaryData<Res>) => {
      const decoded = call.request;
      if (!decoded.ok) {
        callback(toServiceError(decoded.error, this.#logger, name), null);
        return;
      }
      handler(decoded.value, { peer: call.getPeer() }).then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error, this.#logger, name), null),
      );
    }) as grpc.handleUnaryCall<Decoded<Req>, Res>;
    return this;
  }

  serverStream<Req, Res>(descriptor: ServerStreamRpc<Req, Res>, handler: StreamHandler<Req, Res>): this {
    const name = descriptor.path;
    this.#definition[name] = methodDefinition(descriptor) as unknown as grpc.MethodDefinition<unknown, unknown>;
    this.#implementation[name] = ((call: grpc.ServerWritableStream<Decoded<Req>, Res>) => {
      const decoded = call.request;
      let closed = false;
      const closeCallbacks: (() => void)[] = [];
      const close = () => {
        if (closed) return;
        closed = true;
        for (const callback of closeCallbacks) callback();
      };
      call.on('cancelled', close);
      call.on('close', close);
      call.on('error', close);
      const sink: StreamSink<Res> = {
        write: (message) => (closed ? false : call.write(message)),
        end: () => {
          if (!closed) call.end();
          close();
        },
        fail: (error) => {
          if (!closed) call.destroy(Object.assign(new Error(), toServiceError(error, this.#logger, name)));
          close();
        },
        onClose: (callback) => (closed ? callback() : closeCallbacks.push(callback)),
        get closed() {
          return closed;
        },
      };
      if (!decoded.ok) {
        sink.fail(decoded.error);
        return;
      }
      try {
        handler(decoded.value, sink, { peer: call.getPeer() });
      } catch (error) {
        sink.fail(error);
      }
    }) as grpc.handleServerStreamingCall<Decoded<Req>, Res>;
    return this;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#server.addService(this.#definition as grpc.ServiceDefinition, this.#implementation);
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(this.#options.address, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error
          ? reject(new StorageError('UNAVAILABLE', `cannot listen on ${this.#options.address}: ${error.message}`))
          : resolve(port),
      );
    });
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, 1000);
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

export interface CallOptions {
  timeoutMs: number;
}

export interface StreamHandlers<Res> {
  onMessage(message: Res): void;
  /** Called once when the stream ends for any reason; `error` is undefined for a clean end or a cancel. */
  onEnd(error?: StorageError): void;
}

/** A client for one server address; calls are typed by descriptor. One HTTP/2 channel, shared by all calls. */
export class RpcClient {
  readonly address: string;
  readonly #client: grpc.Client;

  constructor(address: string) {
    this.address = address;
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
      // Reconnect quickly after a monitor restarts; the defaults back off up to two minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    });
  }

  call<Req, Res>(descriptor: UnaryRpc<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    const definition = methodDefinition(descriptor);
    return new Promise<Res>((resolve, reject) => {
      this.#client.makeUnaryRequest<Decoded<Req>, Res>(
        descriptor.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        { ok: true, value: request },
        new grpc.Metadata(),
        { deadline: Date.now() + options.timeoutMs },
        (error, response) => {
          if (error) reject(fromServiceError(error, descriptor.path));
          else if (response === undefined) reject(new StorageError('INTERNAL', `${descriptor.path}: empty response`));
          else resolve(response);
        },
      );
    });
  }

  stream<Req, Res>(descriptor: ServerStreamRpc<Req, Res>, request: Req, handlers: StreamHandlers<Res>): { cancel(): void } {
    const definition = methodDefinition(descriptor);
    const call = this.#client.makeServerStreamRequest<Decoded<Req>, Res>(
      descriptor.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      { ok: true, value: request },
      new grpc.Metadata(),
      {},
    );
    let ended = false;
    const end = (error?: StorageError) => {
      if (ended) return;
      ended = true;
      handlers.onEnd(error);
    };
    call.on('data', (message: Res) => {
      if (!ended) handlers.onMessage(message);
    });
    call.on('error', (error: grpc.ServiceError) =>
      end(error.code === grpc.status.CANCELLED ? undefined : fromServiceError(error, descriptor.path)),
    );
    call.on('end', () => end());
    return { cancel: () => call.cancel() };
  }

  close(): void {
    this.#client.close();
  }
}

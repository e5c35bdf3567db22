/**
 * Typed descriptions of control-plane RPCs: a path plus a codec for each direction. src/net turns a descriptor into
 * a gRPC method; callers only ever see the typed request and response. Decoding failures become CORRUPT_DATA.
 */
import { decodeMessage } from './cluster-map.js';

export interface MessageCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export type RpcKind = 'unary' | 'serverStream';

export interface RpcDescriptor<Req, Res, K extends RpcKind = RpcKind> {
  readonly kind: K;
  /** gRPC path: `/package.Service/Method`. */
  readonly path: string;
  readonly request: MessageCodec<Req>;
  readonly response: MessageCodec<Res>;
}

export type UnaryRpc<Req, Res> = RpcDescriptor<Req, Res, 'unary'>;
export type ServerStreamRpc<Req, Res> = RpcDescriptor<Req, Res, 'serverStream'>;

interface GeneratedType<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
  name?: string;
}

/** A codec over a protobufjs-generated message type. */
export function protobufCodec<T>(type: GeneratedType<T>, what: string): MessageCodec<T> {
  return {
    encode: (value) => type.encode(value).finish(),
    decode: (bytes) => decodeMessage(what, () => type.decode(bytes)),
  };
}

export function unary<Req, Res>(
  service: string,
  method: string,
  request: MessageCodec<Req>,
  response: MessageCodec<Res>,
): UnaryRpc<Req, Res> {
  return { kind: 'unary', path: `/${service}/${method}`, request, response };
}

export function serverStream<Req, Res>(
  service: string,
  method: string,
  request: MessageCodec<Req>,
  response: MessageCodec<Res>,
): ServerStreamRpc<Req, Res> {
  return { kind: 'serverStream', path: `/${service}/${method}`, request, response };
}

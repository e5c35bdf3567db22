/**
 * The byte-level half of the messenger, shared by both ends: an incremental frame parser over socket chunks and a
 * frame writer that batches the frames of one event-loop turn into one writev. The frame layout itself lives in
 * src/protocol/messenger-codec.ts.
 *
 * The parser is pull-based (`push` bytes in, `next` frames out) so a receiver that wants no more work simply stops
 * calling `next`: bytes it has already read stay as they are and nothing more is decoded or allocated.
 */
import type { Socket } from 'node:net';
import { StorageError } from '../common/index.js';
import {
  decodeFrameHeader,
  decodeFramePrefix,
  encodeFrameHead,
  framePrefixBytes,
  type FrameHeader,
  type FramePrefix,
} from '../protocol/index.js';

export interface FrameLimits {
  /** Largest protobuf header accepted; a larger declared length closes the connection (no reply can be framed). */
  headerBytesMax: number;
  /** Largest payload accepted; a larger one is skipped unread and its request answered with TOO_LARGE. */
  payloadBytesMax: number;
}

/**
 * A complete frame. `payload` is a view of the received bytes (a copy only when the frame straddled socket chunks),
 * so it keeps those chunks alive: copy it if you keep it long. `discardedPayloadBytes` is set instead of `payload`
 * for a frame whose payload exceeded the limit and was skipped.
 */
export type ParsedFrame =
  | { header: FrameHeader; payload: Buffer; discardedPayloadBytes?: undefined }
  | { header: FrameHeader; payload?: undefined; discardedPayloadBytes: number };

const emptyPayload = Buffer.alloc(0);

export class FrameParser {
  readonly #limits: FrameLimits;
  #chunks: Buffer[] = [];
  /** Offset of the first unread byte in #chunks[0]. */
  #offset = 0;
  #buffered = 0;
  #prefix: FramePrefix | undefined;
  #header: FrameHeader | undefined;
  /** Bytes of an oversized payload still to be skipped. */
  #discard = 0;

  constructor(limits: FrameLimits) {
    this.#limits = limits;
  }

  /** Bytes held: received and not yet handed out as part of a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** True when part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    return this.#buffered > 0 || this.#prefix !== undefined || this.#discard > 0;
  }

  push(chunk: Buffer): void {
    if (this.#discard > 0) {
      const skip = Math.min(this.#discard, chunk.length);
      this.#discard -= skip;
      if (skip === chunk.length) return;
      chunk = chunk.subarray(skip);
    }
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * The next complete frame, or undefined until more bytes arrive. Throws StorageError (CORRUPT_DATA, TOO_LARGE,
   * UNSUPPORTED_VERSION) when the stream cannot be a valid frame sequence; the connection is then beyond repair.
   */
  next(): ParsedFrame | undefined {
    if (this.#discard > 0) return undefined;
    if (this.#prefix === undefined) {
      if (this.#buffered < framePrefixBytes) return undefined;
      const prefix = decodeFramePrefix(this.#take(framePrefixBytes));
      if (prefix.headerBytes > this.#limits.headerBytesMax) {
        throw new StorageError(
          'TOO_LARGE',
          `messenger frame: header of ${prefix.headerBytes} bytes exceeds ${this.#limits.headerBytesMax}`,
        );
      }
      this.#prefix = prefix;
    }
    const prefix = this.#prefix;
    if (this.#header === undefined) {
      if (this.#buffered < prefix.headerBytes) return undefined;
      this.#header = decodeFrameHeader(this.#take(prefix.headerBytes));
    }
    const header = this.#header;
    if (prefix.payloadBytes > this.#limits.payloadBytesMax) {
      this.#prefix = undefined;
      this.#header = undefined;
      const now = Math.min(prefix.payloadBytes, this.#buffered);
      this.#skip(now);
      this.#discard = prefix.payloadBytes - now;
      return { header, discardedPayloadBytes: prefix.payloadBytes };
    }
    if (this.#buffered < prefix.payloadBytes) return undefined;
    const payload = prefix.payloadBytes === 0 ? emptyPayload : this.#take(prefix.payloadBytes);
    this.#prefix = undefined;
    this.#header = undefined;
    return { header, payload };
  }

  /** Removes `length` (≤ buffered) bytes: a view when they lie in one chunk, else one copy. */
  #take(length: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    const available = first.length - this.#offset;
    if (available >= length) {
      const out = first.subarray(this.#offset, this.#offset + length);
      this.#advance(length);
      return out;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0] as Buffer;
      const n = Math.min(chunk.length - this.#offset, length - filled);
      chunk.copy(out, filled, this.#offset, this.#offset + n);
      filled += n;
      this.#advance(n);
    }
    return out;
  }

  #skip(length: number): void {
    while (length > 0) {
      const chunk = this.#chunks[0] as Buffer;
      const n = Math.min(chunk.length - this.#offset, length);
      this.#advance(n);
      length -= n;
    }
  }

  /** Moves past `n` bytes of the first chunk (n ≤ what it has left). */
  #advance(n: number): void {
    this.#offset += n;
    this.#buffered -= n;
    if (this.#offset === (this.#chunks[0] as Buffer).length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}

/**
 * Payloads up to this size are copied behind the header into one buffer: below it a second buffer in the writev costs
 * more than the copy. Larger payloads are written as they are, never concatenated.
 */
export const inlinePayloadBytesMax = 16 * 1024;

/**
 * Writes frames to a socket. The first write in an event-loop turn corks the socket and the uncork is scheduled for
 * the end of the turn, so every frame produced in that turn (many responses, many requests) leaves in one writev.
 */
export class FrameWriter {
  readonly #socket: Socket;
  #corked = false;
  readonly #uncork = () => {
    this.#corked = false;
    this.#socket.uncork();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Queues one frame; returns false when the socket's buffer is over its high-water mark (wait for 'drain'). */
  write(header: FrameHeader, payload: Uint8Array | undefined): boolean {
    const socket = this.#socket;
    if (socket.destroyed) return false;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(this.#uncork);
    }
    const payloadBytes = payload?.length ?? 0;
    if (payload === undefined || payloadBytes === 0) return socket.write(encodeFrameHead(header, 0));
    if (payloadBytes <= inlinePayloadBytesMax) return socket.write(encodeFrameHead(header, payloadBytes, payload));
    socket.write(encodeFrameHead(header, payloadBytes));
    return socket.write(payload);
  }
}

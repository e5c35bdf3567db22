/**
 * Corks a stream for the rest of the current event-loop turn: everything written to it in that turn (the replies of
 * many requests that completed together, many requests) leaves in one writev when the turn ends, instead of one
 * write syscall each. On loopback TCP the send also runs the receiver's network stack, so the syscalls were a large
 * part of a proxy's CPU (the NBD gateway spent ~20 % of its samples in per-reply writes under 4 KiB random writes).
 */
import type { Writable } from 'node:stream';

export class TurnCork {
  readonly #stream: Writable;
  #corked = false;
  readonly #uncork = () => {
    this.#corked = false;
    this.#stream.uncork();
  };

  constructor(stream: Writable) {
    this.#stream = stream;
  }

  /** Corks the stream unless it is corked already in this turn; it is uncorked once the turn's work is done. */
  hold(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#stream.cork();
    process.nextTick(this.#uncork);
  }
}

/**
 * Time is one of the four seams through which non-determinism enters (with Random, Transport and storage).
 * Production code asks a Clock for the time and for timers; the simulation drives a ManualClock by hand.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (for timestamps shown to people and stored in metadata). */
  nowMs(): number;
  /** Milliseconds from an arbitrary origin that never goes backwards (for timeouts and intervals). */
  monotonicMs(): number;
  /** Runs `callback` once after `delayMs`. */
  setTimer(delayMs: number, callback: () => void): TimerHandle;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimer(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** A clock that moves only when told to; timers fire in time order (ties in creation order) during `advance`. */
export class ManualClock implements Clock {
  #nowMs: number;
  #timers: { dueMs: number; seq: number; callback: () => void }[] = [];
  #seq = 0;

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  monotonicMs(): number {
    return this.#nowMs;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = { dueMs: this.#nowMs + Math.max(0, delayMs), seq: this.#seq++, callback };
    this.#timers.push(timer);
    return { cancel: () => (this.#timers = this.#timers.filter((t) => t !== timer)) };
  }

  /** Moves time forward by `deltaMs`, firing every timer that falls due on the way. */
  advance(deltaMs: number): void {
    const targetMs = this.#nowMs + deltaMs;
    for (;;) {
      const next = this.#nextDue();
      if (next === undefined || next.dueMs > targetMs) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#nowMs = next.dueMs;
      next.callback();
    }
    this.#nowMs = targetMs;
  }

  #nextDue(): { dueMs: number; seq: number; callback: () => void } | undefined {
    let best: { dueMs: number; seq: number; callback: () => void } | undefined;
    for (const t of this.#timers) {
      if (!best || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/**
 * Watch/notify on the primary (RADOS's watch/notify): watchers of an object long-poll for notifications; a notify is
 * queued for every watcher and completes when all have acknowledged or its timeout passes. State lives in memory on
 * the primary only: when the primary changes, watchers re-register with the new one (the client tells its user that
 * notifications may have been missed). A watcher that has not polled for `watcherIdleMs` is dropped.
 */
import { StorageError, type Clock } from '../src/index.js';

export interface WatchLimits {
  watchersPerObjectMax: number;
  pendingPerWatcherMax: number;
  watcherIdleMs: number;
  notifyTimeoutMsMax: number;
}

export const defaultWatchLimits: WatchLimits = {
  watchersPerObjectMax: 1024,
  pendingPerWatcherMax: 256,
  watcherIdleMs: 30_000,
  notifyTimeoutMsMax: 60_000,
};

interface Notification {
  notifyId: number;
  notifier: string;
  payload: Uint8Array;
}

interface Watcher {
  id: string;
  pending: Notification[];
  poll: ((notifications: Notification[]) => void) | undefined;
  lastSeenMs: number;
}

interface PendingNotify {
  waitingFor: Set<string>;
  acks: Map<string, Uint8Array>;
  finish: () => void;
}

export class WatchRegistry {
  readonly #clock: Clock;
  readonly #limits: WatchLimits;
  /** object key ("pg/name") -> watcher id -> watcher */
  readonly #objects = new Map<string, Map<string, Watcher>>();
  readonly #notifies = new Map<number, PendingNotify>();
  #nextNotifyId = 1;

  constructor(clock: Clock, limits: WatchLimits = defaultWatchLimits) {
    this.#clock = clock;
    this.#limits = limits;
  }

  #watchers(key: string): Map<string, Watcher> {
    let watchers = this.#objects.get(key);
    if (!watchers) this.#objects.set(key, (watchers = new Map()));
    return watchers;
  }

  #expire(key: string): void {
    const watchers = this.#objects.get(key);
    if (!watchers) return;
    const now = this.#clock.monotonicMs();
    for (const [id, w] of watchers) {
      if (!w.poll && now - w.lastSeenMs > this.#limits.watcherIdleMs) this.unwatch(key, id);
    }
  }

  watch(key: string, watcherId: string): void {
    this.#expire(key);
    const watchers = this.#watchers(key);
    const existing = watchers.get(watcherId);
    if (existing) {
      existing.lastSeenMs = this.#clock.monotonicMs();
      return;
    }
    if (watchers.size >= this.#limits.watchersPerObjectMax) throw new StorageError('BUSY', `too many watchers on ${key}`);
    watchers.set(watcherId, { id: watcherId, pending: [], poll: undefined, lastSeenMs: this.#clock.monotonicMs() });
  }

  unwatch(key: string, watcherId: string): void {
    const watchers = this.#objects.get(key);
    const watcher = watchers?.get(watcherId);
    if (!watchers || !watcher) return;
    watchers.delete(watcherId);
    if (watchers.size === 0) this.#objects.delete(key);
    watcher.poll?.([]);
    // A watcher that goes away no longer holds up a notify.
    for (const [id, notify] of this.#notifies) {
      if (notify.waitingFor.delete(watcherId) && notify.waitingFor.size === 0) {
        this.#notifies.delete(id);
        notify.finish();
      }
    }
  }

  /** Resolves with pending notifications, at once when there are some, else when one arrives or after `waitMs`. */
  poll(key: string, watcherId: string, waitMs: number): Promise<Notification[]> {
    const watcher = this.#objects.get(key)?.get(watcherId);
    if (!watcher) return Promise.reject(new StorageError('NOT_FOUND', `no watch ${watcherId} on ${key} (re-register)`));
    watcher.lastSeenMs = this.#clock.monotonicMs();
    watcher.poll?.([]);
    if (watcher.pending.length > 0) {
      const out = watcher.pending.splice(0);
      return Promise.resolve(out);
    }
    return new Promise((resolve) => {
      const timer = this.#clock.setTimer(Math.min(waitMs, this.#limits.watcherIdleMs / 2), () => deliver([]));
      const deliver = (notifications: Notification[]) => {
        timer.cancel();
        if (watcher.poll === deliver) watcher.poll = undefined;
        watcher.lastSeenMs = this.#clock.monotonicMs();
        resolve(notifications);
      };
      watcher.poll = deliver;
    });
  }

  /** Sends `payload` to every watcher of `key`; resolves with who acknowledged (and their replies) and who timed out. */
  notify(key: string, notifier: string, payload: Uint8Array, timeoutMs: number): Promise<{ acks: Map<string, Uint8Array>; timeouts: string[] }> {
    this.#expire(key);
    const watchers = [...(this.#objects.get(key)?.values() ?? [])];
    const notifyId = this.#nextNotifyId++;
    const notification: Notification = { notifyId, notifier, payload };
    const acks = new Map<string, Uint8Array>();
    if (watchers.length === 0) return Promise.resolve({ acks, timeouts: [] });
    return new Promise((resolve) => {
      const waitingFor = new Set(watchers.map((w) => w.id));
      const finish = () => {
        timer.cancel();
        this.#notifies.delete(notifyId);
        resolve({ acks, timeouts: [...waitingFor] });
      };
      const timer = this.#clock.setTimer(Math.min(timeoutMs, this.#limits.notifyTimeoutMsMax), finish);
      this.#notifies.set(notifyId, { waitingFor, acks, finish });
      for (const watcher of watchers) {
        if (watcher.poll) watcher.poll([notification]);
        else if (watcher.pending.length < this.#limits.pendingPerWatcherMax) watcher.pending.push(notification);
      }
    });
  }

  ack(watcherId: string, notifyId: number, reply: Uint8Array): void {
    const notify = this.#notifies.get(notifyId);
    if (!notify || !notify.waitingFor.delete(watcherId)) return;
    notify.acks.set(watcherId, reply);
    if (notify.waitingFor.size === 0) notify.finish();
  }

  /** Drops every watch (this OSD stopped being primary of the object's PG, or is stopping). */
  dropAll(keyPrefix: string): void {
    for (const key of [...this.#objects.keys()]) {
      if (!key.startsWith(keyPrefix)) continue;
      for (const id of [...(this.#objects.get(key)?.keys() ?? [])]) this.unwatch(key, id);
    }
  }
}

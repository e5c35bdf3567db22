/**
 * The object client (like librados): follows the cluster map through the monitors, computes each object's placement
 * itself and sends every operation straight to the primary OSD of the object's placement group. When the primary
 * moved (NOT_PRIMARY, STALE_EPOCH), was unreachable, or the PG was not serving yet, it waits for a newer map or
 * backs off and resends the same request (same request id, so the primary applies it at most once), within a
 * bounded number of attempts and a deadline.
 */
import { randomBytes } from 'node:crypto';
import { StorageError, silentLogger, type ClusterConfig, type Logger, type Startable } from '../common/index.js';
import { osdCodecs, versionFromWire, wire, type ClusterMap, type Eversion, type Pool } from '../protocol/index.js';
import { placementFor, type PgId } from '../crush/index.js';
import { MessengerPool } from '../net/index.js';
import { MonitorClient } from './monitor-client.js';

const Kind = wire.ObjectOp.Kind;
type Op = wire.ObjectOp.$Properties;

export interface ObjectClientOptions {
  /** A name for this client instance in request ids (default: random). */
  clientName?: string;
  /** Overall time one operation may take, resends included. */
  opTimeoutMs?: number;
  /** Resends of one operation before giving up. */
  retryAttemptsMax?: number;
  logger?: Logger;
}

export interface ObjectStat {
  size: number;
  mtimeMs: number;
  version: Eversion;
}

export interface OpResult {
  reply: wire.OsdOpReply;
  payload: Buffer;
}

const resend = new Set(['NOT_PRIMARY', 'STALE_EPOCH', 'UNAVAILABLE', 'TIMEOUT', 'SHUTTING_DOWN', 'BUSY', 'INSUFFICIENT_REPLICAS']);

export class ObjectClient implements Startable {
  readonly clientName: string;
  readonly #config: ClusterConfig;
  readonly #monitors: MonitorClient;
  readonly #messenger: MessengerPool;
  readonly #logger: Logger;
  readonly #opTimeoutMs: number;
  readonly #retryAttemptsMax: number;
  #map: ClusterMap | undefined;
  #subscription: { stop(): void } | undefined;
  #mapWaiters: { epoch: number; resolve(): void }[] = [];
  #tid = 0;

  constructor(config: ClusterConfig, options: ObjectClientOptions = {}) {
    this.#config = config;
    this.clientName = options.clientName ?? `client.${randomBytes(6).toString('hex')}`;
    this.#logger = options.logger ?? silentLogger;
    this.#opTimeoutMs = options.opTimeoutMs ?? 60_000;
    this.#retryAttemptsMax = options.retryAttemptsMax ?? 50;
    this.#monitors = new MonitorClient(config.monitors, {
      callTimeoutMs: config.timeouts.monitorCallTimeoutMs,
      commandTimeoutMs: config.timeouts.commandTimeoutMs,
      logger: this.#logger,
    });
    this.#messenger = new MessengerPool({ logger: this.#logger });
  }

  get monitors(): MonitorClient {
    return this.#monitors;
  }

  async start(): Promise<void> {
    const map = await this.#monitors.getMap();
    // Monitors answering for another cluster (a stale config, a reused port): never act on their map.
    if (map.fsid && this.#config.fsid && map.fsid !== this.#config.fsid) {
      throw new StorageError('INVALID_ARGUMENT', `the monitors ${this.#config.monitors.map((m) => m.address).join(', ')} serve cluster ${map.fsid}, not ${this.#config.fsid} of the config`);
    }
    this.#setMap(map);
    this.#subscription = this.#monitors.subscribe(this.clientName, (map) => this.#setMap(map));
  }

  async stop(): Promise<void> {
    this.#subscription?.stop();
    this.#messenger.close();
    this.#monitors.close();
  }

  map(): ClusterMap {
    if (!this.#map) throw new StorageError('UNAVAILABLE', 'object client not started');
    return this.#map;
  }

  #setMap(map: ClusterMap): void {
    if (this.#map && map.epoch <= this.#map.epoch) return;
    if (map.fsid && this.#config.fsid && map.fsid !== this.#config.fsid) return;
    this.#map = map;
    const waiting = this.#mapWaiters;
    this.#mapWaiters = [];
    for (const w of waiting) (map.epoch >= w.epoch ? w.resolve() : this.#mapWaiters.push(w));
  }

  /** Waits for a map newer than `epoch` (bounded), asking the monitors directly if the subscription is slow. */
  async #newerMap(epoch: number, waitMs: number): Promise<void> {
    if (this.#map && this.#map.epoch > epoch) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      this.#mapWaiters.push({ epoch: epoch + 1, resolve: () => (clearTimeout(timer), resolve()) });
    });
    if (!this.#map || this.#map.epoch <= epoch) {
      try {
        this.#setMap(await this.#monitors.getMap());
      } catch {
        // the next attempt tries again
      }
    }
  }

  pool(name: string): Pool {
    const pool = this.map().pools.find((p) => p.name === name);
    if (!pool) throw new StorageError('NOT_FOUND', `pool ${JSON.stringify(name)} does not exist`);
    return pool;
  }

  /** Sends a request to the current primary of a PG, resending as the map changes. */
  async #toPrimary(pgOf: (map: ClusterMap) => PgId, op: 'op' | 'pg-list' | 'watch' | 'watch-poll' | 'notify' | 'notify-ack' | 'pg-scrub', header: (map: ClusterMap) => Uint8Array, payload?: Buffer): Promise<{ header: Uint8Array; payload: Buffer }> {
    const deadline = Date.now() + this.#opTimeoutMs;
    let lastError: StorageError | undefined;
    for (let attempt = 0; attempt <= this.#retryAttemptsMax; attempt++) {
      const map = this.map();
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) break;
      const mapping = placementFor(map).mapPg(pgOf(map));
      const address = map.osds.find((o) => o.id === mapping.primary)?.address;
      if (mapping.primary < 0 || !address) {
        lastError = new StorageError('UNAVAILABLE', `PG ${mapping.pgId.pool}.${mapping.pgId.seed.toString(16)} has no up primary at epoch ${map.epoch}`);
        await this.#newerMap(map.epoch, Math.min(1000, remainingMs));
        continue;
      }
      try {
        return await this.#messenger.request(address, op, header(map), payload, { timeoutMs: Math.min(remainingMs, this.#opTimeoutMs) });
      } catch (error) {
        const failure = StorageError.from(error);
        if (!resend.has(failure.code)) throw failure;
        // A TIMEOUT cut short by the deadline says less than why the attempts before it failed: keep that reason.
        if (!(failure.code === 'TIMEOUT' && lastError && lastError.code !== 'TIMEOUT')) lastError = failure;
        this.#logger.debug('resending', { op, osd: mapping.primary, attempt, error: failure.message });
        const backoffMs = Math.min(50 * 2 ** Math.min(attempt, 5), 1000);
        await this.#newerMap(map.epoch, failure.code === 'NOT_PRIMARY' || failure.code === 'STALE_EPOCH' ? 1000 : backoffMs);
      }
    }
    throw lastError ?? new StorageError('TIMEOUT', `${op} did not complete within ${this.#opTimeoutMs} ms`);
  }

  /** A scrub (deep unless `light`) of one PG by its primary; with `repair`, good copies are rewritten over bad ones. */
  async scrubPg(poolName: string, seed: number, repair = false, light = false): Promise<wire.PgScrubReply> {
    const pool = this.pool(poolName);
    if (!Number.isInteger(seed) || seed < 0 || seed >= pool.pgNum) throw new StorageError('INVALID_ARGUMENT', `pool ${poolName} has PGs 0..${pool.pgNum - 1}, not ${seed}`);
    const reply = await this.#toPrimary(
      () => ({ pool: pool.id, seed }),
      'pg-scrub',
      (map) => osdCodecs.pgScrubRequest.encode({ pool: pool.id, pgSeed: seed, epoch: map.epoch, repair, light }),
    );
    return osdCodecs.pgScrubReply.decode(reply.header) as wire.PgScrubReply;
  }

  /** Executes a compound operation on one object (atomic at the primary). */
  async execute(poolName: string, object: string, ops: Op[], payload?: Buffer): Promise<OpResult> {
    if (object.length === 0 || Buffer.byteLength(object) > 1024) throw new StorageError('INVALID_ARGUMENT', 'object names are 1-1024 bytes');
    const pool = this.pool(poolName);
    const write = ops.some((o) => ![Kind.KIND_READ, Kind.KIND_STAT, Kind.KIND_GETXATTR, Kind.KIND_GETXATTRS, Kind.KIND_OMAP_GET, Kind.KIND_OMAP_LIST, Kind.KIND_CMPXATTR, Kind.KIND_ASSERT_VERSION, Kind.KIND_ASSERT_EXISTS].includes(o.kind ?? 0));
    const reqid = { client: this.clientName, tid: ++this.#tid };
    const reply = await this.#toPrimary(
      (map) => placementFor(map).objectToPg(pool.id, object),
      'op',
      (map) => {
        const pgId = placementFor(map).objectToPg(pool.id, object);
        return osdCodecs.opRequest.encode({ pool: pool.id, pgSeed: pgId.seed, object, epoch: map.epoch, reqid, ops, write });
      },
      payload,
    );
    return { reply: osdCodecs.opReply.decode(reply.header) as wire.OsdOpReply, payload: reply.payload };
  }

  async put(pool: string, name: string, data: Buffer): Promise<Eversion> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }], data);
    return versionFromWire(r.reply.version);
  }

  async write(pool: string, name: string, offset: number, data: Buffer): Promise<Eversion> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_WRITE, offset, dataOffset: 0, dataLength: data.length }], data);
    return versionFromWire(r.reply.version);
  }

  async get(pool: string, name: string, range: { offset?: number; length?: number } = {}): Promise<Buffer> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_READ, offset: range.offset ?? 0, length: range.length ?? 0 }]);
    const result = r.reply.results[0];
    return r.payload.subarray(Number(result?.dataOffset ?? 0), Number(result?.dataOffset ?? 0) + Number(result?.dataLength ?? 0));
  }

  async truncate(pool: string, name: string, size: number): Promise<void> {
    await this.execute(pool, name, [{ kind: Kind.KIND_TRUNCATE, offset: size }]);
  }

  async remove(pool: string, name: string): Promise<void> {
    await this.execute(pool, name, [{ kind: Kind.KIND_REMOVE }]);
  }

  async stat(pool: string, name: string): Promise<ObjectStat> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_STAT }]);
    const result = r.reply.results[0];
    return { size: Number(result?.size ?? 0), mtimeMs: Number(result?.mtimeMs ?? 0), version: versionFromWire(r.reply.version) };
  }

  async setXattr(pool: string, name: string, key: string, value: Buffer): Promise<void> {
    await this.execute(pool, name, [{ kind: Kind.KIND_SETXATTR, name: key, value }]);
  }

  async rmXattr(pool: string, name: string, key: string): Promise<void> {
    await this.execute(pool, name, [{ kind: Kind.KIND_RMXATTR, name: key }]);
  }

  async getXattr(pool: string, name: string, key: string): Promise<Buffer> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_GETXATTR, name: key }]);
    return Buffer.from(r.reply.results[0]?.value ?? new Uint8Array());
  }

  async getXattrs(pool: string, name: string): Promise<Map<string, Buffer>> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_GETXATTRS }]);
    return new Map((r.reply.results[0]?.entries ?? []).map((e) => [e.key ?? '', Buffer.from(e.value ?? new Uint8Array())]));
  }

  /**
   * Compare-and-swap: applies `ops` only if xattr `key` currently equals `expected` (undefined: the xattr is absent).
   * PRECONDITION_FAILED otherwise, with nothing changed.
   */
  async compareAndSwap(pool: string, name: string, key: string, expected: Buffer | undefined, ops: Op[], payload?: Buffer): Promise<Eversion> {
    const guard: Op = { kind: Kind.KIND_CMPXATTR, name: key, value: expected ?? Buffer.alloc(0), allowAbsent: expected === undefined };
    const r = await this.execute(pool, name, [guard, ...ops], payload);
    return versionFromWire(r.reply.version);
  }

  /** Applies `ops` only if the object is at exactly `version` (PRECONDITION_FAILED otherwise). */
  async ifVersion(pool: string, name: string, version: Eversion, ops: Op[], payload?: Buffer): Promise<Eversion> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_ASSERT_VERSION, version }, ...ops], payload);
    return versionFromWire(r.reply.version);
  }

  async omapSet(pool: string, name: string, entries: Record<string, Buffer> | [string, Buffer][]): Promise<void> {
    const list = Array.isArray(entries) ? entries : Object.entries(entries);
    await this.execute(pool, name, [{ kind: Kind.KIND_OMAP_SET, entries: list.map(([key, value]) => ({ key, value })) }]);
  }

  async omapGet(pool: string, name: string, keys: string[]): Promise<Map<string, Buffer>> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_OMAP_GET, keys }]);
    return new Map((r.reply.results[0]?.entries ?? []).map((e) => [e.key ?? '', Buffer.from(e.value ?? new Uint8Array())]));
  }

  async omapRemove(pool: string, name: string, keys: string[]): Promise<void> {
    await this.execute(pool, name, [{ kind: Kind.KIND_OMAP_RM, keys }]);
  }

  async omapClear(pool: string, name: string): Promise<void> {
    await this.execute(pool, name, [{ kind: Kind.KIND_OMAP_CLEAR }]);
  }

  /** One page of omap entries in key order after `after`, optionally under a key prefix. */
  async omapList(pool: string, name: string, options: { after?: string; prefix?: string; limit?: number } = {}): Promise<{ entries: [string, Buffer][]; more: boolean }> {
    const r = await this.execute(pool, name, [{ kind: Kind.KIND_OMAP_LIST, after: options.after ?? '', prefix: options.prefix ?? '', limit: options.limit ?? 1000 }]);
    const result = r.reply.results[0];
    return { entries: (result?.entries ?? []).map((e) => [e.key ?? '', Buffer.from(e.value ?? new Uint8Array())]), more: result?.more ?? false };
  }

  /** Sends a watch/notify request for `object` to its primary. */
  async #objectRequest(op: 'watch' | 'watch-poll' | 'notify' | 'notify-ack', poolName: string, object: string, header: (base: { pool: number; pgSeed: number; epoch: number; object: string }) => Uint8Array) {
    const pool = this.pool(poolName);
    return this.#toPrimary(
      (map) => placementFor(map).objectToPg(pool.id, object),
      op,
      (map) => header({ pool: pool.id, pgSeed: placementFor(map).objectToPg(pool.id, object).seed, epoch: map.epoch, object }),
    );
  }

  /**
   * Watches an object: `onNotify` runs for every notify sent to it, and its return value is the reply the notifier
   * receives. Watches live on the object's primary; when it changes the watch is registered again and `onError` is
   * told that notifications may have been missed in between. Stop with the returned handle.
   */
  async watch(
    poolName: string,
    object: string,
    onNotify: (notification: { payload: Buffer; notifier: string }) => Buffer | void | Promise<Buffer | void>,
    onError: (error: StorageError) => void = () => {},
  ): Promise<{ watcher: string; stop(): Promise<void> }> {
    const watcher = `${this.clientName}/${randomBytes(4).toString('hex')}`;
    const register = () => this.#objectRequest('watch', poolName, object, (base) => osdCodecs.watchRequest.encode({ ...base, watcher }));
    await register();
    let stopped = false;
    // A poll answers empty after waitMs: well inside the op timeout, or an idle watch would time out and be
    // registered again (telling the watcher it may have missed notifications) every time.
    const pollWaitMs = Math.min(10_000, Math.floor(this.#opTimeoutMs / 2));
    const loop = async () => {
      while (!stopped) {
        try {
          const reply = await this.#objectRequest('watch-poll', poolName, object, (base) => osdCodecs.watchPollRequest.encode({ ...base, watcher, waitMs: pollWaitMs }));
          for (const n of osdCodecs.watchPollReply.decode(reply.header).notifications ?? []) {
            const answer = (await onNotify({ payload: Buffer.from(n.payload ?? new Uint8Array()), notifier: n.notifier ?? '' })) ?? Buffer.alloc(0);
            await this.#objectRequest('notify-ack', poolName, object, (base) => osdCodecs.notifyAckRequest.encode({ ...base, watcher, notifyId: n.notifyId ?? 0, reply: answer }));
          }
        } catch (error) {
          if (stopped) return;
          const failure = StorageError.from(error);
          onError(new StorageError('UNAVAILABLE', `watch on ${poolName}/${object} was lost (${failure.message}); registered again, notifications may have been missed`, { cause: error }));
          await new Promise((r) => setTimeout(r, 200));
          await register().catch(() => {});
        }
      }
    };
    void loop();
    return {
      watcher,
      stop: async () => {
        stopped = true;
        await this.#objectRequest('watch', poolName, object, (base) => osdCodecs.watchRequest.encode({ ...base, watcher, unwatch: true })).catch(() => {});
      },
    };
  }

  /** Notifies every watcher of an object; resolves with their replies and the watchers that did not answer in time. */
  async notify(poolName: string, object: string, payload: Buffer, timeoutMs = 5000): Promise<{ acks: Map<string, Buffer>; timeouts: string[] }> {
    const reply = await this.#objectRequest('notify', poolName, object, (base) => osdCodecs.notifyRequest.encode({ ...base, notifier: this.clientName, payload, timeoutMs }));
    const decoded = osdCodecs.notifyReply.decode(reply.header);
    return { acks: new Map((decoded.acks ?? []).map((a) => [a.key ?? '', Buffer.from(a.value ?? new Uint8Array())])), timeouts: decoded.timeouts ?? [] };
  }

  /**
   * One page of a pool's object names. Objects come PG by PG (each PG in name order); `cursor` is what the previous
   * page returned (undefined: start), and a returned cursor of undefined means the listing is complete.
   */
  async list(poolName: string, options: { cursor?: string; limit?: number } = {}): Promise<{ names: string[]; cursor: string | undefined }> {
    const pool = this.pool(poolName);
    const limit = Math.max(1, Math.min(options.limit ?? 1000, 10_000));
    let [seed, after] = parseCursor(options.cursor);
    const names: string[] = [];
    while (seed < pool.pgNum && names.length < limit) {
      const currentSeed = seed;
      const reply = await this.#toPrimary(
        () => ({ pool: pool.id, seed: currentSeed }),
        'pg-list',
        (map) => osdCodecs.pgListRequest.encode({ pool: pool.id, pgSeed: currentSeed, epoch: map.epoch, after, limit: limit - names.length }),
      );
      const page = osdCodecs.pgListReply.decode(reply.header);
      names.push(...(page.names ?? []));
      if (page.more && page.names?.length) {
        after = page.names.at(-1) ?? '';
        continue;
      }
      seed++;
      after = '';
    }
    const cursor = seed >= pool.pgNum ? undefined : `${seed}/${after}`;
    return { names, cursor };
  }
}

function parseCursor(cursor: string | undefined): [number, string] {
  if (!cursor) return [0, ''];
  const slash = cursor.indexOf('/');
  const seed = Number(cursor.slice(0, slash));
  if (slash < 0 || !Number.isInteger(seed) || seed < 0) throw new StorageError('INVALID_ARGUMENT', `bad listing cursor ${JSON.stringify(cursor)}`);
  return [seed, cursor.slice(slash + 1)];
}

/**
 * An OSD: serves the placement groups CRUSH maps to it from its object store. `createOsd(config, deps)` builds one
 * (tests start it in-process); `osd/main.ts` runs it as the daemon behind `shoal osd`.
 *
 * Life: open the store and the PGs it holds → listen → boot into the map through the monitors → follow the map
 * (each new epoch re-maps every PG; a changed acting set starts a new interval and, on the primary, peering) →
 * heartbeat the monitors and the peers it shares PGs with, reporting peers that stop answering.
 */
import {
  MonitorClient,
  StorageError,
  crc32c,
  defaultOsdSettings,
  osdCodecs,
  placementFor,
  pgIdToString,
  type ClusterConfig,
  type ClusterMap,
  type Clock,
  type Logger,
  type Startable,
  wire,
} from '../src/index.js';
import { MessengerPool, MessengerServer, type MessengerRequest, type MessengerResponse } from '../src/net/index.js';
import type { ObjectStore } from './store/index.js';
import { osdOpNames, type OsdOpName, type PeerLink } from './peers.js';
import { PlacementGroup, RecoveryThrottle, defaultPgSettings, type PgSettings } from './pg/pg.js';
import { WatchRegistry } from './watch.js';
import { erasureSelfTest } from '../src/erasure/index.js';

export interface OsdConfig {
  id: number;
  cluster: ClusterConfig;
  /** CRUSH host this OSD sits under. */
  host: string;
  /** host:port to listen on (port 0: any free port). */
  listenAddress: string;
  /** host:port peers and clients should use (default: the listen host and the bound port). */
  advertiseAddress?: string;
  /** CRUSH weight, 16.16 (0: keep the map's, or 1.0 for a new OSD). */
  crushWeight?: number;
  pg?: Partial<PgSettings>;
  /** Interval of OSD-to-OSD pings; a peer silent for the grace period is reported to the monitors. */
  peerPingIntervalMs?: number;
  peerGraceMs?: number;
}

export interface OsdDeps {
  store: ObjectStore;
  clock: Clock;
  logger: Logger;
}

export interface Osd extends Startable {
  readonly id: number;
  readonly address: string;
  map(): ClusterMap | undefined;
  pgs(): ReadonlyMap<string, PlacementGroup>;
}

export function createOsd(config: OsdConfig, deps: OsdDeps): Osd {
  const { clock, logger, store } = deps;
  const t = config.cluster.timeouts;
  const osdSettings = { ...defaultOsdSettings, ...config.cluster.osd };
  const settings: PgSettings = { ...defaultPgSettings, recoveryOpsMax: osdSettings.recoveryOpsMax, recoverySleepMs: osdSettings.recoverySleepMs, ...config.pg };
  const peerPingIntervalMs = config.peerPingIntervalMs ?? Math.max(250, Math.floor(t.osdHeartbeatIntervalMs));
  const peerGraceMs = config.peerGraceMs ?? Math.max(peerPingIntervalMs * 4, Math.floor(t.osdGraceMs / 2));
  const server = new MessengerServer({ address: config.listenAddress, logger, clock });
  const pool = new MessengerPool({ logger });
  const monitors = new MonitorClient(config.cluster.monitors, {
    callTimeoutMs: t.monitorCallTimeoutMs,
    commandTimeoutMs: t.commandTimeoutMs,
    logger,
  });
  const pgs = new Map<string, PlacementGroup>();
  const watches = new WatchRegistry(clock);
  let map: ClusterMap | undefined;
  /** The newest epoch every PG has been shown (`map` is set first, then each PG sees it in turn). */
  let appliedEpoch = 0;
  let address = config.advertiseAddress ?? '';
  let stopped = false;
  let subscription: { stop(): void } | undefined;
  const timers: { cancel(): void }[] = [];
  /** Map processing is serialised: each map is handled completely before the next. */
  let mapQueue: Promise<void> = Promise.resolve();
  const mapWaiters: { epoch: number; resolve(): void }[] = [];
  const lastPongMs = new Map<number, number>();
  const reported = new Set<number>();
  let booting = false;

  const peers: PeerLink = {
    async call(osd, op, header, payload) {
      const target = map?.osds.find((o) => o.id === osd);
      if (!target || !target.address) throw new StorageError('UNAVAILABLE', `osd.${osd} has no address in the map`);
      return pool.request(target.address, op, header, payload, { timeoutMs: settings.peerTimeoutMs });
    },
  };
  const throttle = new RecoveryThrottle(settings.recoveryOpsMax, settings.recoverySleepMs, clock);
  const ctx = { osdId: config.id, store, peers, clock, logger, settings, throttle };

  async function pgFor(poolId: number, seed: number): Promise<PlacementGroup> {
    const name = pgIdToString({ pool: poolId, seed });
    let pg = pgs.get(name);
    if (!pg) {
      pg = await PlacementGroup.load(ctx, poolId, seed);
      const raced = pgs.get(name);
      if (raced) return raced;
      pgs.set(name, pg);
    }
    return pg;
  }

  async function handleMap(next: ClusterMap): Promise<void> {
    if (map && next.epoch <= map.epoch) return;
    // Monitors of another cluster (a stale config, a reused port): never place data by their map.
    if (next.fsid && config.cluster.fsid && next.fsid !== config.cluster.fsid) {
      logger.error('ignoring a map of another cluster', { fsid: next.fsid, expected: config.cluster.fsid });
      return;
    }
    // Skipped epochs may hide a change of primary and back; peer every PG again rather than trust continuity.
    const skipped = map !== undefined && next.epoch > map.epoch + 1;
    map = next;
    const placement = placementFor(next);
    for (const p of next.pools) {
      for (let seed = 0; seed < p.pgNum; seed++) {
        const name = pgIdToString({ pool: p.id, seed });
        const mapping = placement.mapPg({ pool: p.id, seed });
        if (!mapping.up.includes(config.id) && !pgs.has(name)) continue;
        const pg = await pgFor(p.id, seed);
        // Watches live on the primary only: a PG that moved away takes its watchers' registrations with it.
        if (pg.onMap(next.epoch, p, mapping.up, skipped) && pg.primary !== config.id) watches.dropAll(`${name}/`);
      }
    }
    // PGs of pools that no longer exist: their data goes with the pool.
    const poolIds = new Set(next.pools.map((p) => p.id));
    for (const [name, pg] of pgs) {
      if (poolIds.has(pg.poolId)) continue;
      pg.close();
      pgs.delete(name);
      await store.apply({ ops: [{ op: 'removeCollection', pg: name }] });
    }
    const self = next.osds.find((o) => o.id === config.id);
    if (self && !self.up && !stopped) void boot();
    appliedEpoch = next.epoch;
    for (const waiter of mapWaiters.splice(0)) {
      if (waiter.epoch <= next.epoch) waiter.resolve();
      else mapWaiters.push(waiter);
    }
  }

  function onMap(next: ClusterMap): void {
    mapQueue = mapQueue.then(() => handleMap(next)).catch((error: unknown) => logger.error('map handling failed', { error: String(error) }));
  }

  /**
   * Waits (bounded) until this OSD's PGs have seen at least `epoch`: a request made under a newer map than a PG has
   * applied would otherwise be served by that PG's previous interval.
   */
  async function haveEpoch(epoch: number): Promise<void> {
    if (appliedEpoch >= epoch) return;
    await new Promise<void>((resolve) => {
      const timer = clock.setTimer(t.monitorCallTimeoutMs, resolve);
      mapWaiters.push({ epoch, resolve: () => (timer.cancel(), resolve()) });
    });
  }

  async function boot(): Promise<void> {
    if (booting || stopped) return;
    booting = true;
    try {
      for (let attempt = 0; !stopped; attempt++) {
        try {
          await monitors.command({ osdBoot: { id: config.id, address, host: config.host, crushWeight: config.crushWeight ?? 0 } });
          logger.info('booted', { address, host: config.host });
          return;
        } catch (error) {
          logger.warn('boot failed; retrying', { attempt, error: String(error) });
          await new Promise<void>((resolve) => clock.setTimer(Math.min(200 * 2 ** attempt, 2000), resolve));
        }
      }
    } finally {
      booting = false;
    }
  }

  function decode<T>(codec: { decode(b: Uint8Array): T }, header: Uint8Array): T {
    return codec.decode(header);
  }

  async function primaryPg(poolId: number, seed: number, epoch: number, objectName?: string): Promise<PlacementGroup> {
    await haveEpoch(epoch);
    const current = map;
    if (!current) throw new StorageError('UNAVAILABLE', `osd.${config.id} has no map yet`);
    const placement = placementFor(current);
    const p = placement.pool(poolId);
    if (objectName !== undefined) {
      const expected = placement.objectToPg(poolId, objectName);
      if (expected.seed !== seed) throw new StorageError('STALE_EPOCH', `object ${objectName} maps to ${pgIdToString(expected)} at epoch ${current.epoch}`);
    } else if (seed >= p.pgNum) {
      throw new StorageError('STALE_EPOCH', `pool ${p.name} has ${p.pgNum} PGs at epoch ${current.epoch}`);
    }
    const mapping = placement.mapPg({ pool: poolId, seed });
    if (mapping.primary !== config.id) {
      throw new StorageError('NOT_PRIMARY', `osd.${config.id} is not primary of ${pgIdToString({ pool: poolId, seed })} at epoch ${current.epoch} (primary osd.${mapping.primary})`);
    }
    return pgFor(poolId, seed);
  }

  async function localPg(poolId: number, seed: number): Promise<PlacementGroup> {
    if (!map) throw new StorageError('UNAVAILABLE', `osd.${config.id} has no map yet`);
    return pgFor(poolId, seed);
  }

  const handlers: Record<OsdOpName, (request: MessengerRequest) => Promise<MessengerResponse | void>> = {
    async op(request) {
      const req = decode(osdCodecs.opRequest, request.header);
      const pg = await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0), req.object ?? '');
      const outcome = await pg.clientOp(req, request.payload).catch((error: unknown) => {
        logger.debug('op failed', { pg: pg.name, object: req.object, state: pg.reportedState, epoch: map?.epoch, error: String(error) });
        throw error;
      });
      const payload = outcome.chunks.length === 1 ? outcome.chunks[0] : Buffer.concat(outcome.chunks);
      return { header: osdCodecs.opReply.encode({ ...outcome.reply, epoch: map?.epoch ?? 0 }), ...(payload ? { payload } : {}) };
    },
    async 'pg-list'(request) {
      const req = decode(osdCodecs.pgListRequest, request.header);
      const pg = await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0));
      const page = await pg.list(req.after ?? '', Math.min(req.limit || 1000, 10_000));
      return { header: osdCodecs.pgListReply.encode(page) };
    },
    async 'rep-op'(request) {
      const req = decode(osdCodecs.repOpRequest, request.header);
      if (!map || Number(req.epoch ?? 0) > map.epoch) await haveEpoch(Number(req.epoch ?? 0));
      const pg = pgs.get(pgIdToString({ pool: req.pool ?? 0, seed: req.pgSeed ?? 0 })) ?? (await localPg(req.pool ?? 0, req.pgSeed ?? 0));
      await pg.repOp(req, request.payload);
      return { header: osdCodecs.repOpReply.encode({}) };
    },
    async 'pg-info'(request) {
      const req = decode(osdCodecs.pgInfoRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      return { header: osdCodecs.pgInfoReply.encode(await pg.info(req.withLog ?? false)) };
    },
    async pull(request) {
      const req = decode(osdCodecs.pullRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      const { state, payload } = await pg.readObjectState(req.object ?? '', req.omapAfter ? req.omapAfter : undefined);
      return { header: osdCodecs.objectState.encode(state), payload };
    },
    async push(request) {
      const req = decode(osdCodecs.pushRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      await pg.applyPush(req, request.payload);
      return {};
    },
    async scan(request) {
      const req = decode(osdCodecs.scanRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      const page = await pg.scan(req.after ?? '', Math.min(req.limit || 1000, req.deep ? 100 : 10_000), req.deep ?? false);
      return { header: osdCodecs.scanReply.encode(page) };
    },
    async 'pg-scrub'(request) {
      const req = decode(osdCodecs.pgScrubRequest, request.header);
      const pg = await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0));
      return { header: osdCodecs.pgScrubReply.encode(await pg.scrub(req.repair ?? false, !(req.light ?? false))) };
    },
    async 'pg-activate'(request) {
      const req = decode(osdCodecs.pgActivate, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      await pg.activate(req);
      return {};
    },
    async watch(request) {
      const req = decode(osdCodecs.watchRequest, request.header);
      const pg = await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0), req.object ?? '');
      if (!req.watcher) throw new StorageError('INVALID_ARGUMENT', 'a watch needs a watcher id');
      const key = `${pg.name}/${req.object}`;
      if (req.unwatch) watches.unwatch(key, req.watcher);
      else watches.watch(key, req.watcher);
      return {};
    },
    async 'watch-poll'(request) {
      const req = decode(osdCodecs.watchPollRequest, request.header);
      const pg = await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0), req.object ?? '');
      const notifications = await watches.poll(`${pg.name}/${req.object}`, req.watcher ?? '', Math.min(req.waitMs || 10_000, 30_000));
      return { header: osdCodecs.watchPollReply.encode({ notifications }) };
    },
    async notify(request) {
      const req = decode(osdCodecs.notifyRequest, request.header);
      const pg = await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0), req.object ?? '');
      const result = await watches.notify(`${pg.name}/${req.object}`, req.notifier ?? '', req.payload ?? new Uint8Array(), req.timeoutMs || 5000);
      return { header: osdCodecs.notifyReply.encode({ acks: [...result.acks].map(([key, value]) => ({ key, value })), timeouts: result.timeouts }) };
    },
    async 'notify-ack'(request) {
      const req = decode(osdCodecs.notifyAckRequest, request.header);
      await primaryPg(req.pool ?? 0, req.pgSeed ?? 0, Number(req.epoch ?? 0), req.object ?? '');
      watches.ack(req.watcher ?? '', Number(req.notifyId ?? 0), req.reply ?? new Uint8Array());
      return {};
    },
    async 'ec-read'(request) {
      const req = decode(osdCodecs.ecReadRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      const { header, payload } = await pg.ecRead(req);
      return { header: osdCodecs.ecReadReply.encode(header), payload };
    },
    async 'ec-rollback'(request) {
      const req = decode(osdCodecs.ecRollbackRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      await pg.ecRollback(req);
      return {};
    },
    async 'ec-commit'(request) {
      const req = decode(osdCodecs.ecCommitRequest, request.header);
      await haveEpoch(Number(req.epoch ?? 0));
      const pg = await localPg(req.pool ?? 0, req.pgSeed ?? 0);
      await pg.ecCommit(req);
      return {};
    },
    async ping(request) {
      const req = decode(osdCodecs.ping, request.header);
      return { header: osdCodecs.ping.encode({ from: config.id, epoch: map?.epoch ?? 0, sentMs: Number(req.sentMs ?? 0) }) };
    },
  };

  server.onRequest(async (request) => {
    if (stopped) throw new StorageError('SHUTTING_DOWN', `osd.${config.id} is stopping`);
    const handler = (osdOpNames as readonly string[]).includes(request.op) ? handlers[request.op as OsdOpName] : undefined;
    if (!handler) throw new StorageError('INVALID_ARGUMENT', `unknown op ${JSON.stringify(request.op)}`);
    return handler(request);
  });

  /** Peers that share a PG with this OSD (the ones whose failure this OSD can notice). */
  function heartbeatPeers(): number[] {
    const set = new Set<number>();
    for (const pg of pgs.values()) for (const o of pg.acting) if (o >= 0 && o !== config.id) set.add(o);
    return [...set];
  }

  /** Usage for the monitors: the store's totals and, per pool, the PGs this OSD is the active primary of. */
  async function collectStats(): Promise<wire.OsdStats.$Properties> {
    const fs = await store.statfs();
    const pools = new Map<number, { pool: number; objects: number; bytes: number; pgsCounted: number }>();
    let primaryActive = 0;
    const pgStats: wire.PgStat.$Properties[] = [];
    for (const pg of pgs.values()) {
      if (pg.primary === config.id) {
        const recovery = pg.recovery;
        pgStats.push({
          pool: pg.poolId,
          seed: pg.seed,
          state: pg.reportedState,
          acting: [...pg.acting],
          objects: pg.usage?.objects ?? 0,
          bytes: pg.usage?.bytes ?? 0,
          epoch: map?.epoch ?? 0,
          degraded: pg.degradedObjects,
          recovered: recovery.recovered,
          recoveryPerSec: recovery.perSec,
        });
      }
      const usage = pg.usage;
      if (!usage) continue;
      primaryActive++;
      const entry = pools.get(pg.poolId) ?? { pool: pg.poolId, objects: 0, bytes: 0, pgsCounted: 0 };
      entry.objects += usage.objects;
      entry.bytes += usage.bytes;
      entry.pgsCounted++;
      pools.set(pg.poolId, entry);
    }
    return {
      id: config.id,
      totalBytes: fs.totalBytes,
      usedBytes: fs.usedBytes,
      availableBytes: fs.availableBytes,
      objects: fs.objects,
      pools: [...pools.values()],
      pgs: pgs.size,
      pgsPrimaryActive: primaryActive,
      pgStats,
    };
  }

  /**
   * Copies this OSD holds of PGs it is no longer a member of are dropped only once their primary reports the PG
   * clean (active, every member of a full acting set complete), so a copy is never the last to go.
   */
  async function removeCleanStrays(): Promise<void> {
    for (const [name, pg] of [...pgs]) {
      if (stopped || pg.state !== 'stray' || pg.primary < 0) continue;
      const epoch = pg.intervalEpoch;
      try {
        const reply = await peers.call(pg.primary, 'pg-info', osdCodecs.pgInfoRequest.encode({ from: config.id, pool: pg.poolId, pgSeed: pg.seed, epoch, withLog: false }));
        const info = osdCodecs.pgInfoReply.decode(reply.header);
        if (!info.clean || (info.acting ?? []).includes(config.id)) continue;
        // Serialised with map handling: the PG must still be a stray of the same interval when it goes.
        const removal = mapQueue.then(async () => {
          if (pgs.get(name) !== pg || pg.state !== 'stray' || pg.intervalEpoch !== epoch) return;
          pg.close();
          pgs.delete(name);
          await store.apply({ ops: [{ op: 'removeCollection', pg: name }] });
          logger.info('removed a stray PG copy (its PG is clean elsewhere)', { pg: name, primary: pg.primary });
        });
        mapQueue = removal.catch((error: unknown) => logger.error('stray removal failed', { pg: name, error: String(error) }));
        await removal;
      } catch {
        // The primary is busy or away: ask again later.
      }
    }
  }

  /** When each PG this OSD leads was last scrubbed (monotonic ms); first stamps spread over the interval. */
  const scrubStamps = new Map<string, { lightMs: number; deepMs: number }>();

  /**
   * Periodic scrubs: at most one PG per round, the one most overdue first, only clean PGs, never while the map's
   * `noscrub` / `nodeep-scrub` flags say no. With `autoRepair` bad copies are rewritten at once.
   */
  async function scrubDue(): Promise<void> {
    const flags = map?.flags ?? [];
    const nowMs = clock.monotonicMs();
    let due: { pg: PlacementGroup; deep: boolean; overdueMs: number } | undefined;
    for (const pg of pgs.values()) {
      if (pg.primary !== config.id || !pg.clean) continue;
      let stamps = scrubStamps.get(pg.name);
      if (!stamps) {
        const spread = (crc32c(Buffer.from(pg.name)) % 1000) / 1000;
        stamps = { lightMs: nowMs - spread * osdSettings.scrubIntervalMs, deepMs: nowMs - spread * osdSettings.deepScrubIntervalMs };
        scrubStamps.set(pg.name, stamps);
      }
      const deepOverdue = flags.includes('nodeep-scrub') ? -1 : nowMs - stamps.deepMs - osdSettings.deepScrubIntervalMs;
      const lightOverdue = flags.includes('noscrub') ? -1 : nowMs - stamps.lightMs - osdSettings.scrubIntervalMs;
      const overdueMs = Math.max(deepOverdue, lightOverdue);
      if (overdueMs >= 0 && (!due || overdueMs > due.overdueMs)) due = { pg, deep: deepOverdue >= 0, overdueMs };
    }
    if (!due || stopped) return;
    const report = await due.pg.scrub(osdSettings.autoRepair, due.deep);
    const stamps = scrubStamps.get(due.pg.name);
    if (stamps) {
      stamps.lightMs = clock.monotonicMs();
      if (due.deep) stamps.deepMs = stamps.lightMs;
    }
    const found = report.inconsistent?.length ?? 0;
    if (found > 0) {
      logger.warn(osdSettings.autoRepair ? 'periodic scrub repaired bad copies' : 'periodic scrub found bad copies (shoal pg repair to fix)', {
        pg: due.pg.name,
        deep: due.deep,
        objects: (report.inconsistent ?? []).map((i) => i.object).join(','),
        repaired: report.repaired ?? 0,
      });
    }
  }

  function every(ms: number, fn: () => void): void {
    const tick = () => {
      if (stopped) return;
      fn();
      timers.push(clock.setTimer(ms, tick));
    };
    timers.push(clock.setTimer(ms, tick));
  }

  function pingPeers(): void {
    const now = clock.monotonicMs();
    for (const peer of heartbeatPeers()) {
      if (!lastPongMs.has(peer)) lastPongMs.set(peer, now);
      peers
        .call(peer, 'ping', osdCodecs.ping.encode({ from: config.id, epoch: map?.epoch ?? 0, sentMs: clock.nowMs() }))
        .then(() => {
          lastPongMs.set(peer, clock.monotonicMs());
          if (reported.delete(peer)) void monitors.reportFailure(peer, config.id, false).catch(() => {});
        })
        .catch(() => {});
      const silentMs = now - (lastPongMs.get(peer) ?? now);
      const up = map?.osds.find((o) => o.id === peer)?.up ?? false;
      if (silentMs > peerGraceMs && up && !reported.has(peer)) {
        reported.add(peer);
        logger.warn('peer not answering; reporting it', { peer, silentMs });
        void monitors.reportFailure(peer, config.id, true).catch(() => reported.delete(peer));
      }
    }
  }

  return {
    id: config.id,
    get address() {
      return address;
    },
    map: () => map,
    pgs: () => pgs,
    async start() {
      // Every OSD must code erasure shards exactly as the others do, or shards written elsewhere would not decode
      // here: a codec that fails its golden vectors refuses to serve (CORRUPT_DATA, naming the shard).
      erasureSelfTest();
      await store.start();
      for (const name of await store.listCollections()) {
        const match = /^(\d+)\.([0-9a-f]+)$/.exec(name);
        if (!match) continue;
        const pg = await PlacementGroup.load(ctx, Number(match[1]), parseInt(match[2] ?? '0', 16));
        pgs.set(name, pg);
      }
      await server.start();
      const listenHost = config.listenAddress.slice(0, config.listenAddress.lastIndexOf(':'));
      address = config.advertiseAddress ?? `${listenHost}:${server.port}`;
      await boot();
      subscription = monitors.subscribe(`osd.${config.id}`, onMap);
      every(t.osdHeartbeatIntervalMs, () => {
        void collectStats()
          .then((stats) => monitors.heartbeat(config.id, map?.epoch ?? 0, stats))
          .then((reply) => {
            if (map && Number(reply.epoch ?? 0) > map.epoch) void monitors.getMap().then(onMap, () => {});
          })
          .catch(() => {});
      });
      every(peerPingIntervalMs, pingPeers);
      let scrubbing: Promise<void> | undefined;
      every(Math.min(60_000, Math.max(200, Math.floor(Math.min(osdSettings.scrubIntervalMs, osdSettings.deepScrubIntervalMs) / 20))), () => {
        scrubbing ??= scrubDue()
          .catch((error: unknown) => logger.info('periodic scrub failed; will retry', { error: String(error) }))
          .finally(() => (scrubbing = undefined));
      });
      let strayCheck: Promise<void> | undefined;
      every(Math.max(1000, t.osdHeartbeatIntervalMs * 3), () => {
        strayCheck ??= removeCleanStrays().finally(() => (strayCheck = undefined));
      });
      logger.info('osd started', { address, pgs: pgs.size });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const timer of timers) timer.cancel();
      subscription?.stop();
      // Tell the monitors at once (as Ceph's "mark me down"), so peers need not wait out the grace period.
      if (address) {
        await Promise.race([
          monitors.command({ osdDown: { ids: [config.id], reason: 'shutdown' } }).catch(() => {}),
          new Promise<void>((resolve) => clock.setTimer(2000, resolve)),
        ]);
      }
      for (const pg of pgs.values()) pg.close();
      watches.dropAll('');
      await server.stop();
      await mapQueue;
      pool.close();
      monitors.close();
      await store.stop();
    },
  };
}



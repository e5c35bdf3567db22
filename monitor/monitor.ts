/**
 * A monitor: one member of the Raft quorum that keeps the cluster map. `createMonitor(config, deps)` builds it;
 * `monitor/main.ts` (via `shoal mon`) runs it as a daemon, tests start it in-process.
 *
 * Reads (GetMap, Subscribe, Status) are answered from this monitor's committed state, so they keep working without a
 * quorum. Writes (commands, OSD boots, failure decisions) go through the leader: a follower forwards them; with no
 * leader reachable they fail with NO_QUORUM within the command timeout instead of hanging.
 */
import { join } from 'node:path';
import {
  StorageError,
  decodeClusterMap,
  decodeMonitorCommand,
  diffClusterMap,
  emptyClusterMap,
  encodeClusterMap,
  encodeMonitorCommand,
  monitorRpc,
  type ClusterConfig,
  type ClusterMap,
  type ClusterMapIncremental,
  type Clock,
  type Entry,
  type Logger,
  type MonitorCommand,
  type Random,
  type Snapshot,
  type Startable,
  type UnaryRpc,
  wire,
} from '../src/index.js';
import type { Role } from '../src/consensus/index.js';
import { RpcClient, RpcServer, type StreamSink } from '../src/net/index.js';
import { applyCommand } from './map/commands.js';
import { FailureDetector } from './map/failure-detector.js';
import { Quorum } from './quorum.js';
import { RaftStore } from './store/raft-store.js';

export interface MonitorConfig {
  /** This monitor's name in `cluster.monitors`. */
  id: string;
  cluster: ClusterConfig;
  /** Directory for this monitor's LevelDB store. */
  dataDir: string;
  /** Listen address; defaults to this monitor's address in the config. */
  listenAddress?: string;
}

export interface MonitorDeps {
  clock: Clock;
  random: Random;
  logger: Logger;
}

export interface Monitor extends Startable {
  readonly id: string;
  readonly port: number;
  map(): ClusterMap;
  role(): Role;
  leader(): string;
}

interface Waiter {
  term: number;
  resolve(reply: wire.CommandReply.$Properties): void;
  reject(error: StorageError): void;
}

interface Subscriber {
  sink: StreamSink<wire.MapUpdate.$Properties>;
  epoch: number;
}

export function createMonitor(config: MonitorConfig, deps: MonitorDeps): Monitor {
  const { cluster } = config;
  const self = cluster.monitors.find((m) => m.name === config.id);
  if (!self) throw new StorageError('INVALID_ARGUMENT', `monitor ${config.id} is not listed in the config's monitors`);
  const logger = deps.logger;
  const t = cluster.timeouts;
  const electionTimeoutMs = t.tickMs * t.electionTicks;

  let map: ClusterMap = emptyClusterMap(cluster.fsid);
  /** epoch -> the incremental that produced it; bounded by `incrementalsKept`. */
  const history = new Map<number, ClusterMapIncremental>();
  const waiters = new Map<number, Waiter>();
  const subscribers = new Set<Subscriber>();
  /** Latest self-report of each OSD (usage); memory only, refreshed by heartbeats. */
  const osdStats = new Map<number, wire.OsdStats.$Properties>();
  const detector = new FailureDetector(t);
  const peers = new Map<string, RpcClient>();
  let role: Role = 'follower';
  let leader = '';
  let detectorTimer: ReturnType<Clock['setTimer']> | undefined;
  let stopped = false;

  const store = new RaftStore(join(config.dataDir, 'store'));
  const server = new RpcServer({ address: config.listenAddress ?? self.address, logger });

  function publish(next: ClusterMap): void {
    const previous = map;
    map = next;
    if (next.epoch === previous.epoch) return;
    const incremental = previous.epoch === 0 ? undefined : diffClusterMap(previous, next);
    if (incremental) history.set(next.epoch, incremental);
    for (const epoch of history.keys()) {
      if (history.size <= cluster.monitor.incrementalsKept) break;
      history.delete(epoch);
    }
    for (const subscriber of subscribers) sendUpdates(subscriber);
  }

  /** Brings one subscriber up to the current epoch: incrementals when history reaches back far enough, else the full map. */
  function sendUpdates(subscriber: Subscriber): void {
    if (subscriber.sink.closed || subscriber.epoch >= map.epoch || map.epoch === 0) return;
    const reachesBack = subscriber.epoch > 0 && history.has(subscriber.epoch + 1);
    if (reachesBack) {
      for (let epoch = subscriber.epoch + 1; epoch <= map.epoch; epoch++) {
        const incremental = history.get(epoch);
        if (!incremental) break;
        subscriber.sink.write({ incremental });
        subscriber.epoch = epoch;
      }
    }
    if (subscriber.epoch < map.epoch) {
      subscriber.sink.write({ full: encodeClusterMap(map) });
      subscriber.epoch = map.epoch;
    }
  }

  const quorum = new Quorum(
    {
      id: config.id,
      peers: cluster.monitors,
      tickMs: t.tickMs,
      electionTicks: t.electionTicks,
      heartbeatTicks: t.heartbeatTicks,
      snapshotEveryEntries: cluster.monitor.snapshotEveryEntries,
      rpcTimeoutMs: Math.max(t.tickMs * 5, 500),
    },
    store,
    {
      apply(entry: Entry) {
        const waiter = waiters.get(entry.index);
        waiters.delete(entry.index);
        if (waiter && waiter.term !== entry.term) {
          waiter.reject(new StorageError('NOT_LEADER', 'leadership changed before the command committed; it was not applied'));
        }
        const own = waiter && waiter.term === entry.term ? waiter : undefined;
        if (entry.type !== 'normal') return;
        try {
          const result = applyCommand(map, decodeMonitorCommand(entry.data));
          publish(result.map);
          own?.resolve({ epoch: map.epoch, message: result.message, id: result.id ?? 0 });
        } catch (error) {
          // Deterministic on every monitor: the command is refused everywhere and the map stays as it was.
          own?.reject(StorageError.from(error));
        }
      },
      restore(snapshot: Snapshot) {
        history.clear();
        publish(decodeClusterMap(snapshot.data));
      },
      snapshotData: () => encodeClusterMap(map),
      roleChanged(newRole: Role, newLeader: string) {
        const wasLeader = role === 'leader';
        role = newRole;
        leader = newLeader;
        logger.info('role changed', { role, leader, term: quorum.node.term });
        if (role === 'leader' && !wasLeader) detector.reset(deps.clock.nowMs());
        if (wasLeader && role !== 'leader') {
          for (const [index, waiter] of waiters) {
            waiter.reject(new StorageError('NOT_LEADER', 'this monitor lost leadership; the command may not have been applied'));
            waiters.delete(index);
          }
        }
      },
    },
    { clock: deps.clock, random: deps.random, logger },
  );

  function peerClient(name: string): RpcClient | undefined {
    const address = cluster.monitors.find((m) => m.name === name)?.address;
    if (!address) return undefined;
    let client = peers.get(name);
    if (!client) peers.set(name, (client = new RpcClient(address)));
    return client;
  }

  /** A follower's answer from the leader; undefined when this monitor leads, knows no leader, or cannot reach it. */
  async function askLeader<Req, Res>(rpc: UnaryRpc<Req, Res>, request: Req, timeoutMs: number): Promise<Res | undefined> {
    if (role === 'leader' || !leader || leader === config.id) return undefined;
    return peerClient(leader)?.call(rpc, request, { timeoutMs }).catch(() => undefined);
  }

  async function sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => deps.clock.setTimer(ms, resolve));
  }

  /** Proposes on this (leader) monitor and waits for the command to be applied. */
  function proposeLocally(command: MonitorCommand, deadlineMs: number): Promise<wire.CommandReply.$Properties> {
    const node = quorum.node;
    if (node.hasQuorumContact && !node.hasQuorumContact()) {
      throw new StorageError('NO_QUORUM', 'the leader has not heard from a majority of monitors recently');
    }
    const stamped: MonitorCommand = { ...command, timestampMs: deps.clock.nowMs() };
    // Refuse invalid commands at once, without a round through the log; applying re-checks deterministically.
    const dryRun = applyCommand(map, stamped);
    if (dryRun.map === map) return Promise.resolve({ epoch: map.epoch, message: dryRun.message, id: dryRun.id ?? 0 });
    const { index, term } = quorum.propose(encodeMonitorCommand(stamped));
    return new Promise((resolve, reject) => {
      const timer = deps.clock.setTimer(Math.max(0, deadlineMs - deps.clock.monotonicMs()), () => {
        if (waiters.get(index) !== waiter) return;
        waiters.delete(index);
        reject(new StorageError('NO_QUORUM', `command not committed within ${t.commandTimeoutMs} ms (no majority of monitors?)`));
      });
      const waiter: Waiter = {
        term,
        resolve: (reply) => {
          timer.cancel();
          resolve(reply);
        },
        reject: (error) => {
          timer.cancel();
          reject(error);
        },
      };
      waiters.set(index, waiter);
    });
  }

  /** Runs a command on the leader: locally, or forwarded; waits for a leader up to the deadline. */
  async function runCommand(command: MonitorCommand, forwarded: boolean): Promise<wire.CommandReply.$Properties> {
    const deadlineMs = deps.clock.monotonicMs() + t.commandTimeoutMs;
    let lastError: StorageError | undefined;
    while (!stopped) {
      if (role === 'leader') return proposeLocally(command, deadlineMs);
      const remainingMs = deadlineMs - deps.clock.monotonicMs();
      if (leader && leader !== config.id && !forwarded) {
        const client = peerClient(leader);
        if (client) {
          try {
            return await client.call(monitorRpc.command, { command, forwarded: true }, { timeoutMs: Math.max(remainingMs, 1) });
          } catch (error) {
            lastError = StorageError.from(error);
            if (lastError.code !== 'UNAVAILABLE' && lastError.code !== 'NOT_LEADER') throw lastError;
          }
        }
      } else if (forwarded) {
        throw new StorageError('NOT_LEADER', `monitor ${config.id} is not the leader`);
      }
      // No usable leader: wait a little, but never past the deadline or more than two election timeouts.
      if (remainingMs <= 0 || deps.clock.monotonicMs() + t.tickMs > deadlineMs) break;
      if (!leader && deps.clock.monotonicMs() - (deadlineMs - t.commandTimeoutMs) > 2 * electionTimeoutMs) break;
      await sleep(t.tickMs);
    }
    throw new StorageError('NO_QUORUM', `no monitor leader reachable${lastError ? ` (${lastError.message})` : ''}`);
  }

  function checkDetector(): void {
    if (stopped) return;
    if (role === 'leader' && map.epoch > 0) {
      for (const command of detector.decide(map, deps.clock.nowMs())) {
        runCommand(command, false).catch((error: unknown) =>
          logger.warn('failure detector command failed', { error: String(error) }),
        );
      }
    }
    detectorTimer = deps.clock.setTimer(Math.max(t.tickMs, 250), checkDetector);
  }

  let bootstrapPending = false;
  function maybeBootstrap(): void {
    if (role !== 'leader' || map.epoch !== 0 || bootstrapPending) return;
    bootstrapPending = true;
    runCommand({ init: { fsid: cluster.fsid, monitors: cluster.monitors } }, false)
      .catch((error: unknown) => logger.warn('bootstrap failed; will retry', { error: String(error) }))
      .finally(() => (bootstrapPending = false));
  }

  server.unary(monitorRpc.getMap, async (request) => {
    // A follower learns of a commit a heartbeat after the leader acknowledged it, so a client that reads right after
    // its command (or another process's) could miss it. The follower asks the leader, and answers from its own map
    // only when the leader cannot be reached: reads stay available without a quorum.
    if (!request.local) {
      const fromLeader = await askLeader(monitorRpc.getMap, { local: true }, Math.max(t.tickMs, t.monitorCallTimeoutMs / 2));
      if (fromLeader?.map && Number(fromLeader.epoch ?? 0) >= map.epoch) return fromLeader;
    }
    if (map.epoch === 0) throw new StorageError('UNAVAILABLE', 'the cluster map is not initialised yet');
    return { map: encodeClusterMap(map), epoch: map.epoch };
  });
  server.serverStream(monitorRpc.subscribe, (request, sink) => {
    const subscriber: Subscriber = { sink, epoch: Number(request.fromEpoch ?? 0) };
    if (subscriber.epoch > map.epoch) subscriber.epoch = 0;
    subscribers.add(subscriber);
    sink.onClose(() => subscribers.delete(subscriber));
    sendUpdates(subscriber);
  });
  server.unary(monitorRpc.command, async (request) => {
    if (!request.command) throw new StorageError('INVALID_ARGUMENT', 'no command');
    return runCommand(request.command, request.forwarded ?? false);
  });
  server.unary(monitorRpc.raft, async (request) => {
    quorum.receiveBatch(request.messages ?? []);
    return {};
  });
  server.unary(monitorRpc.heartbeat, async (request) => {
    if (request.stats) osdStats.set(request.id ?? 0, { ...request.stats, id: request.id ?? 0, reportedMs: deps.clock.nowMs() });
    if (role === 'leader') detector.heartbeat(request.id ?? 0, deps.clock.nowMs());
    else if (leader) {
      peerClient(leader)?.call(monitorRpc.heartbeat, request, { timeoutMs: t.monitorCallTimeoutMs }).catch(() => {});
    }
    return { epoch: map.epoch };
  });
  server.unary(monitorRpc.failureReport, async (request) => {
    if (role === 'leader') detector.report(request.target ?? 0, request.reporter ?? 0, request.stillFailed ?? false, deps.clock.nowMs());
    else if (leader) {
      peerClient(leader)?.call(monitorRpc.failureReport, request, { timeoutMs: t.monitorCallTimeoutMs }).catch(() => {});
    }
    return {};
  });
  server.unary(monitorRpc.stats, async () => {
    const fromLeader = await askLeader(monitorRpc.stats, {}, t.monitorCallTimeoutMs);
    if (fromLeader) return fromLeader;
    const known = new Set(map.osds.map((o) => o.id));
    return { osds: [...osdStats.values()].filter((s) => known.has(s.id ?? -1)).sort((a, b) => (a.id ?? 0) - (b.id ?? 0)) };
  });
  server.unary(monitorRpc.status, async () => {
    const node = quorum.node;
    return {
      name: config.id,
      role,
      term: node.term,
      leader,
      commitIndex: node.commitIndex,
      appliedIndex: quorum.appliedIndex,
      epoch: map.epoch,
      logEntries: await store.countEntries(),
      snapshotIndex: quorum.snapshotIndex,
      quorum: role === 'leader' ? (node.hasQuorumContact?.() ?? true) : leader !== '',
    };
  });

  let bootstrapTimer: ReturnType<Clock['setTimer']> | undefined;
  function bootstrapLoop(): void {
    if (stopped) return;
    maybeBootstrap();
    bootstrapTimer = deps.clock.setTimer(electionTimeoutMs, bootstrapLoop);
  }

  return {
    id: config.id,
    get port() {
      return server.port;
    },
    map: () => map,
    role: () => role,
    leader: () => leader,
    async start() {
      await quorum.start();
      await server.start();
      checkDetector();
      bootstrapLoop();
      logger.info('monitor started', { address: config.listenAddress ?? self.address, fsid: cluster.fsid });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      detectorTimer?.cancel();
      bootstrapTimer?.cancel();
      for (const subscriber of subscribers) subscriber.sink.end();
      for (const [index, waiter] of waiters) {
        waiter.reject(new StorageError('SHUTTING_DOWN', 'monitor stopping'));
        waiters.delete(index);
      }
      await server.stop();
      await quorum.stop();
      for (const client of peers.values()) client.close();
    },
  };
}

/**
 * Talking to the monitors from anywhere (CLI, OSDs, gateways): any monitor answers reads and accepts commands (it
 * forwards them to the leader), so the client simply tries the monitors in turn, starting with the last one that
 * answered, until one does or all fail. Map subscriptions follow the same rule and reconnect on their own.
 */
import { StorageError, silentLogger, type Logger, type MonitorAddress } from '../common/index.js';
import {
  applyIncremental,
  decodeClusterMap,
  monitorRpc,
  type ClusterMap,
  type MonitorCommand,
  type UnaryRpc,
  wire,
} from '../protocol/index.js';
import { RpcClient } from '../net/index.js';

export interface MonitorClientOptions {
  /** Time allowed for a read (map, status) from one monitor. */
  callTimeoutMs: number;
  /** Time allowed for a command, which may wait for an election. */
  commandTimeoutMs: number;
  logger?: Logger;
}

export interface MonitorStatusOrError {
  name: string;
  address: string;
  status?: wire.MonitorStatus.$Properties;
  error?: StorageError;
}

/** Applies one subscription update to the map a follower holds. */
export function applyMapUpdate(current: ClusterMap | undefined, update: wire.MapUpdate.$Properties): ClusterMap {
  if (update.full && update.full.length > 0) return decodeClusterMap(update.full);
  if (update.incremental && current) return applyIncremental(current, update.incremental);
  throw new StorageError('STALE_EPOCH', 'incremental map update without a base map');
}

const retryable = new Set(['UNAVAILABLE', 'TIMEOUT', 'SHUTTING_DOWN']);

export class MonitorClient {
  readonly #monitors: MonitorAddress[];
  readonly #clients: RpcClient[];
  readonly #options: MonitorClientOptions;
  readonly #logger: Logger;
  #preferred = 0;
  #closed = false;

  constructor(monitors: MonitorAddress[], options: MonitorClientOptions) {
    if (monitors.length === 0) throw new StorageError('INVALID_ARGUMENT', 'no monitors configured');
    this.#monitors = monitors;
    this.#clients = monitors.map((m) => new RpcClient(m.address));
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Calls monitors in turn until one answers; errors other than "unreachable" are returned at once. */
  async #any<Req, Res>(rpc: UnaryRpc<Req, Res>, request: Req, timeoutMs: number): Promise<Res> {
    let lastError: StorageError | undefined;
    for (let attempt = 0; attempt < this.#clients.length; attempt++) {
      const index = (this.#preferred + attempt) % this.#clients.length;
      const client = this.#clients[index];
      if (!client) continue;
      try {
        const response = await client.call(rpc, request, { timeoutMs });
        this.#preferred = index;
        return response;
      } catch (error) {
        lastError = StorageError.from(error);
        if (!retryable.has(lastError.code)) throw lastError;
        this.#logger.debug('monitor unreachable, trying the next', { monitor: this.#monitors[index]?.name, error: lastError.message });
      }
    }
    throw new StorageError('UNAVAILABLE', `no monitor answered (${this.#monitors.map((m) => m.address).join(', ')}): ${lastError?.message ?? ''}`);
  }

  async getMap(): Promise<ClusterMap> {
    const reply = await this.#any(monitorRpc.getMap, {}, this.#options.callTimeoutMs);
    return decodeClusterMap(reply.map ?? new Uint8Array());
  }

  async command(command: MonitorCommand): Promise<wire.CommandReply.$Properties> {
    // The monitor itself bounds the wait (NO_QUORUM); the extra second covers the hop.
    return this.#any(monitorRpc.command, { command }, this.#options.commandTimeoutMs + 1000);
  }

  async heartbeat(id: number, epoch: number, stats?: wire.OsdStats.$Properties): Promise<wire.HeartbeatReply.$Properties> {
    return this.#any(monitorRpc.heartbeat, { id, epoch, ...(stats ? { stats } : {}) }, this.#options.callTimeoutMs);
  }

  /** The OSDs' latest self-reports (usage), as the leader knows them. */
  async stats(): Promise<wire.OsdStats.$Properties[]> {
    return (await this.#any(monitorRpc.stats, {}, this.#options.callTimeoutMs)).osds ?? [];
  }

  async reportFailure(target: number, reporter: number, stillFailed: boolean): Promise<void> {
    await this.#any(monitorRpc.failureReport, { target, reporter, stillFailed }, this.#options.callTimeoutMs);
  }

  /** The status of every monitor, each asked directly (an unreachable one is reported with its error). */
  async statusAll(): Promise<MonitorStatusOrError[]> {
    return Promise.all(
      this.#monitors.map(async (monitor, i): Promise<MonitorStatusOrError> => {
        try {
          const status = await (this.#clients[i] as RpcClient).call(monitorRpc.status, {}, { timeoutMs: this.#options.callTimeoutMs });
          return { ...monitor, status };
        } catch (error) {
          return { ...monitor, error: StorageError.from(error) };
        }
      }),
    );
  }

  /**
   * Follows the map: calls `onMap` with every new epoch, reconnecting to another monitor when the stream breaks.
   * Returns a handle to stop following.
   */
  subscribe(subscriber: string, onMap: (map: ClusterMap) => void): { stop(): void } {
    let current: ClusterMap | undefined;
    let stream: { cancel(): void } | undefined;
    let stopped = false;
    let retryTimer: NodeJS.Timeout | undefined;
    const connect = (index: number) => {
      if (stopped || this.#closed) return;
      const client = this.#clients[index % this.#clients.length] as RpcClient;
      stream = client.stream(monitorRpc.subscribe, { fromEpoch: current?.epoch ?? 0, subscriber }, {
        onMessage: (update) => {
          try {
            const next = applyMapUpdate(current, update);
            if (current && next.epoch <= current.epoch) return;
            current = next;
            onMap(next);
          } catch (error) {
            this.#logger.warn('bad map update; resubscribing', { error: String(error) });
            current = undefined;
            stream?.cancel();
          }
        },
        onEnd: () => {
          if (stopped) return;
          retryTimer = setTimeout(() => connect(index + 1), 200);
        },
      });
    };
    connect(this.#preferred);
    return {
      stop: () => {
        stopped = true;
        if (retryTimer) clearTimeout(retryTimer);
        stream?.cancel();
      },
    };
  }

  close(): void {
    this.#closed = true;
    for (const client of this.#clients) client.close();
  }
}

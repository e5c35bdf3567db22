/**
 * The cluster configuration file (`shoal.conf`, JSON): where the monitors are and the timeouts every daemon and
 * client shares. Parsing is pure; finding the file (`--conf`, `$SHOAL_CONF`, `./.shoal/shoal.conf`) is the CLI's job.
 * Unknown keys are rejected so a typo does not silently fall back to a default.
 */
import { StorageError } from './errors.js';

export interface MonitorAddress {
  name: string;
  /** host:port of the monitor's gRPC endpoint. */
  address: string;
}

export interface Timeouts {
  /** One Raft tick. Elections time out after electionTicks..2*electionTicks ticks. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** How long a monitor command may take before the caller gets TIMEOUT or NO_QUORUM. */
  commandTimeoutMs: number;
  /** How long a client or daemon waits for a monitor call (map fetch, status). */
  monitorCallTimeoutMs: number;
  /** OSD -> monitor heartbeat interval; an OSD silent for osdGraceMs is marked down. */
  osdHeartbeatIntervalMs: number;
  osdGraceMs: number;
  /** A down OSD is marked out after this long (unless the `noout` flag is set), which starts data movement. */
  downOutIntervalMs: number;
  /** Distinct peers that must report an OSD failed before it is marked down. */
  failureReportersMin: number;
}

export interface MonitorSettings {
  /** Take a snapshot of the map (and compact the Raft log) every this many applied entries. */
  snapshotEveryEntries: number;
  /** Map versions kept in memory for incremental subscriptions. */
  incrementalsKept: number;
}

export interface ClusterConfig {
  fsid: string;
  monitors: MonitorAddress[];
  timeouts: Timeouts;
  monitor: MonitorSettings;
}

export const defaultTimeouts: Timeouts = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  commandTimeoutMs: 10_000,
  monitorCallTimeoutMs: 5_000,
  osdHeartbeatIntervalMs: 1_000,
  osdGraceMs: 20_000,
  downOutIntervalMs: 600_000,
  failureReportersMin: 2,
};

export const defaultMonitorSettings: MonitorSettings = {
  snapshotEveryEntries: 1_000,
  incrementalsKept: 500,
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new StorageError('INVALID_ARGUMENT', `config ${where}: unknown key(s) ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`);
  }
}

function numbers<T extends object>(where: string, raw: unknown, defaults: T): T {
  if (raw === undefined) return { ...defaults };
  if (!isObject(raw)) throw new StorageError('INVALID_ARGUMENT', `config ${where} must be an object`);
  checkKeys(where, raw, Object.keys(defaults));
  const out: Record<string, number> = { ...(defaults as Record<string, number>) };
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new StorageError('INVALID_ARGUMENT', `config ${where}.${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    out[key] = value;
  }
  return out as T;
}

export function isHostPort(address: string): boolean {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  return match !== null && Number(match[2]) > 0 && Number(match[2]) < 65536;
}

export function parseClusterConfig(text: string, source = 'shoal.conf'): ClusterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new StorageError('INVALID_ARGUMENT', `${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(raw)) throw new StorageError('INVALID_ARGUMENT', `${source} must hold a JSON object`);
  checkKeys('', raw, ['fsid', 'monitors', 'timeouts', 'monitor', 'osd', 's3', 'nbd', 'fs']);
  const fsid = raw['fsid'];
  if (typeof fsid !== 'string' || !/^[0-9a-f-]{8,64}$/.test(fsid)) {
    throw new StorageError('INVALID_ARGUMENT', `${source}: fsid must be a lowercase hex/uuid string`);
  }
  const monitorsRaw = raw['monitors'];
  if (!Array.isArray(monitorsRaw) || monitorsRaw.length === 0 || monitorsRaw.length > 7) {
    throw new StorageError('INVALID_ARGUMENT', `${source}: monitors must list 1 to 7 monitors`);
  }
  const monitors = monitorsRaw.map((m: unknown, i): MonitorAddress => {
    if (!isObject(m) || typeof m['name'] !== 'string' || typeof m['address'] !== 'string') {
      throw new StorageError('INVALID_ARGUMENT', `${source}: monitors[${i}] must be {"name": "...", "address": "host:port"}`);
    }
    checkKeys(`monitors[${i}]`, m, ['name', 'address']);
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(m['name'])) {
      throw new StorageError('INVALID_ARGUMENT', `${source}: monitor name ${JSON.stringify(m['name'])} must be [a-z0-9_-], 1-32 chars`);
    }
    if (!isHostPort(m['address'])) {
      throw new StorageError('INVALID_ARGUMENT', `${source}: monitor ${m['name']} address ${JSON.stringify(m['address'])} is not host:port`);
    }
    return { name: m['name'], address: m['address'] };
  });
  if (new Set(monitors.map((m) => m.name)).size !== monitors.length) {
    throw new StorageError('INVALID_ARGUMENT', `${source}: monitor names must be unique`);
  }
  const timeouts = numbers('timeouts', raw['timeouts'], defaultTimeouts);
  if (timeouts.electionTicks <= timeouts.heartbeatTicks) {
    throw new StorageError('INVALID_ARGUMENT', `${source}: timeouts.electionTicks must exceed timeouts.heartbeatTicks`);
  }
  const monitor = numbers('monitor', raw['monitor'], defaultMonitorSettings);
  return { fsid, monitors, timeouts, monitor };
}

export function clusterConfigToText(config: ClusterConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

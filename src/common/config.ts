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

/** The `osd` section: recovery throttling and scrub scheduling, the same for every OSD of the cluster. */
export interface OsdSettings {
  /** Recovery and backfill ops in flight per OSD (client ops are never held back by it). */
  recoveryOpsMax: number;
  /** Pause after each recovery op (0: none), so client I/O comes first. */
  recoverySleepMs: number;
  /** Each PG is light-scrubbed (object lists and versions across members) this often. */
  scrubIntervalMs: number;
  /** Each PG is deep-scrubbed (every copy re-read and compared) this often. */
  deepScrubIntervalMs: number;
  /** Rewrite bad copies found by periodic scrubs from good ones (otherwise the PG shows +inconsistent). */
  autoRepair: boolean;
}

export const defaultOsdSettings: OsdSettings = {
  recoveryOpsMax: 1,
  recoverySleepMs: 0,
  scrubIntervalMs: 24 * 3600_000,
  deepScrubIntervalMs: 7 * 24 * 3600_000,
  autoRepair: false,
};

export interface ClusterConfig {
  fsid: string;
  monitors: MonitorAddress[];
  timeouts: Timeouts;
  monitor: MonitorSettings;
  /** Absent: the defaults. */
  osd?: OsdSettings;
}

function parseOsdSettings(raw: unknown): OsdSettings {
  if (!isObject(raw)) throw new StorageError('INVALID_ARGUMENT', 'config osd must be an object');
  checkKeys('osd', raw, Object.keys(defaultOsdSettings));
  const out: OsdSettings = { ...defaultOsdSettings };
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'autoRepair') {
      if (typeof value !== 'boolean') throw new StorageError('INVALID_ARGUMENT', `config osd.autoRepair must be true or false, got ${JSON.stringify(value)}`);
      out.autoRepair = value;
    } else if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || (key === 'recoveryOpsMax' && value === 0)) {
      throw new StorageError('INVALID_ARGUMENT', `config osd.${key} must be a ${key === 'recoveryOpsMax' ? 'positive' : 'non-negative'} integer, got ${JSON.stringify(value)}`);
    } else {
      (out as unknown as Record<string, number>)[key] = value;
    }
  }
  return out;
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
  return { fsid, monitors, timeouts, monitor, ...(raw['osd'] !== undefined ? { osd: parseOsdSettings(raw['osd']) } : {}) };
}

export function clusterConfigToText(config: ClusterConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

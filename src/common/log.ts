/**
 * Log lines carry a time, a level, the daemon name, an optional request id and key=value fields; with `json: true`
 * each line is one JSON object instead. Fields whose names look like secrets are never written.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` (for example `{ req: id }`) to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  name: string;
  level?: LogLevel;
  json?: boolean;
  write?: (line: string) => void;
  nowMs?: () => number;
}

const secretField = /secret|password|passwd|token|key$/i;

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(levelRank, value);
}

function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = secretField.test(key) ? '[redacted]' : value instanceof Error ? value.message : value;
  }
  return out;
}

function formatValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text !== undefined && /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text ?? String(value));
}

export function createLogger(options: LoggerOptions, baseFields: LogFields = {}): Logger {
  const minRank = levelRank[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const nowMs = options.nowMs ?? Date.now;

  function emit(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (levelRank[level] < minRank) return;
    const all = redact({ ...baseFields, ...fields });
    const time = new Date(nowMs()).toISOString();
    if (options.json) {
      write(JSON.stringify({ time, level, name: options.name, msg: message, ...all }));
      return;
    }
    const pairs = Object.entries(all).map(([k, v]) => ` ${k}=${formatValue(v)}`).join('');
    write(`${time} ${level.toUpperCase().padEnd(5)} ${options.name} ${message}${pairs}`);
  }

  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...baseFields, ...fields }),
  };
}

/** A logger that drops everything (for tests and simulations that check behaviour, not output). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

import { IntegrationSyncError } from './errors.js';

/** One log method in pino's shape: an object of fields first, then an optional message. */
export type LogFn = (obj: Record<string, unknown>, msg?: string) => void;

/**
 * A pino-compatible logger. Pass a pino instance as is; any object with these four methods works.
 * The library logs structured fields only, and never a token, secret or raw body.
 */
export interface Logger {
  /** Per-event detail (handled, skipped, published); off in most production setups. */
  debug: LogFn;
  /** Normal milestones (started, stopped, planned, refreshed). */
  info: LogFn;
  /** Something failed but will be retried or worked around. */
  warn: LogFn;
  /** Work was given up on or cannot proceed (dead letters, failed hooks, lost connections). */
  error: LogFn;
  /** Optional, as pino has it: a logger whose lines carry `bindings`. */
  child?(bindings: Record<string, unknown>): Logger;
}

const noop: LogFn = () => {};

/** The default logger: discards everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/**
 * Returns `logger.child(bindings)` where the logger supports it, else the logger itself, made safe
 * so a logger that throws can never break the library. Throws `ERR_INVALID_OPTION` when `logger` lacks one of the four methods,
 * so a wrong `logger` option fails at construction, not at the first log line.
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  assertLogger(logger);
  let child: Logger = logger;
  if (typeof logger.child === 'function') {
    try {
      const made = logger.child(bindings);
      if (isLogger(made)) child = made;
    } catch {
      // A broken child() still leaves the parent to log with.
    }
  }
  return safeLogger(child);
}

const safeLoggers = new WeakSet<Logger>();

/**
 * Wraps a logger so that a log call never throws and never leaves a rejected promise behind: a
 * broken logger must not turn a published event into a failed publish, or a dead-letter into
 * endless retries. Safe loggers are returned as they are.
 */
export function safeLogger(logger: Logger): Logger {
  if (safeLoggers.has(logger)) return logger;
  assertLogger(logger);
  const wrap =
    (level: 'debug' | 'info' | 'warn' | 'error'): LogFn =>
    (obj, msg) => {
      try {
        const result: unknown = logger[level](obj, msg);
        if (typeof (result as Promise<unknown> | undefined)?.then === 'function') (result as Promise<unknown>).then(undefined, () => {});
      } catch {
        // Logging is best effort.
      }
    };
  const safe: Logger = {
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
    child: (bindings) => childLogger(logger, bindings),
  };
  safeLoggers.add(safe);
  return safe;
}

function isLogger(value: unknown): value is Logger {
  const candidate = value as Partial<Logger> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.debug === 'function' &&
    typeof candidate.info === 'function' &&
    typeof candidate.warn === 'function' &&
    typeof candidate.error === 'function'
  );
}

function assertLogger(value: unknown): asserts value is Logger {
  if (!isLogger(value)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'logger must have debug, info, warn and error methods (pino fits)');
  }
}

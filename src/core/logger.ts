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

/** Returns `logger.child(bindings)` where the logger supports it, else the logger itself. */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return typeof logger.child === 'function' ? logger.child(bindings) : logger;
}

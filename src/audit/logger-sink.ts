import type { Logger } from '../core/logger.js';
import { IntegrationSyncError } from '../core/errors.js';
import type { AuditKind, AuditRecord, AuditSink } from './types.js';

/** A log level of a pino-compatible {@link Logger}. */
export type AuditLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Options of {@link createLoggerAuditSink}. */
export interface LoggerAuditSinkOptions {
  /**
   * Level of each line: a fixed level, or a function of the record.
   * @default `warn` for `event.rejected`, `event.dead-lettered` and `planner.skipped`, and for
   * records whose outcome is `failed`; `info` otherwise
   */
  level?: AuditLogLevel | ((record: AuditRecord) => AuditLogLevel);
  /** Key the record is logged under, so log queries can filter on `audit.kind`. @default "audit" */
  key?: string;
}

const WARN_KINDS = new Set<AuditKind>(['event.rejected', 'event.dead-lettered', 'planner.skipped']);

function defaultLevel(record: AuditRecord): AuditLogLevel {
  return WARN_KINDS.has(record.kind) || record.outcome === 'failed' ? 'warn' : 'info';
}

const LEVELS: readonly AuditLogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * An {@link AuditSink} that writes one structured line per record to a pino-compatible logger:
 * `{ audit: { kind, at, eventType, eventId, integrationId, ... } }` with the message
 * `audit <kind>`. Every field of the record is kept, including fields added by newer versions.
 *
 * @example
 * import pino from 'pino';
 * const bus = createMemoryBus({ audit: createLoggerAuditSink(pino()) });
 */
export function createLoggerAuditSink(logger: Logger, options: LoggerAuditSinkOptions = {}): AuditSink {
  if (typeof logger !== 'object' || logger === null || LEVELS.some((l) => typeof logger[l] !== 'function')) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createLoggerAuditSink: logger must have debug, info, warn and error methods (pino fits)');
  }
  const key = options.key ?? 'audit';
  if (typeof key !== 'string' || key === '') throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createLoggerAuditSink: key must be a non-empty string');
  const level = options.level ?? defaultLevel;
  if (typeof level !== 'function' && !LEVELS.includes(level)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `createLoggerAuditSink: level must be one of ${LEVELS.join(', ')} or a function`);
  }
  return {
    record(record: AuditRecord): void {
      const chosen = typeof level === 'function' ? level(record) : level;
      const method = LEVELS.includes(chosen) ? chosen : 'info';
      // A copy, so a logger that serialises later sees the record as it was.
      logger[method]({ [key]: { ...record } }, `audit ${record.kind}`);
    },
  };
}

import { describe, expect, it } from 'vitest';
import { createLoggerAuditSink, type AuditRecord } from '../../src/audit/index.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) => {
    // Serialise at once, as pino does, so later mutation would not hide a dropped field.
    lines.push({ level, obj: JSON.parse(JSON.stringify(obj)) as Record<string, unknown>, msg });
  };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

const full: AuditRecord = {
  kind: 'event.consumed',
  at: '2026-12-03T10:00:00.000Z',
  eventType: 'integration.sync.scheduled',
  eventId: 'evt-1',
  group: 'workers',
  integrationId: 'hubspot',
  connectionId: 'conn-1',
  tenantId: 'tenant-1',
  taskId: 'task-1',
  outcome: 'handled',
  reason: 'none',
  attempt: 2,
};

describe('createLoggerAuditSink', () => {
  it('writes one line per record with every field, including ones it does not know', () => {
    const { logger, lines } = recordingLogger();
    const sink = createLoggerAuditSink(logger);
    const future = { ...full, region: 'eu-west-1' } as AuditRecord;
    sink.record(full);
    sink.record(future);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual({ level: 'info', obj: { audit: full }, msg: 'audit event.consumed' });
    expect(lines[1]?.obj.audit).toEqual(future);
  });

  it('logs rejected, dead-lettered, skipped and failed records at warn', () => {
    const { logger, lines } = recordingLogger();
    const sink = createLoggerAuditSink(logger);
    sink.record({ kind: 'event.rejected', at: full.at, outcome: 'invalid' });
    sink.record({ kind: 'event.dead-lettered', at: full.at, outcome: 'max_attempts' });
    sink.record({ kind: 'planner.skipped', at: full.at, outcome: 'invalid' });
    sink.record({ kind: 'token.refresh', at: full.at, outcome: 'failed' });
    sink.record({ kind: 'token.refresh', at: full.at, outcome: 'succeeded' });
    expect(lines.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'warn', 'info']);
  });

  it('honours a fixed or computed level and a custom key', () => {
    const { logger, lines } = recordingLogger();
    createLoggerAuditSink(logger, { level: 'debug', key: 'trail' }).record(full);
    createLoggerAuditSink(logger, { level: (r) => (r.attempt === 2 ? 'error' : 'info') }).record(full);
    expect(lines[0]).toMatchObject({ level: 'debug', obj: { trail: full } });
    expect(lines[1]?.level).toBe('error');
  });

  it('logs a copy, so a caller mutating the record later does not rewrite the line', () => {
    const seen: Record<string, unknown>[] = [];
    const keep = (obj: Record<string, unknown>): void => {
      seen.push(obj);
    };
    const sink = createLoggerAuditSink({ debug: keep, info: keep, warn: keep, error: keep });
    const record: AuditRecord = { ...full };
    sink.record(record);
    record.outcome = 'changed';
    expect((seen[0]?.audit as AuditRecord).outcome).toBe('handled');
  });

  it('refuses a logger without the four methods and a bad level', () => {
    const bad: unknown[] = [null, {}, { info: () => {} }];
    for (const logger of bad) {
      try {
        createLoggerAuditSink(logger as Logger);
        expect.unreachable('accepted a bad logger');
      } catch (error) {
        expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
      }
    }
    const { logger } = recordingLogger();
    expect(() => createLoggerAuditSink(logger, { level: 'loud' as never })).toThrow(/level/);
  });
});

import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/types.js';
import { safeAudit } from '../../src/bus/delivery.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createEvent } from '../../src/events/envelope.js';
import { createPostgresAuditStore } from '../../src/postgres/index.js';
import { testAuditStore } from '../../src/testing/audit-conformance.js';
import { migratedSchemas, newPool } from './helpers.js';

const pool = newPool();
const { migrated, drop } = migratedSchemas(pool, 'pga');

// Stores of one namespace share a schema, so the suite's "two replicas" see the same rows.
testAuditStore({
  name: 'postgres',
  create: async (namespace) => createPostgresAuditStore({ pool, schema: await migrated(namespace) }),
  cleanup: async (namespace) => {
    await drop(namespace);
  },
});

const record = (fields: Partial<AuditRecord> = {}): AuditRecord => ({
  kind: 'event.published',
  at: new Date().toISOString(),
  outcome: 'published',
  ...fields,
});

describe('createPostgresAuditStore', () => {
  it('survives a restart: a new pool sees the earlier trail', async () => {
    const schema = await migrated('restart');
    const before = newPool(2);
    await createPostgresAuditStore({ pool: before, schema }).record(record({ integrationId: 'hubspot', connectionId: 'c1' }));
    await before.end();
    const after = newPool(2);
    try {
      const got = await createPostgresAuditStore({ pool: after, schema }).query({ connectionId: 'c1' });
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ integrationId: 'hubspot', kind: 'event.published' });
    } finally {
      await after.end();
    }
  });

  it('records what a real bus publishes and consumes', async () => {
    const schema = await migrated('bus');
    const audit = createPostgresAuditStore({ pool, schema });
    const bus = createMemoryBus({ audit });
    await bus.subscribe({ group: 'g', types: ['integration.sync.scheduled'], handler: async () => {} });
    await bus.publish(
      createEvent('integration.sync.scheduled', { integrationId: 'hubspot', tenantId: 't1', trigger: 'schedule', scheduledAt: new Date().toISOString() }, { id: 'e-1' }),
    );
    const deadline = Date.now() + 10_000;
    let kinds: string[] = [];
    while (Date.now() < deadline) {
      kinds = (await audit.query({ integrationId: 'hubspot', tenantId: 't1' })).map((r) => `${r.kind}:${r.outcome}`);
      if (kinds.length >= 2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(kinds.sort()).toEqual(['event.consumed:handled', 'event.published:published']);
    await bus.close();
  });

  it('keeps fields it has no column for, and prunes by age', async () => {
    const schema = await migrated('extra');
    const audit = createPostgresAuditStore({ pool, schema });
    const future = { ...record({ at: '2026-01-01T00:00:00.000Z' }), region: 'eu-west-1', nested: { a: [1] } } as AuditRecord;
    await audit.record(future);
    await audit.record(record({ at: '2026-06-01T00:00:00.000Z', outcome: 'kept' }));
    expect((await audit.query())[0]).toEqual(future);
    expect(await audit.prune('2026-03-01T00:00:00Z')).toBe(1);
    expect((await audit.query()).map((r) => r.outcome)).toEqual(['kept']);
    await expect(audit.prune('whenever')).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  it('rejects (never throws synchronously) when the database fails, and safeAudit only logs it', async () => {
    const schema = await migrated('down');
    const dead = newPool(1);
    await dead.end();
    const audit = createPostgresAuditStore({ pool: dead, schema });
    let pending: Promise<void> | undefined;
    expect(() => {
      pending = audit.record(record()) as Promise<void>;
    }).not.toThrow();
    const error = await (pending as Promise<void>).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isIntegrationSyncError(error, 'ERR_STORE')).toBe(true);

    const logged: unknown[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (obj: Record<string, unknown>) => void logged.push(obj) };
    expect(() => safeAudit(audit, record(), logger)).not.toThrow();
    const deadline = Date.now() + 5_000;
    while (logged.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(logged).toHaveLength(1);
  });

  it('rejects malformed records with ERR_STORE', async () => {
    const audit = createPostgresAuditStore({ pool, schema: await migrated('bad') });
    await expect(audit.record({ kind: 'event.published', at: 'soon', outcome: 'x' })).rejects.toMatchObject({ code: 'ERR_STORE' });
    await expect(audit.record(null as never)).rejects.toMatchObject({ code: 'ERR_STORE' });
  });
});

import { describe, expect, it } from 'vitest';
import { createMemoryAuditStore, type AuditRecord, type MemoryAuditStore } from '../../src/audit/index.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { testAuditStore } from '../../src/testing/audit-conformance.js';

// Stores of one namespace share records, as the suite requires of replicas.
const byNamespace = new Map<string, MemoryAuditStore>();
testAuditStore({
  name: 'memory',
  create: async (namespace) => {
    let store = byNamespace.get(namespace);
    if (!store) {
      store = createMemoryAuditStore();
      byNamespace.set(namespace, store);
    }
    return store;
  },
  cleanup: async (namespace) => {
    byNamespace.delete(namespace);
  },
});

const at = (s: number): string => new Date(Date.UTC(2026, 11, 3, 10, 0, s)).toISOString();

describe('createMemoryAuditStore', () => {
  it('keeps only the newest maxRecords and counts what it dropped', async () => {
    const store = createMemoryAuditStore({ maxRecords: 3 });
    for (let i = 0; i < 7; i += 1) store.record({ kind: 'event.published', at: at(i), outcome: `o${i}` });
    expect(store.size).toBe(3);
    expect(store.dropped).toBe(4);
    expect((await store.query()).map((r) => r.outcome)).toEqual(['o4', 'o5', 'o6']);
    store.clear();
    expect(store.size).toBe(0);
    expect(await store.query()).toEqual([]);
    store.record({ kind: 'event.published', at: at(9), outcome: 'after-clear' });
    expect((await store.query()).map((r) => r.outcome)).toEqual(['after-clear']);
  });

  it('is not changed by callers mutating records they passed in or got back', async () => {
    const store = createMemoryAuditStore();
    const record: AuditRecord = { kind: 'task.transition', at: at(1), outcome: 'running', taskId: 't1' };
    store.record(record);
    record.outcome = 'tampered';
    const [got] = await store.query();
    expect(got?.outcome).toBe('running');
    (got as AuditRecord).outcome = 'tampered-again';
    expect((await store.query())[0]?.outcome).toBe('running');
  });

  it('refuses a record without a parseable time, so queries by time stay exact', () => {
    const store = createMemoryAuditStore();
    expect(() => store.record({ kind: 'event.published', at: 'not-a-time', outcome: 'published' })).toThrow(/ISO/);
    expect(store.size).toBe(0);
  });

  it('rejects bad options at construction with ERR_INVALID_OPTION', () => {
    for (const maxRecords of [0, -1, 1.5, Number.NaN]) {
      try {
        createMemoryAuditStore({ maxRecords });
        expect.unreachable(`maxRecords ${maxRecords} accepted`);
      } catch (error) {
        expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
      }
    }
  });

  it('returns at most 1000 records by default', async () => {
    const store = createMemoryAuditStore({ maxRecords: 1500 });
    for (let i = 0; i < 1200; i += 1) store.record({ kind: 'event.consumed', at: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), outcome: 'handled' });
    expect((await store.query()).length).toBe(1000);
    expect((await store.query({ limit: 1500 })).length).toBe(1200);
  });
});

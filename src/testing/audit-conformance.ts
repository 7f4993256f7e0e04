import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditRecord, AuditStore } from '../audit/types.js';

/** What an {@link AuditStore} implementation supplies to run {@link testAuditStore} against it. */
export interface AuditStoreHarness {
  /** Shown in the suite's `describe` title. */
  name: string;
  /**
   * A store. Stores made with the same namespace share their records (two replicas of one host,
   * or one host before and after a restart); different namespaces never see each other's.
   * Namespaces match `/^[a-z][a-z0-9_]{0,23}$/`, so they can serve as a table prefix or schema name.
   */
  create(namespace: string): Promise<AuditStore>;
  /** Removes what the namespace made (tables, keys), and closes what `create` opened. */
  cleanup?(namespace: string): Promise<void>;
}

const BASE = Date.parse('2026-12-03T10:00:00.000Z');

function at(offsetSeconds: number): string {
  return new Date(BASE + offsetSeconds * 1000).toISOString();
}

function rec(fields: Partial<AuditRecord> & { at: string }): AuditRecord {
  return { kind: 'event.published', outcome: 'published', ...fields };
}

/**
 * Registers the shared `AuditStore` conformance suite (vitest `describe`/`it` blocks): every
 * field survives a round trip, each query filter and their combination, inclusive time bounds,
 * oldest-first order, limits, namespace isolation and sharing, and hostile ids. The built-in
 * memory and PostgreSQL stores pass it; a host proves its own store the same way.
 *
 * @example
 * import { testAuditStore } from 'integration-sync/testing';
 * testAuditStore({ name: 'my-store', create: async (ns) => createMyAuditStore({ prefix: ns }) });
 */
export function testAuditStore(harness: AuditStoreHarness): void {
  describe(`AuditStore conformance: ${harness.name}`, () => {
    const namespaces = new Set<string>();
    const fresh = async (namespace = newNamespace()): Promise<AuditStore> => {
      namespaces.add(namespace);
      return harness.create(namespace);
    };

    afterAll(async () => {
      for (const namespace of namespaces) await harness.cleanup?.(namespace);
    });

    it('keeps every field of a record', async () => {
      const store = await fresh();
      const full: AuditRecord = {
        kind: 'event.dead-lettered',
        at: at(1),
        eventType: 'integration.sync.scheduled',
        eventId: 'evt-1',
        group: 'workers',
        integrationId: 'hubspot',
        connectionId: 'conn-1',
        tenantId: 'tenant-1',
        taskId: 'task-1',
        outcome: 'max_attempts',
        reason: 'ERR_SYNC_FAILED',
        attempt: 5,
      };
      const minimal: AuditRecord = { kind: 'task.transition', at: at(2), outcome: 'running' };
      await store.record(full);
      await store.record(minimal);
      const all = await store.query();
      expect(all).toEqual([full, minimal]);
      // Absent fields stay absent rather than coming back as null.
      expect(Object.keys(all[1] ?? {}).sort()).toEqual(['at', 'kind', 'outcome']);
    });

    it('filters by integration, connection, tenant, kind and event type', async () => {
      const store = await fresh();
      const records: AuditRecord[] = [
        rec({ at: at(1), integrationId: 'a', tenantId: 't1', eventType: 'x.one' }),
        rec({ at: at(2), integrationId: 'b', tenantId: 't1', connectionId: 'c1', kind: 'token.refresh', outcome: 'succeeded' }),
        rec({ at: at(3), integrationId: 'a', tenantId: 't2', connectionId: 'c2', eventType: 'x.two', kind: 'event.consumed', outcome: 'handled' }),
        rec({ at: at(4), integrationId: 'a', tenantId: 't1', connectionId: 'c1', eventType: 'x.two', kind: 'event.consumed', outcome: 'retry' }),
      ];
      for (const r of records) await store.record(r);
      const outcomes = async (query: Parameters<AuditStore['query']>[0]): Promise<string[]> =>
        (await store.query(query)).map((r) => `${r.at}|${r.outcome}`);
      const pick = (...indexes: number[]): string[] => indexes.map((i) => `${records[i]?.at}|${records[i]?.outcome}`);

      expect(await outcomes({ integrationId: 'a' })).toEqual(pick(0, 2, 3));
      expect(await outcomes({ connectionId: 'c1' })).toEqual(pick(1, 3));
      expect(await outcomes({ tenantId: 't2' })).toEqual(pick(2));
      expect(await outcomes({ kind: 'event.consumed' })).toEqual(pick(2, 3));
      expect(await outcomes({ eventType: 'x.two' })).toEqual(pick(2, 3));
      expect(await outcomes({ integrationId: 'a', tenantId: 't1', kind: 'event.consumed' })).toEqual(pick(3));
      expect(await outcomes({ integrationId: 'nobody' })).toEqual([]);
    });

    it('bounds time inclusively and compares instants, not strings', async () => {
      const store = await fresh();
      for (let i = 0; i < 6; i += 1) await store.record(rec({ at: at(i * 60), outcome: `o${i}` }));
      const got = await store.query({ from: at(60), to: at(180) });
      expect(got.map((r) => r.outcome)).toEqual(['o1', 'o2', 'o3']);
      // 10:02:00Z written with a +01:00 offset is the same instant.
      const offset = await store.query({ from: '2026-12-03T11:02:00+01:00' });
      expect(offset.map((r) => r.outcome)).toEqual(['o2', 'o3', 'o4', 'o5']);
      expect(await store.query({ to: at(-1) })).toEqual([]);
    });

    it('answers oldest first whatever the order of arrival, and honours limit', async () => {
      const store = await fresh();
      for (const i of [3, 1, 4, 0, 2]) await store.record(rec({ at: at(i), outcome: `o${i}` }));
      expect((await store.query()).map((r) => r.outcome)).toEqual(['o0', 'o1', 'o2', 'o3', 'o4']);
      expect((await store.query({ limit: 2 })).map((r) => r.outcome)).toEqual(['o0', 'o1']);
      expect((await store.query({ from: at(2), limit: 2 })).map((r) => r.outcome)).toEqual(['o2', 'o3']);
    });

    it('keeps every record of concurrent appends', async () => {
      const store = await fresh();
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.record(rec({ at: at(i), outcome: `o${i}`, integrationId: 'busy' }))));
      const got = await store.query({ integrationId: 'busy' });
      expect(got.map((r) => r.outcome)).toEqual(Array.from({ length: 40 }, (_, i) => `o${i}`));
    });

    it('stores hostile ids verbatim and matches them exactly', async () => {
      const store = await fresh();
      const hostile = `o'brien"; DROP TABLE audit; -- % _ \\ ünï 🚀`;
      await store.record(rec({ at: at(1), integrationId: hostile, tenantId: '%' }));
      await store.record(rec({ at: at(2), integrationId: 'other', tenantId: 'x' }));
      expect((await store.query({ integrationId: hostile }))[0]?.integrationId).toBe(hostile);
      // `%` and `_` are data, not patterns.
      expect((await store.query({ tenantId: '%' })).length).toBe(1);
      expect((await store.query({ tenantId: '_' })).length).toBe(0);
      expect((await store.query()).length).toBe(2);
    });

    it('keeps namespaces apart and shares one namespace between stores', async () => {
      const namespace = newNamespace();
      const first = await fresh(namespace);
      const other = await fresh();
      await first.record(rec({ at: at(1), outcome: 'mine' }));
      const second = await fresh(namespace);
      expect((await second.query()).map((r) => r.outcome)).toEqual(['mine']);
      expect(await other.query()).toEqual([]);
    });

    it('rejects a malformed query instead of answering it', async () => {
      const store = await fresh();
      await expect(store.query({ from: 'yesterday-ish' })).rejects.toThrow();
      await expect(store.query({ limit: 0 })).rejects.toThrow();
    });
  });
}

function newNamespace(): string {
  return `a${randomBytes(6).toString('hex')}`;
}

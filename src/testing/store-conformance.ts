import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../core/errors.js';
import type { SyncTask, SyncTaskStore } from '../tasks/types.js';

/**
 * What a {@link SyncTaskStore} adapter supplies to run {@link testSyncTaskStore} against it.
 * Every test asks for a store in a fresh namespace, so stores made for different tests never
 * see each other's tasks (a table prefix or schema for PostgreSQL, a new instance for memory).
 */
export interface SyncTaskStoreHarness {
  /** Shown in the suite's `describe` title. */
  name: string;
  /** A new, empty store in `namespace`. */
  create(namespace: string): Promise<SyncTaskStore>;
  /** Drops what `namespace` made (tables, keys), and closes what `create` opened. */
  cleanup?(namespace: string): Promise<void>;
}

/**
 * The behaviour every {@link SyncTaskStore} must have, as a vitest suite: create, get (copies,
 * unknown ids), update (patching, clearing, unknown ids, concurrent patches of different fields),
 * list (filters, newest first, limit). Call it from a test file.
 *
 * @example
 * import { testSyncTaskStore } from 'integration-sync/testing';
 * testSyncTaskStore({ name: 'memory', create: async () => createMemorySyncTaskStore() });
 */
export function testSyncTaskStore(harness: SyncTaskStoreHarness): void {
  describe(`SyncTaskStore conformance: ${harness.name}`, () => {
    const namespaces: string[] = [];

    afterEach(async () => {
      const used = namespaces.splice(0);
      if (harness.cleanup) for (const namespace of used) await harness.cleanup(namespace);
    });

    async function fresh(): Promise<SyncTaskStore> {
      const namespace = `t${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      namespaces.push(namespace);
      return harness.create(namespace);
    }

    let clock = Date.parse('2026-11-30T09:00:00.000Z');
    function task(overrides: Partial<SyncTask> = {}): SyncTask {
      clock += 1000;
      const at = new Date(clock).toISOString();
      return {
        id: `task-${randomUUID()}`,
        integrationId: 'int_crm',
        tenantId: 'tenant_a',
        trigger: 'schedule',
        status: 'pending',
        eventId: randomUUID(),
        createdAt: at,
        updatedAt: at,
        ...overrides,
      };
    }

    it('stores a task and gets it back with every field', async () => {
      const store = await fresh();
      const created = task({ entityType: 'ticket', filters: { ids: ['T-1', 'T-2'], nested: { since: '2026-11-30T00:00:00Z' } } });
      await store.create(created);
      expect(await store.get(created.id)).toEqual(created);
    });

    it('returns undefined for an unknown id, on get and on update', async () => {
      const store = await fresh();
      expect(await store.get('no-such-task')).toBeUndefined();
      expect(await store.update('no-such-task', { status: 'running' })).toBeUndefined();
      expect(await store.get('no-such-task')).toBeUndefined();
    });

    it('rejects a second create with the same id (ERR_STORE) and keeps the first', async () => {
      const store = await fresh();
      const first = task();
      await store.create(first);
      const error = await store.create({ ...first, trigger: 'manual' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isIntegrationSyncError(error, 'ERR_STORE')).toBe(true);
      expect((await store.get(first.id))?.trigger).toBe('schedule');
    });

    it('hands out copies: mutating a returned or passed task does not change the store', async () => {
      const store = await fresh();
      const created = task({ filters: { ids: ['a'] } });
      await store.create(created);
      created.status = 'failed';
      (created.filters as { ids: string[] }).ids.push('b');
      const got = await store.get(created.id);
      expect(got?.status).toBe('pending');
      expect(got?.filters).toEqual({ ids: ['a'] });
      (got as SyncTask).status = 'succeeded';
      expect((await store.get(created.id))?.status).toBe('pending');
    });

    it('applies a patch, returns the updated task and leaves other fields alone', async () => {
      const store = await fresh();
      const created = task({ entityType: 'contact' });
      await store.create(created);
      const startedAt = '2026-11-30T10:00:00.000Z';
      const updated = await store.update(created.id, { status: 'running', startedAt, updatedAt: startedAt });
      expect(updated).toEqual({ ...created, status: 'running', startedAt, updatedAt: startedAt });
      expect(await store.get(created.id)).toEqual(updated);
      const finished = await store.update(created.id, {
        status: 'succeeded',
        finishedAt: '2026-11-30T10:01:00.000Z',
        result: { fetched: 12, written: 3 },
      });
      expect(finished?.status).toBe('succeeded');
      expect(finished?.result).toEqual({ fetched: 12, written: 3 });
      expect(finished?.startedAt).toBe(startedAt);
      expect(finished?.entityType).toBe('contact');
    });

    it('sets updatedAt when a patch does not', async () => {
      const store = await fresh();
      const created = task();
      await store.create(created);
      const updated = await store.update(created.id, { status: 'running' });
      expect(updated?.updatedAt).toBeTypeOf('string');
      expect(Number.isNaN(Date.parse(updated?.updatedAt ?? ''))).toBe(false);
      expect(updated?.updatedAt).not.toBe(created.updatedAt);
    });

    it('clears a field whose key is present with the value undefined', async () => {
      const store = await fresh();
      const created = task({ status: 'failed', error: 'ERR_HTTP_TIMEOUT', entityType: 'ticket', filters: { a: 1 } });
      await store.create(created);
      const updated = await store.update(created.id, { status: 'running', error: undefined, entityType: undefined, filters: undefined });
      expect(updated?.status).toBe('running');
      expect(updated?.error).toBeUndefined();
      expect(updated?.entityType).toBeUndefined();
      expect(updated?.filters).toBeUndefined();
      const got = await store.get(created.id);
      expect(got?.error).toBeUndefined();
      expect(got?.entityType).toBeUndefined();
      expect(got?.filters).toBeUndefined();
      expect(got?.integrationId).toBe('int_crm');
    });

    it('keeps every field of concurrent patches that touch different fields', async () => {
      const store = await fresh();
      const created = task();
      await store.create(created);
      await Promise.all([
        store.update(created.id, { status: 'running' }),
        store.update(created.id, { startedAt: '2026-11-30T10:00:00.000Z' }),
        store.update(created.id, { result: { n: 1 } }),
        store.update(created.id, { entityType: 'deal' }),
      ]);
      const got = await store.get(created.id);
      expect(got?.status).toBe('running');
      expect(got?.startedAt).toBe('2026-11-30T10:00:00.000Z');
      expect(got?.result).toEqual({ n: 1 });
      expect(got?.entityType).toBe('deal');
    });

    it('keeps every task of many concurrent creates and updates', async () => {
      const store = await fresh();
      const tasks = Array.from({ length: 40 }, () => task());
      await Promise.all(tasks.map((t) => store.create(t)));
      await Promise.all(tasks.map((t, i) => store.update(t.id, { status: i % 2 === 0 ? 'succeeded' : 'failed' })));
      const all = await store.list({ limit: 100 });
      expect(all).toHaveLength(40);
      expect(all.filter((t) => t.status === 'succeeded')).toHaveLength(20);
      expect(all.filter((t) => t.status === 'failed')).toHaveLength(20);
    });

    it('lists newest first, 100 by default, and honours limit', async () => {
      const store = await fresh();
      const tasks = Array.from({ length: 105 }, () => task());
      // Created out of order: the order of list() comes from createdAt, not from insertion.
      for (const t of [...tasks].reverse()) await store.create(t);
      const listed = await store.list();
      expect(listed).toHaveLength(100);
      expect(listed[0]?.id).toBe(tasks[104]?.id);
      expect(listed.map((t) => t.id)).toEqual(tasks.slice(5).reverse().map((t) => t.id));
      const three = await store.list({ limit: 3 });
      expect(three.map((t) => t.id)).toEqual([tasks[104]?.id, tasks[103]?.id, tasks[102]?.id]);
    });

    it('filters by integrationId, tenantId and status, combined', async () => {
      const store = await fresh();
      const a1 = task({ integrationId: 'int_a', tenantId: 't1', status: 'succeeded' });
      const a2 = task({ integrationId: 'int_a', tenantId: 't2', status: 'failed' });
      const b1 = task({ integrationId: 'int_b', tenantId: 't1', status: 'failed' });
      const a1b = task({ integrationId: 'int_a', tenantId: 't1', status: 'failed' });
      for (const t of [a1, a2, b1, a1b]) await store.create(t);
      const ids = async (filter: Parameters<SyncTaskStore['list']>[0]): Promise<string[]> => (await store.list(filter)).map((t) => t.id);
      expect(await ids({ integrationId: 'int_a' })).toEqual([a1b.id, a2.id, a1.id]);
      expect(await ids({ tenantId: 't1' })).toEqual([a1b.id, b1.id, a1.id]);
      expect(await ids({ status: 'failed' })).toEqual([a1b.id, b1.id, a2.id]);
      expect(await ids({ integrationId: 'int_a', tenantId: 't1', status: 'failed' })).toEqual([a1b.id]);
      expect(await ids({ integrationId: 'int_zzz' })).toEqual([]);
      expect(await ids({ integrationId: 'int_a', limit: 1 })).toEqual([a1b.id]);
    });

    it('lists what updates changed (status filter sees the new status)', async () => {
      const store = await fresh();
      const t = task();
      await store.create(t);
      await store.update(t.id, { status: 'skipped', error: 'coalesced into other' });
      expect((await store.list({ status: 'pending' })).map((x) => x.id)).not.toContain(t.id);
      const skipped = await store.list({ status: 'skipped' });
      expect(skipped.map((x) => x.id)).toContain(t.id);
      expect(skipped.find((x) => x.id === t.id)?.error).toBe('coalesced into other');
    });
  });
}

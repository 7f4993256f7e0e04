import { describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createPostgresSyncTaskStore } from '../../src/postgres/index.js';
import type { SyncTask } from '../../src/tasks/types.js';
import { testSyncTaskStore } from '../../src/testing/store-conformance.js';
import { migratedSchemas, newPool, uniqueSchema } from './helpers.js';

const pool = newPool();
const { migrated, drop } = migratedSchemas(pool, 'pgs');

// One schema per namespace: every conformance test starts from empty tables.
testSyncTaskStore({
  name: 'postgres',
  create: async (namespace) => createPostgresSyncTaskStore({ pool, schema: await migrated(namespace) }),
  cleanup: async (namespace) => {
    await drop(namespace);
  },
});

function task(overrides: Partial<SyncTask> = {}): SyncTask {
  const at = new Date().toISOString();
  return {
    id: `task-${Math.random().toString(36).slice(2)}`,
    integrationId: 'int_crm',
    tenantId: 'tenant_a',
    trigger: 'webhook',
    status: 'pending',
    createdAt: at,
    updatedAt: at,
    ...overrides,
  };
}

describe('createPostgresSyncTaskStore', () => {
  it('survives a restart: a new pool sees the tasks and their updates', async () => {
    const schema = await migrated('restart');
    const before = newPool(2);
    const created = task({ entityType: 'ticket', filters: { ids: ['T-1'], since: { at: '2026-11-30T00:00:00Z' } } });
    await createPostgresSyncTaskStore({ pool: before, schema }).create(created);
    await createPostgresSyncTaskStore({ pool: before, schema }).update(created.id, { status: 'succeeded', result: { fetched: 3 } });
    await before.end();

    const after = newPool(2);
    try {
      const store = createPostgresSyncTaskStore({ pool: after, schema });
      expect(await store.get(created.id)).toEqual({ ...created, status: 'succeeded', result: { fetched: 3 }, updatedAt: expect.any(String) });
      expect((await store.list({ status: 'succeeded' })).map((t) => t.id)).toEqual([created.id]);
    } finally {
      await after.end();
    }
  });

  it('keeps filters and results as jsonb (queryable in SQL) and normalises offset times to the same instant', async () => {
    const schema = await migrated('json');
    const store = createPostgresSyncTaskStore({ pool, schema });
    const created = task({ createdAt: '2026-12-03T11:00:00+01:00', filters: { kind: 'deal', n: 2 } });
    await store.create(created);
    const { rows } = await pool.query(`SELECT filters->>'kind' AS kind, jsonb_typeof(filters) AS t FROM "${schema}".integration_sync_sync_tasks WHERE id = $1`, [created.id]);
    expect(rows[0]).toEqual({ kind: 'deal', t: 'object' });
    expect((await store.get(created.id))?.createdAt).toBe('2026-12-03T10:00:00.000Z');
  });

  it('stores hostile values verbatim and refuses malformed tasks with ERR_STORE', async () => {
    const schema = await migrated('hostile');
    const store = createPostgresSyncTaskStore({ pool, schema });
    const hostile = task({ integrationId: `x'); DROP TABLE t; --`, tenantId: '%', error: 'ünï 🚀' });
    await store.create(hostile);
    expect(await store.get(hostile.id)).toEqual(hostile);
    expect((await store.list({ tenantId: '_' })).length).toBe(0);
    for (const bad of [null, { ...task(), id: '' }, { ...task(), createdAt: 'not a time' }]) {
      const error = await store.create(bad as SyncTask).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isIntegrationSyncError(error, 'ERR_STORE')).toBe(true);
    }
  });

  it('names the migrate step when its tables do not exist', async () => {
    const store = createPostgresSyncTaskStore({ pool, schema: uniqueSchema('none') });
    await expect(store.get('x')).rejects.toMatchObject({ code: 'ERR_STORE', message: expect.stringMatching(/run migrate/) });
  });
});

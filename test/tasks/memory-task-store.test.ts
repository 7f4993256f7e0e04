import { describe, expect, it } from 'vitest';
import { createMemorySyncTaskStore, isIntegrationSyncError, type SyncTask } from '../../src/index.js';
import { testSyncTaskStore } from '../../src/testing/store-conformance.js';

testSyncTaskStore({ name: 'memory', create: async () => createMemorySyncTaskStore() });

function task(id: string, status: SyncTask['status'], minute: number): SyncTask {
  const at = new Date(Date.UTC(2026, 10, 30, 9, minute)).toISOString();
  return { id, integrationId: 'int', tenantId: 't', trigger: 'schedule', status, createdAt: at, updatedAt: at };
}

describe('createMemorySyncTaskStore', () => {
  it('evicts the oldest finished task first once maxTasks is passed', async () => {
    const store = createMemorySyncTaskStore({ maxTasks: 3 });
    await store.create(task('running-old', 'running', 1));
    await store.create(task('done-1', 'succeeded', 2));
    await store.create(task('done-2', 'failed', 3));
    await store.create(task('new', 'pending', 4));
    expect(await store.get('done-1')).toBeUndefined();
    expect(await store.get('running-old')).toBeDefined();
    expect((await store.list()).map((t) => t.id)).toEqual(['new', 'done-2', 'running-old']);
  });

  it('evicts the oldest task when every task is still active', async () => {
    const store = createMemorySyncTaskStore({ maxTasks: 2 });
    for (let i = 0; i < 5; i += 1) await store.create(task(`p${i}`, 'pending', i));
    expect((await store.list()).map((t) => t.id)).toEqual(['p4', 'p3']);
  });

  it('rejects a bad maxTasks and a bad list limit with ERR_INVALID_OPTION', async () => {
    for (const maxTasks of [0, -1, 1.5, Number.NaN]) {
      expect(() => createMemorySyncTaskStore({ maxTasks })).toThrow(/maxTasks/);
    }
    const store = createMemorySyncTaskStore();
    const error = await store.list({ limit: 0 }).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
  });

  it('stamps updatedAt from the injected clock', async () => {
    const store = createMemorySyncTaskStore({ clock: { now: () => Date.UTC(2030, 0, 1), setTimeout: () => 0, clearTimeout: () => {} } });
    await store.create(task('a', 'pending', 1));
    expect((await store.update('a', { status: 'running' }))?.updatedAt).toBe('2030-01-01T00:00:00.000Z');
  });
});

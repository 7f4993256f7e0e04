/**
 * Found by the full-loop replica test: a scheduled event delivered twice at the same time (a
 * check-due re-planned after a replica died mid-plan republishes the same derived ids while the
 * first copies are still waiting for the sync lease) ran its sync twice, once per copy, because
 * the consumer only checked the task's status before waiting for the key, not after.
 * In-process replicas on one memory broker, sharing the task store, lease and idempotency store.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { SyncTaskEventConsumer } from '../../src/events/consumers/SyncTaskEventConsumer.js';
import { createEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createMemoryLease } from '../../src/leases/memory-lease.js';
import { syncScheduledEventId } from '../../src/planners/sync-planner.js';
import { createMemorySyncTaskStore } from '../../src/tasks/memory-task-store.js';
import type { SyncTask } from '../../src/tasks/types.js';
import type { TokenRefresher } from '../../src/tokens/types.js';

const noRefresh: TokenRefresher = {
  refreshConnectionTokens: async (request) => ({ status: 'skipped', connectionId: request.connectionId, reason: 'stale_request' }),
};

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function scheduled(at: string) {
  return createEvent(
    EventTypes.SyncScheduled,
    { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: at },
    { id: syncScheduledEventId('int_crm', 'tenant_a', at) },
  );
}

describe('a sync event delivered to two replicas at once', () => {
  it('runs its sync once: the replica that waited for the lease finds the task done', async () => {
    const store = createMemorySyncTaskStore();
    const lease = createMemoryLease();
    const runs: Array<{ task: SyncTask; replica: number }> = [];
    // Two replicas of one host: same group (so the same task id), shared store and lease.
    const replicas = [0, 1].map(
      (replica) =>
        new SyncTaskEventConsumer({
          bus: createMemoryBus(),
          store,
          lease,
          leaseTtlMs: 2000,
          tokenRefresh: noRefresh,
          syncService: {
            execute: async (task) => {
              runs.push({ task, replica });
              await new Promise((resolve) => setTimeout(resolve, 150));
            },
          },
        }),
    );
    const event = scheduled('2026-12-03T10:00:00.000Z');
    // Each replica's copy of the event; the bus's in-process in-flight check cannot see across them.
    const first = replicas[0]!.router.handle(event);
    await until(() => runs.length === 1, 5000, 'the first run');
    const second = replicas[1]!.router.handle(event);
    await Promise.all([first, second]);
    expect(runs.map((r) => r.replica)).toEqual([0]);
    expect((await store.get(`integration-sync:${event.id}`))?.status).toBe('succeeded');

    // A later slot for the same pair still runs on the replica that waited.
    const next = scheduled('2026-12-03T10:01:00.000Z');
    await replicas[1]!.router.handle(next);
    expect(runs.map((r) => [r.replica, r.task.eventId])).toEqual([
      [0, event.id],
      [1, next.id],
    ]);
    await Promise.all(replicas.map((c) => c.stop()));
  });
});

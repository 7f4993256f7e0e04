import { describe, expect, it } from 'vitest';
import { createMemoryBroker, createMemoryBus } from '../../src/bus/memory-bus.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { createMemoryLease } from '../../src/leases/memory-lease.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Three replicas of one host, each with its own bus on one shared broker, one consumer group. */
async function runReplicas(withLease: boolean): Promise<{ published: string[]; handled: string[] }> {
  const broker = createMemoryBroker();
  const buses = [1, 2, 3].map(() => createMemoryBus({ broker }));
  const handled: string[] = [];
  const published: string[] = [];
  const sub = await buses[0]!.subscribe({
    group: 'planner',
    types: ['integration.sync.check-due'],
    handler: async (event: CloudEvent) => void handled.push(event.id),
  });
  const lease = withLease ? createMemoryLease() : undefined;
  const replicas = buses.map(
    (bus) =>
      new SyncSchedulerService({
        bus: { ...bus, publish: (e, o) => bus.publish(e, o).then(() => void published.push(e.id)) },
        intervalMs: 100,
        ...(lease ? { lease } : {}),
      }),
  );
  for (const r of replicas) r.start();
  await waitFor(() => new Set(published).size >= 4, 10_000);
  await Promise.all(replicas.map((r) => r.stop()));
  await waitFor(() => handled.length >= new Set(published).size, 10_000);
  await sub.close();
  await Promise.all(buses.map((b) => b.close()));
  return { published, handled };
}

describe('SyncSchedulerService replicas on real timers', () => {
  it('without a lease, every replica publishes each slot and the consumer handles each slot once', async () => {
    const { published, handled } = await runReplicas(false);
    expect(published.length).toBeGreaterThan(new Set(published).size);
    expect(handled.length).toBe(new Set(handled).size);
    expect(new Set(handled)).toEqual(new Set(published));
  });

  it('with a shared lease, one replica publishes per slot', async () => {
    const { published, handled } = await runReplicas(true);
    expect(published.length).toBe(new Set(published).size);
    expect(new Set(handled)).toEqual(new Set(published));
  });
});

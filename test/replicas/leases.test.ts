import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBroker, createMemoryBus } from '../../src/bus/memory-bus.js';
import type { EventBus } from '../../src/bus/types.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';
import type { Lease } from '../../src/leases/types.js';
import { createPostgresLease, migrate } from '../../src/postgres/index.js';
import { createRedisBus, createRedisLease } from '../../src/redis/index.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';
import { TokenRefreshService } from '../../src/tokens/token-refresh-service.js';
import type { RefreshOutcome } from '../../src/tokens/types.js';
import { startIntegrationManager, type IntegrationManager } from '../support/integration-manager.js';
import { deleteKeys, REDIS_URL, uniqueNamespace, until } from './harness.js';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const namespace = uniqueNamespace('isynclease');
const schema = `isync_replicas_${randomBytes(5).toString('hex')}`;

/** Everything a test opened, closed in afterAll even when the test failed half-way. */
const closers: Array<() => Promise<unknown>> = [];
let admin: Redis;
let adminPool: pg.Pool;
let im: IntegrationManager;

function newRedis(): Redis {
  const client = new Redis(REDIS_URL);
  closers.push(() => client.quit());
  return client;
}

function newPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  pool.on('error', () => {});
  closers.push(() => pool.end());
  return pool;
}

/** One replica's lease: its own connection to the shared store, same keyspace as the others. */
const leaseFactories: Record<'redis' | 'postgres', () => Lease> = {
  redis: () => createRedisLease({ client: newRedis(), prefix: `${namespace}:lease` }),
  postgres: () => createPostgresLease({ pool: newPool(), schema }),
};

beforeAll(async () => {
  admin = new Redis(REDIS_URL);
  adminPool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  adminPool.on('error', () => {});
  await migrate(adminPool, { schema });
  im = await startIntegrationManager();
});

afterAll(async () => {
  // Last opened, first closed: services and buses before the connections under them.
  for (const close of closers.reverse()) await close().catch(() => {});
  await im?.close();
  await adminPool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await adminPool?.end();
  await deleteKeys(admin, `${namespace}*`);
  await admin?.quit();
});

describe.each(['redis', 'postgres'] as const)('three SyncSchedulerService replicas sharing a %s lease', (store) => {
  it('emit exactly one integration.sync.check-due per slot, every slot, handled once downstream', { timeout: 40_000 }, async () => {
    const intervalMs = 500;
    const prefix = `${namespace}:${store}:sched`;
    const published: Array<{ replica: number; id: string }> = [];
    const handled: string[] = [];

    // Each replica has its own Redis connection, Redis Streams bus and lease client.
    const buses = [0, 1, 2].map(() => {
      const bus = createRedisBus({ client: newRedis(), prefix });
      closers.push(() => bus.close());
      return bus;
    });
    const observer = createRedisBus({ client: newRedis(), prefix });
    closers.push(() => observer.close());
    // Subscribed before any tick: a new group starts at new entries.
    await observer.subscribe({ group: 'planner', types: [EventTypes.SyncCheckDue], handler: async (event) => void handled.push(event.id) });

    const replicas = buses.map((bus, replica) => {
      const recording: EventBus = {
        publish: async (event, options) => {
          await bus.publish(event, options);
          published.push({ replica, id: event.id });
        },
        subscribe: (options) => bus.subscribe(options),
        close: (options) => bus.close(options),
      };
      const service = new SyncSchedulerService({ bus: recording, intervalMs, lease: leaseFactories[store](), leaseKeyPrefix: `${prefix}:slot` });
      closers.push(() => service.stop());
      return service;
    });
    for (const replica of replicas) replica.start();
    await until(() => new Set(published.map((p) => p.id)).size >= 6, 20_000, 'six slots');
    await Promise.all(replicas.map((r) => r.stop()));
    const ids = [...new Set(published.map((p) => p.id))];
    await until(() => new Set(handled).size >= ids.length, 10_000, 'the observer to handle every slot');

    // Exactly one publish per slot, across the three replicas.
    const perId = new Map<string, number>();
    for (const { id } of published) perId.set(id, (perId.get(id) ?? 0) + 1);
    expect([...perId.values()].every((n) => n === 1)).toBe(true);
    // Every slot between the first and the last, none skipped.
    const slots = ids.map((id) => Number(id.split(':').at(-1))).sort((a, b) => a - b);
    expect(ids.every((id) => id.startsWith(`check-due:${intervalMs}:`))).toBe(true);
    expect(slots).toEqual(slots.map((_, i) => slots[0]! + i));
    // Downstream saw each slot once.
    expect(handled.length).toBe(new Set(handled).size);
    expect(new Set(handled)).toEqual(new Set(ids));
    console.info(`scheduler/${store}: ${ids.length} slots, publishes per replica ${[0, 1, 2].map((r) => published.filter((p) => p.replica === r).length).join('/')}`);
  });
});

describe.each(['redis', 'postgres'] as const)('three TokenRefreshService replicas sharing a %s lease', (store) => {
  it('refresh a connection asked of all three at once with one upstream call; the others skip with lease_held', { timeout: 30_000 }, async () => {
    const connectionId = `conn-${randomUUID().slice(0, 8)}`;
    const connection = { connectionId, integrationId: 'hubspot', tenantId: `tenant-${randomUUID().slice(0, 6)}` };
    im.addConnection(connectionId, { integrationId: connection.integrationId, tenantId: connection.tenantId, refreshToken: `rt-${randomUUID()}` });
    // Slow enough that the three calls surely overlap at the integration-manager.
    im.latencyMs = 300;
    const grantsBefore = im.grants();

    const broker = createMemoryBroker();
    const results: CloudEvent[] = [];
    const observer = createMemoryBus({ broker });
    closers.push(() => observer.close());
    await observer.subscribe({
      group: 'observer',
      types: [EventTypes.TokenRefreshed, EventTypes.TokenRefreshFailed],
      handler: async (event) => void results.push(event),
    });
    const services = [0, 1, 2].map(() => {
      const bus = createMemoryBus({ broker });
      closers.push(() => bus.close());
      const service = new TokenRefreshService({
        bus,
        http: createFetchHttpClient({ retryBaseMs: 10, retryMaxMs: 50, timeoutMs: 5_000 }),
        baseUrl: im.baseUrl,
        headers: { authorization: `Bearer ${im.serviceToken}` },
        lease: leaseFactories[store](),
      });
      closers.push(() => service.stop());
      return service;
    });

    const round = async (): Promise<RefreshOutcome[]> => {
      const outcomes = await Promise.all(services.map((s) => s.refreshConnectionTokens({ ...connection, requestedAt: new Date().toISOString() })));
      const refreshed = outcomes.filter((o) => o.status === 'refreshed');
      const skipped = outcomes.filter((o) => o.status === 'skipped');
      expect(refreshed).toHaveLength(1);
      expect(skipped).toEqual([
        { status: 'skipped', connectionId, reason: 'lease_held' },
        { status: 'skipped', connectionId, reason: 'lease_held' },
      ]);
      return outcomes;
    };

    await round();
    expect(im.hits(connectionId)).toBe(1);
    // A second wave after the first finished: the winner released the lease, so one more refresh, again alone.
    await round();
    expect(im.hits(connectionId)).toBe(2);
    // Two rotations of the refresh token, neither raced into invalid_grant.
    expect(im.grants() - grantsBefore).toBe(2);
    await until(() => results.length >= 2, 5_000, 'two result events');
    expect(results.map((e) => e.type)).toEqual([EventTypes.TokenRefreshed, EventTypes.TokenRefreshed]);
    im.latencyMs = 0;
  });
});

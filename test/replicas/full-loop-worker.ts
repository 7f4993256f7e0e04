/**
 * One replica of a host running the whole loop, as the README's "Wiring the loop" and
 * "Several replicas" describe it, run as its own process by full-loop.test.ts:
 * `node --import tsx test/replicas/full-loop-worker.ts '<FullLoopWorkerConfig JSON>'`.
 *
 * Redis Streams bus with a shared Redis idempotency store, a shared Redis lease for the
 * scheduler, the token refresher and the consumer, the PostgreSQL task store, both planners, and
 * a real HTTP refresh call to the test's integration-manager. The sync service appends
 * `start|...`, `end|...` (and `abort|...`) records to a Redis list, so what each replica ran survives a SIGKILL.
 * SIGTERM stops it gracefully; the process must then exit on its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { SyncTaskEventConsumer } from '../../src/events/consumers/SyncTaskEventConsumer.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';
import { createRefreshPlanner, createSyncPlanner } from '../../src/planners/index.js';
import { createPostgresSyncTaskStore } from '../../src/postgres/index.js';
import { createRedisBus, createRedisIdempotencyStore, createRedisLease } from '../../src/redis/index.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';
import { TokenRefreshService } from '../../src/tokens/token-refresh-service.js';

/** One integration and tenant the host schedules. */
export interface LoopIntegration {
  integrationId: string;
  tenantId: string;
  /** Due on even check-due slots only (else every slot). */
  evenSlotsOnly: boolean;
  /** Sync duration range for this pair, when not the default `syncMinMs`..`syncMaxMs`. */
  syncMs?: [number, number];
}

/** One connection whose token always looks about to expire. */
export interface LoopConnection {
  connectionId: string;
  integrationId: string;
  tenantId: string;
}

/** What the parent passes as the first argument (JSON). */
export interface FullLoopWorkerConfig {
  namespace: string;
  redisUrl: string;
  databaseUrl: string;
  /** PostgreSQL schema, already migrated by the parent. */
  schema: string;
  imBaseUrl: string;
  serviceToken: string;
  checkDueMs: number;
  checkExpiringMs: number;
  syncLeaseTtlMs: number;
  refreshLeaseTtlMs: number;
  claimIdleMs: number;
  /** Redis list of `start|end` sync records. */
  logKey: string;
  integrations: LoopIntegration[];
  connections: LoopConnection[];
  syncMinMs: number;
  syncMaxMs: number;
}

/** Which integrations are due at a check-due time: the parent computes the same. */
export function dueAt(config: Pick<FullLoopWorkerConfig, 'integrations' | 'checkDueMs'>, at: Date): LoopIntegration[] {
  const slot = Math.floor(at.getTime() / config.checkDueMs);
  return config.integrations.filter((i) => !i.evenSlotsOnly || slot % 2 === 0);
}

const isMain = process.argv[1]?.endsWith('full-loop-worker.ts') === true;
const pid = process.pid;

function say(state: 'ready' | 'closed' | 'error', extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ state, pid, ...extra })}\n`);
}

async function main(config: FullLoopWorkerConfig): Promise<void> {
  // If the test process dies (no afterAll), do not linger. Unref'd: never keeps a closed replica alive.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
  }, 500).unref();

  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on('error', () => {});
  await redis.connect();
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
  pool.on('error', () => {});

  const bus = createRedisBus({
    client: redis,
    prefix: config.namespace,
    idempotency: createRedisIdempotencyStore({ client: redis, prefix: `${config.namespace}:handled` }),
    blockMs: 1000,
    // Short, so a SIGKILLed member's entries move to a survivor within the test's budget.
    claimIdleMs: config.claimIdleMs,
    claimIntervalMs: 500,
  });
  const lease = createRedisLease({ client: redis, prefix: `${config.namespace}:lease` });
  const http = createFetchHttpClient({ timeoutMs: 5000 });

  const scheduler = new SyncSchedulerService({ bus, intervalMs: config.checkDueMs, lease });
  const tokens = new TokenRefreshService({
    bus,
    http,
    baseUrl: config.imBaseUrl,
    // The pid header lets the integration-manager tell which replica called.
    headers: { authorization: `Bearer ${config.serviceToken}`, 'x-replica-pid': String(pid) },
    intervalMs: config.checkExpiringMs,
    lease,
    leaseTtlMs: config.refreshLeaseTtlMs,
    // The default call plus requestedAt, so the integration-manager can tell check cycles apart.
    buildRequest: (request, { baseUrl }) => ({
      url: `${baseUrl}/connections/${encodeURIComponent(request.connectionId)}/refresh`,
      body: { integrationId: request.integrationId, tenantId: request.tenantId, requestedAt: request.requestedAt },
    }),
  });

  const syncPlanner = createSyncPlanner({ bus, findDue: (at) => dueAt(config, at).map(({ integrationId, tenantId }) => ({ integrationId, tenantId })) });
  const refreshPlanner = createRefreshPlanner({
    bus,
    pageSize: 2,
    findExpiring: async (threshold, { cursor, limit }) => {
      const start = cursor === undefined ? 0 : Number(cursor);
      const items = config.connections.slice(start, start + limit).map((c) => ({ ...c, expiresAt: new Date(threshold.getTime() - 1000) }));
      const next = start + limit;
      return { items, nextCursor: next < config.connections.length ? String(next) : undefined };
    },
  });

  const consumer = new SyncTaskEventConsumer({
    bus,
    tokenRefresh: tokens,
    store: createPostgresSyncTaskStore({ pool, schema: config.schema }),
    lease,
    leaseTtlMs: config.syncLeaseTtlMs,
    syncService: {
      execute: async (task, { signal }) => {
        const key = `${task.integrationId}/${task.tenantId}`;
        const pair = config.integrations.find((i) => i.integrationId === task.integrationId && i.tenantId === task.tenantId);
        const [min, max] = pair?.syncMs ?? [config.syncMinMs, config.syncMaxMs];
        await redis.rpush(config.logKey, `start|${key}|${task.eventId ?? ''}|${task.id}|${pid}|${Date.now()}`);
        try {
          await sleep(min + Math.floor(Math.random() * (max - min)), undefined, { signal });
        } catch (error) {
          // Aborted (lost lease, shutdown): the sync stops here, so its interval ends here.
          await redis.rpush(config.logKey, `abort|${key}|${task.eventId ?? ''}|${task.id}|${pid}|${Date.now()}`);
          throw error;
        }
        await redis.rpush(config.logKey, `end|${key}|${task.eventId ?? ''}|${task.id}|${pid}|${Date.now()}`);
        return { records: 1 };
      },
    },
  });

  await syncPlanner.subscribe(bus, { group: 'sync-planner' });
  await refreshPlanner.subscribe(bus, { group: 'refresh-planner' });
  await consumer.start();
  scheduler.start();
  tokens.start();

  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    void (async () => {
      await scheduler.stop();
      await tokens.stop();
      await consumer.stop();
      await bus.close();
      await pool.end();
      await redis.quit();
      say('closed');
    })().catch((error: unknown) => {
      say('error', { message: error instanceof Error ? error.message : String(error) });
      process.exitCode = 1;
    });
  });
  say('ready');
}

if (isMain) {
  main(JSON.parse(process.argv[2] ?? '{}') as FullLoopWorkerConfig).catch((error: unknown) => {
    say('error', { message: error instanceof Error ? error.stack : String(error) });
    process.exit(1);
  });
}

/**
 * One scheduler replica, run as its own process by the lease tests:
 * `node --import tsx test/replicas/scheduler-worker.ts '<SchedulerWorkerConfig JSON>'`.
 *
 * A SyncSchedulerService on a Redis Streams bus with a Redis or PostgreSQL lease shared by
 * every replica. Each publish it makes is appended to a Redis list (`pub|<event id>|<pid>|<ms>`),
 * after the broker took the event, so the test sees who emitted which slot even after a SIGKILL.
 * SIGTERM stops it gracefully; the process must then exit on its own.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import type { EventBus } from '../../src/bus/types.js';
import type { Lease } from '../../src/leases/types.js';
import { createPostgresLease } from '../../src/postgres/index.js';
import { createRedisBus, createRedisLease } from '../../src/redis/index.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';

/** What the parent passes as the first argument (JSON). */
export interface SchedulerWorkerConfig {
  namespace: string;
  lease: 'redis' | 'postgres';
  intervalMs: number;
  logKey: string;
  redisUrl: string;
  databaseUrl: string;
  /** PostgreSQL schema, already migrated by the parent. */
  schema: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as SchedulerWorkerConfig;
const pid = process.pid;

// If the test process itself dies (no afterAll), do not linger: the parent's pid changes to a reaper.
// Unref'd, so it never keeps a gracefully closed replica alive.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 500).unref();

function say(state: 'ready' | 'closed' | 'error', extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ state, pid, ...extra })}\n`);
}

async function main(): Promise<void> {
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on('error', () => {});
  await redis.connect();
  let pool: pg.Pool | undefined;
  let lease: Lease;
  if (config.lease === 'postgres') {
    pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
    pool.on('error', () => {});
    lease = createPostgresLease({ pool, schema: config.schema });
  } else {
    lease = createRedisLease({ client: redis, prefix: `${config.namespace}:lease` });
  }
  const bus = createRedisBus({ client: redis, prefix: config.namespace });
  const recording: EventBus = {
    publish: async (event, options) => {
      await bus.publish(event, options);
      await redis.rpush(config.logKey, `pub|${event.id}|${pid}|${Date.now()}`);
    },
    subscribe: (options) => bus.subscribe(options),
    close: (options) => bus.close(options),
  };
  const scheduler = new SyncSchedulerService({ bus: recording, intervalMs: config.intervalMs, lease, leaseKeyPrefix: `${config.namespace}:slot` });
  scheduler.start();

  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    void (async () => {
      await scheduler.stop();
      await bus.close();
      await pool?.end();
      await redis.quit();
      say('closed');
    })().catch((error: unknown) => {
      say('error', { message: error instanceof Error ? error.message : String(error) });
      process.exitCode = 1;
    });
  });
  say('ready');
}

main().catch((error: unknown) => {
  say('error', { message: error instanceof Error ? error.stack : String(error) });
  process.exit(1);
});

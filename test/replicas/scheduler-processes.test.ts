import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventTypes } from '../../src/events/schemas.js';
import { migrate } from '../../src/postgres/index.js';
import { redisStreamKey } from '../../src/redis/index.js';
import { deleteKeys, exitWithin, killAll, readLog, REDIS_URL, SCHEDULER_WORKER, spawnReplica, uniqueNamespace, until, waitReady, type Replica } from './harness.js';
import type { SchedulerWorkerConfig } from './scheduler-worker.js';

const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `isync_sched_${randomBytes(5).toString('hex')}`;
const namespaces: string[] = [];
let redis: Redis;
let pool: pg.Pool;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  pool.on('error', () => {});
  await migrate(pool, { schema });
});

afterAll(async () => {
  await killAll();
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
  for (const namespace of namespaces) await deleteKeys(redis, `${namespace}*`);
  await redis?.quit();
});

/** Slot of a `check-due:<intervalMs>:<slot>` id. */
const slotOf = (id: string): number => Number(id.split(':').at(-1));

describe.each(['redis', 'postgres'] as const)('three scheduler processes sharing a %s lease', (lease) => {
  it('emit each slot exactly once, and keep every slot after the emitting replica is SIGKILLed', { timeout: 60_000 }, async () => {
    const namespace = uniqueNamespace('isyncsched');
    namespaces.push(namespace);
    const intervalMs = 500;
    const config: SchedulerWorkerConfig = { namespace, lease, intervalMs, logKey: `${namespace}:log`, redisUrl: REDIS_URL, databaseUrl: DATABASE_URL, schema };
    const replicas: Replica[] = [0, 1, 2].map(() => spawnReplica(config, SCHEDULER_WORKER));
    await Promise.all(replicas.map((r) => waitReady(r)));

    const publishes = async () => (await readLog(redis, config.logKey)).filter((r) => r.phase === 'pub');
    await until(async () => new Set((await publishes()).map((p) => p.id)).size >= 4, 20_000, 'four slots emitted');
    // Kill whoever emitted the latest slot, right after it did: it held the lease last.
    const before = await publishes();
    const latest = before.reduce((a, b) => (slotOf(b.id) > slotOf(a.id) ? b : a));
    const victim = replicas.find((r) => r.pid === latest.pid)!;
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    const slotAtKill = slotOf(latest.id);
    await until(async () => (await publishes()).filter((p) => slotOf(p.id) > slotAtKill).length >= 4, 20_000, 'four slots after the kill');

    const survivors = replicas.filter((r) => r !== victim);
    for (const r of survivors) r.child.kill('SIGTERM');
    const exits = await Promise.all(survivors.map((r) => exitWithin(r, 15_000)));
    expect(exits).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    expect(survivors.every((r) => r.states.includes('closed'))).toBe(true);

    // What the broker holds: one entry per slot, no slot missing between the first and the last.
    const entries = await redis.xrange(redisStreamKey(namespace, EventTypes.SyncCheckDue), '-', '+');
    const ids = entries.map(([, fields]) => (JSON.parse(fields[fields.indexOf('event') + 1]!) as { id: string }).id);
    expect(ids.length).toBe(new Set(ids).size);
    const slots = ids.map(slotOf).sort((a, b) => a - b);
    expect(slots).toEqual(slots.map((_, i) => slots[0]! + i));
    expect(slots.filter((s) => s > slotAtKill).length).toBeGreaterThanOrEqual(4);
    // The log agrees: each slot published once, by one replica; after the kill only by survivors.
    const log = await publishes();
    expect(log.map((p) => p.id).sort()).toEqual([...ids].sort());
    expect(log.filter((p) => slotOf(p.id) > slotAtKill).every((p) => p.pid !== victim.pid)).toBe(true);
    const perReplica = replicas.map((r) => log.filter((p) => p.pid === r.pid).length);
    console.info(`scheduler processes/${lease}: ${slots.length} slots, ${slots.filter((s) => s > slotAtKill).length} after the kill, publishes per replica ${perReplica.join('/')}`);
  });
});

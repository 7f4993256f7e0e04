/**
 * Adversarial tests of the PostgreSQL adapters on the real server: values PostgreSQL refuses
 * (NUL, lone surrogates, words it reads as times), backends terminated under the pool, a lock
 * that never frees, lease races across pools, identifier injection and secrets in errors.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIntegrationSyncError, NonRetryableError } from '../../src/core/errors.js';
import { createPostgresAuditStore, createPostgresLease, createPostgresSyncTaskStore, migrate } from '../../src/postgres/index.js';
import { createRedisBus } from '../../src/redis/index.js';
import type { SyncTask } from '../../src/tasks/types.js';
import { CHECK_DUE, checkDueWithSecret, delay, suffix, trapUnhandled, waitFor } from './adapter-helpers.js';

const URL = 'postgres://postgres@127.0.0.1:5432/test';
const unhandled = trapUnhandled();
const schema = `brk_pg_${suffix()}`;
const pools = new Set<pg.Pool>();

function pool(options: pg.PoolConfig = {}): pg.Pool {
  const p = new pg.Pool({ connectionString: URL, max: 4, ...options });
  p.on('error', () => {});
  pools.add(p);
  return p;
}
const admin = pool();

beforeAll(async () => {
  await migrate(admin, { schema });
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  for (const p of pools) await p.end().catch(() => {});
  unhandled.dispose();
  expect(unhandled.list).toEqual([]);
});

function task(id: string, extra: Partial<SyncTask> = {}): SyncTask {
  const now = new Date().toISOString();
  return { id, integrationId: 'int-1', tenantId: 'ten-1', trigger: 'manual', status: 'pending', createdAt: now, updatedAt: now, ...extra } as SyncTask;
}

describe('PostgreSQL stores: values PostgreSQL refuses', () => {
  it('stores a failed task whose error, result and filters hold NUL or a cut surrogate pair (as U+FFFD)', async () => {
    const store = createPostgresSyncTaskStore({ pool: admin, schema });
    const id = `t-${suffix()}`;
    const cut = '😀'.slice(0, 1);
    await store.create(task(id, { entityType: `contacts\u0000${cut}`, filters: { [`k${cut}`]: `v\u0000` } }));
    const updated = await store.update(id, { status: 'failed', error: `upstream said \u0000 then ${cut}`, result: { body: `x\u0000y${cut}`, list: [cut, '\u0000'] } } as never);
    expect(updated?.status).toBe('failed');
    expect(updated?.error).toBe('upstream said \ufffd then \ufffd');
    expect(updated?.result).toEqual({ body: 'x\ufffdy\ufffd', list: ['\ufffd', '\ufffd'] });
    const read = await store.get(id);
    expect(read?.filters).toEqual({ 'k\ufffd': 'v\ufffd' });
    expect(read?.entityType).toBe('contacts\ufffd\ufffd');
    // An id with a NUL cannot be stored: a clear ERR_STORE, not a vague connection hint.
    const error = (await store.create(task('a\u0000b')).catch((e: unknown) => e)) as Error;
    expect(isIntegrationSyncError(error, 'ERR_STORE')).toBe(true);
    expect(error.message).toContain('NUL');
  });

  it('keeps an audit record whose reason, ids and extra fields hold NUL or lone surrogates', async () => {
    const audit = createPostgresAuditStore({ pool: admin, schema });
    const integrationId = `int-${suffix()}`;
    await audit.record({ kind: 'event.rejected', at: new Date().toISOString(), outcome: 'invalid', integrationId, eventId: 'e\u0000', reason: 'bad \u0000 \ud800', custom: { 'k\udc00': 'v\u0000' } } as never);
    const [record] = await audit.query({ integrationId });
    expect(record).toMatchObject({ eventId: 'e\ufffd', reason: 'bad \ufffd \ufffd', custom: { 'k\ufffd': 'v\ufffd' } });
  });

  it("refuses time words PostgreSQL would take ('infinity', 'yesterday', 'now'), so no row can break reads", async () => {
    const store = createPostgresSyncTaskStore({ pool: admin, schema });
    const id = `t-${suffix()}`;
    await store.create(task(id, { tenantId: `ten-${id}` }));
    for (const word of ['infinity', '-infinity', 'yesterday', 'now', 'epoch', 'not a date']) {
      await expect(store.update(id, { startedAt: word })).rejects.toMatchObject({ code: 'ERR_STORE' });
      await expect(store.create(task(`${id}-${word}`, { createdAt: word }))).rejects.toMatchObject({ code: 'ERR_STORE' });
    }
    expect((await store.list({ tenantId: `ten-${id}` })).map((t) => t.id)).toEqual([id]);
    expect((await store.get(id))?.startedAt).toBeUndefined();
  });

  it('treats hostile keys, ids and filters as data, never as SQL', async () => {
    const lease = createPostgresLease({ pool: admin, schema });
    const store = createPostgresSyncTaskStore({ pool: admin, schema });
    const hostile = `x'); DROP TABLE "${schema}"."integration_sync_leases"; --`;
    const handle = await lease.tryAcquire(hostile, 5_000);
    expect(handle?.key).toBe(hostile);
    await store.create(task(hostile, { integrationId: hostile }));
    expect((await store.list({ integrationId: hostile })).map((t) => t.id)).toEqual([hostile]);
    await lease.release(handle!);
    expect(await lease.tryAcquire(hostile, 5_000)).not.toBeNull();
    for (const bad of ['a b', 'A', 'x"; drop', 'ü', '*', 'a.b', 'x'.repeat(1000), '']) {
      expect(() => createPostgresLease({ pool: admin, schema: bad })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
      expect(() => createPostgresAuditStore({ pool: admin, tablePrefix: bad })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    }
  });
});

describe('PostgreSQL: migrate races', () => {
  it('migrates 8 prefixes into one new schema at once (they share its CREATE SCHEMA)', async () => {
    const p = pool({ max: 10 });
    for (let round = 0; round < 3; round += 1) {
      const fresh = `brk_pg_mig_${suffix()}`;
      try {
        const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => migrate(p, { schema: fresh, tablePrefix: `p${i}_` })));
        expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
        const { rows } = await admin.query('SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1', [fresh]);
        expect(rows[0].n).toBe(8 * 4);
      } finally {
        await admin.query(`DROP SCHEMA IF EXISTS "${fresh}" CASCADE`);
      }
    }
  });
});

describe('PostgreSQL: backends killed and statements that hang', () => {
  it('rejects with ERR_LEASE / ERR_STORE when its backends are terminated mid-statement, and works again after', async () => {
    const app = `brk_kill_${suffix()}`;
    const p = pool({ application_name: app });
    const lease = createPostgresLease({ pool: p, schema });
    const store = createPostgresSyncTaskStore({ pool: p, schema });
    await lease.tryAcquire(`warm-${app}`, 1_000);
    const kill = () => admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
    // Statements that sleep in the database, so the kill lands mid-statement.
    const slow = p.query('SELECT pg_sleep(5)').then(() => 'finished', (e: { code?: string }) => e.code ?? 'error');
    const id = `t-${suffix()}`;
    await delay(200);
    await kill();
    expect(await slow).not.toBe('finished');
    const outcomes = await Promise.all([
      lease.tryAcquire(`k-${app}`, 5_000).then(() => 'ok', (e: unknown) => (isIntegrationSyncError(e, 'ERR_LEASE') ? 'ERR_LEASE' : String(e))),
      store.create(task(id)).then(() => 'ok', (e: unknown) => (isIntegrationSyncError(e, 'ERR_STORE') ? 'ERR_STORE' : String(e))),
      kill().then(() => 'ok'),
    ]);
    expect(['ok', 'ERR_LEASE']).toContain(outcomes[0]);
    expect(['ok', 'ERR_STORE']).toContain(outcomes[1]);
    const handle = await waitFor('lease after the kills', () => lease.tryAcquire(`after-${app}`, 5_000).catch(() => null));
    expect(handle.token).toBeGreaterThan(0);
    await store.create(task(`${id}-after`));
    expect(await store.get(`${id}-after`)).toBeDefined();
  });

  it('a row lock that never frees: with lock_timeout the lease call rejects ERR_LEASE instead of hanging', async () => {
    const key = `locked-${suffix()}`;
    const lease = createPostgresLease({ pool: admin, schema });
    const held = await lease.tryAcquire(key, 60_000);
    const locker = await admin.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`SELECT * FROM "${schema}".integration_sync_leases WHERE key = $1 FOR UPDATE`, [key]);
      const impatient = createPostgresLease({ pool: pool({ options: '-c lock_timeout=300' }), schema });
      const started = Date.now();
      const error = (await impatient.renew(held!, 5_000).catch((e: unknown) => e)) as Error & { details?: { sqlState?: string } };
      expect(isIntegrationSyncError(error, 'ERR_LEASE')).toBe(true);
      expect(error.details?.sqlState).toBe('55P03');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    expect(await lease.renew(held!, 5_000)).not.toBeNull();
  });
});

describe('PostgreSQL lease: races and expiry across pools', () => {
  it('one winner per round among 4 replicas racing for an expiring key; tokens strictly rise; stale holders are powerless', async () => {
    const replicas = [pool(), pool(), pool(), pool()].map((p) => createPostgresLease({ pool: p, schema }));
    const key = `race-${suffix()}`;
    let previous: Awaited<ReturnType<(typeof replicas)[0]['tryAcquire']>> = null;
    const tokens: number[] = [];
    for (let round = 0; round < 8; round += 1) {
      const results = await Promise.all(replicas.flatMap((r) => [r.tryAcquire(key, 150), r.tryAcquire(key, 150)]));
      const winners = results.filter((h) => h !== null);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      tokens.push(winner.token);
      if (previous) {
        expect(await replicas[0]!.renew(previous, 5_000)).toBeNull();
        await replicas[1]!.release(previous);
        // The stale release must not have freed the current holder's key.
        expect(await replicas[2]!.tryAcquire(key, 150)).toBeNull();
      }
      previous = winner;
      await delay(200);
    }
    for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  });
});

describe('PostgreSQL: secrets', () => {
  it('never puts the connection password into its errors', async () => {
    const p = pool({ connectionString: 'postgres://postgres:hunter2-secret@127.0.0.1:1/test', connectionTimeoutMillis: 2_000 });
    const lease = createPostgresLease({ pool: p, schema });
    const store = createPostgresSyncTaskStore({ pool: p, schema });
    const audit = createPostgresAuditStore({ pool: p, schema });
    const errors = (await Promise.all([
      lease.tryAcquire('k', 1_000).catch((e: unknown) => e),
      store.get('x').catch((e: unknown) => e),
      audit.query({}).catch((e: unknown) => e),
      migrate(p, { schema }).catch((e: unknown) => e),
    ])) as Array<Error & { details?: unknown }>;
    for (const error of errors) {
      expect(isIntegrationSyncError(error)).toBe(true);
      expect(`${error.message} ${JSON.stringify(error.details)}`).not.toContain('hunter2');
    }
  });

  it('keeps event data out of the audit table when a bus dead-letters an event carrying a secret', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    const prefix = `brk:pg:audit:${suffix()}`;
    const audit = createPostgresAuditStore({ pool: admin, schema });
    const bus = createRedisBus({ client: redis, prefix, audit, blockMs: 200, retryBaseMs: 5, retryMaxMs: 10, maxAttempts: 2 });
    try {
      const canary = `canary-${suffix()}`;
      await bus.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => { throw new NonRetryableError('refused'); } });
      const event = checkDueWithSecret(canary);
      await bus.publish(event);
      await waitFor('dead-letter audit row', async () => (await audit.query({ kind: 'event.dead-lettered', integrationId: 'int-1' })).some((r) => r.eventId === event.id));
      const { rows } = await admin.query(`SELECT row_to_json(a)::text AS text FROM "${schema}".integration_sync_audit a WHERE event_id = $1`, [event.id]);
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(JSON.stringify(rows)).not.toContain(canary);
    } finally {
      await bus.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});

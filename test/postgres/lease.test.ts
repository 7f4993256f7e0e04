import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import type { LeaseHandle } from '../../src/leases/types.js';
import { createPostgresLease, migrate } from '../../src/postgres/index.js';
import { testLease } from '../../src/testing/lease-conformance.js';
import { dropSchema, newPool, uniqueSchema } from './helpers.js';

const pool = newPool();
const schema = uniqueSchema('pgl');

beforeAll(async () => {
  await migrate(pool, { schema });
});

afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

// The suite namespaces its keys itself; every lease of this file shares one table, as replicas do.
testLease({ name: 'postgres', create: async () => createPostgresLease({ pool, schema }) });

describe('createPostgresLease across pools (separate replicas)', () => {
  it('frees an expired key for another holder, with a strictly larger fencing token each time', async () => {
    const other = newPool(2);
    try {
      const a = createPostgresLease({ pool, schema });
      const b = createPostgresLease({ pool: other, schema });
      const key = `expiry:${Math.random()}`;
      const tokens: number[] = [];
      let holder = (await a.tryAcquire(key, 150)) as LeaseHandle;
      expect(holder).not.toBeNull();
      tokens.push(holder.token);
      for (let round = 0; round < 4; round += 1) {
        const next = round % 2 === 0 ? b : a;
        // Still held: nobody else gets it.
        expect(await next.tryAcquire(key, 150)).toBeNull();
        let taken: LeaseHandle | null = null;
        const deadline = Date.now() + 10_000;
        while (taken === null && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 25));
          taken = await next.tryAcquire(key, 150);
        }
        expect(taken).not.toBeNull();
        expect((taken as LeaseHandle).owner).not.toBe(holder.owner);
        // The old holder can neither renew nor release the new holder's lease.
        expect(await (round % 2 === 0 ? a : b).renew(holder, 5_000)).toBeNull();
        holder = taken as LeaseHandle;
        tokens.push(holder.token);
      }
      for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    } finally {
      await other.end();
    }
  });

  it('keeps fencing tokens increasing after a release deleted the row', async () => {
    const lease = createPostgresLease({ pool, schema });
    const key = `released:${Math.random()}`;
    const first = (await lease.tryAcquire(key, 10_000)) as LeaseHandle;
    await lease.release(first);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".integration_sync_leases WHERE key = $1`, [key]);
    expect(rows[0].n).toBe(0);
    const second = (await lease.tryAcquire(key, 10_000)) as LeaseHandle;
    expect(second.token).toBeGreaterThan(first.token);
  });

  it('judges expiry by the database clock, not the caller', async () => {
    const lease = createPostgresLease({ pool, schema });
    const key = `clock:${Math.random()}`;
    const handle = (await lease.tryAcquire(key, 60_000)) as LeaseHandle;
    const { rows } = await pool.query(
      `SELECT (extract(epoch from expires_at) * 1000)::float8 AS ms, (extract(epoch from now()) * 1000)::float8 AS now_ms FROM "${schema}".integration_sync_leases WHERE key = $1`,
      [key],
    );
    expect(Math.abs(handle.expiresAt - rows[0].ms)).toBeLessThanOrEqual(1);
    expect(handle.expiresAt - rows[0].now_ms).toBeGreaterThan(59_000);
    // Backdate the row in the database: the lease is free, whatever the caller's clock says.
    await pool.query(`UPDATE "${schema}".integration_sync_leases SET expires_at = now() - interval '1 second' WHERE key = $1`, [key]);
    expect(await lease.renew(handle, 5_000)).toBeNull();
    expect(await lease.tryAcquire(key, 5_000)).not.toBeNull();
  });

  it('rejects bad keys, TTLs and handles, and names the migrate step when tables are missing', async () => {
    const lease = createPostgresLease({ pool, schema });
    await expect(lease.tryAcquire('', 1000)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(lease.tryAcquire('k', 0)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(lease.renew({ key: 'k', owner: 'o', token: 1.5, expiresAt: 0 }, 1000)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    const unmigrated = createPostgresLease({ pool, schema: uniqueSchema('nope') });
    const error = await unmigrated.tryAcquire('k', 1000).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isIntegrationSyncError(error, 'ERR_LEASE')).toBe(true);
    expect((error as Error).message).toMatch(/run migrate/);
  });

  it('validates identifiers and the pool at construction', () => {
    for (const bad of ['Public', 'a-b', 'x"; drop table y; --', '', '1abc', 'a'.repeat(42)]) {
      expect(() => createPostgresLease({ pool, schema: bad })).toThrow(/schema must match/);
      expect(() => createPostgresLease({ pool, tablePrefix: bad })).toThrow(/tablePrefix must match/);
    }
    expect(() => createPostgresLease({ pool: {} as never })).toThrow(/pool/);
  });
});

import { randomUUID } from 'node:crypto';
import { IntegrationSyncError } from '../core/errors.js';
import { assertMs } from '../core/options.js';
import type { Lease, LeaseHandle } from '../leases/types.js';
import { assertQueryable, msColumn, pgError, pgNames, toMs, type PostgresOptions } from './pg-client.js';

/** Options of {@link createPostgresLease}. Run {@link migrate} once before using it. */
export type PostgresLeaseOptions = PostgresOptions;

function assertKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `lease key must be a non-empty string; got ${typeof key}`);
  }
  return key;
}

function assertHandle(handle: unknown): LeaseHandle {
  const h = handle as Partial<LeaseHandle> | null;
  if (typeof h !== 'object' || h === null || typeof h.key !== 'string' || typeof h.owner !== 'string' || !Number.isSafeInteger(h.token)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'lease handle must be the object tryAcquire returned ({ key, owner, token, expiresAt })');
  }
  return h as LeaseHandle;
}

/**
 * A {@link Lease} on a PostgreSQL table, shared by every replica that uses the same database,
 * schema and prefix.
 *
 * - Expiry uses the database clock (`now()`) on both sides, taking and checking, so clock skew
 *   between replicas cannot make two of them believe they hold a key. `expiresAt` in the handle
 *   is the database's time, in epoch milliseconds.
 * - `tryAcquire` is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <= now()`: the row
 *   lock makes concurrent callers queue, and exactly one of them wins a free or expired key.
 * - Fencing tokens come from a sequence, so they increase strictly for every new holder of a key,
 *   even after the key was released and its row deleted.
 * - `renew` and `release` act only when key, owner and token all still match.
 *
 * @example
 * const lease = createPostgresLease({ pool });
 * const handle = await lease.tryAcquire('scheduler:slot', 30_000);
 * if (handle) try { await work(handle.token); } finally { await lease.release(handle); }
 */
export function createPostgresLease(options: PostgresLeaseOptions): Lease {
  const pool = assertQueryable(options?.pool, 'createPostgresLease');
  const names = pgNames(options);
  const leases = names.table('leases');
  const returning = `RETURNING token::text AS token, ${msColumn('expires_at')}`;

  const acquireSql =
    `INSERT INTO ${leases} AS l (key, owner, token, expires_at) ` +
    `VALUES ($1, $2, nextval('${names.table('lease_seq')}'), now() + $3 * interval '1 millisecond') ` +
    `ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at ` +
    `WHERE l.expires_at <= now() ${returning}`;
  const renewSql =
    `UPDATE ${leases} SET expires_at = now() + $4 * interval '1 millisecond' ` +
    `WHERE key = $1 AND owner = $2 AND token = $3 AND expires_at > now() ${returning}`;
  const releaseSql = `DELETE FROM ${leases} WHERE key = $1 AND owner = $2 AND token = $3`;

  const toHandle = (key: string, owner: string, row: Record<string, unknown> | undefined): LeaseHandle | null =>
    row === undefined ? null : { key, owner, token: Number(row.token), expiresAt: toMs(row.expires_at_ms) };

  return {
    async tryAcquire(key, ttlMs) {
      assertKey(key);
      assertMs('ttlMs', ttlMs);
      const owner = randomUUID();
      try {
        const result = await pool.query(acquireSql, [key, owner, ttlMs]);
        return toHandle(key, owner, result.rows[0]);
      } catch (error) {
        throw pgError('ERR_LEASE', 'lease tryAcquire', error, names);
      }
    },
    async renew(handle, ttlMs) {
      const h = assertHandle(handle);
      assertMs('ttlMs', ttlMs);
      try {
        const result = await pool.query(renewSql, [h.key, h.owner, String(h.token), ttlMs]);
        return toHandle(h.key, h.owner, result.rows[0]);
      } catch (error) {
        throw pgError('ERR_LEASE', 'lease renew', error, names);
      }
    },
    async release(handle) {
      const h = assertHandle(handle);
      try {
        await pool.query(releaseSql, [h.key, h.owner, String(h.token)]);
      } catch (error) {
        throw pgError('ERR_LEASE', 'lease release', error, names);
      }
    },
  };
}

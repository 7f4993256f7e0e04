import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import { assertMs, assertNonEmptyString } from '../core/options.js';
import type { Lease, LeaseHandle } from '../leases/types.js';
import type { RedisClientLike } from './redis-client.js';

/** Options of {@link createRedisLease}. */
export interface RedisLeaseOptions {
  /** The host's Redis client; only `eval` is used (Lua scripts). */
  client: Pick<RedisClientLike, 'eval'>;
  /** Key prefix: a lease `k` lives at `<prefix>:{k}`, its fencing counter at `<prefix>:{k}:fence`. @default "integration-sync:lease" */
  prefix?: string;
  /** Source of `expiresAt` on handles (Redis itself decides expiry). @default the system clock */
  clock?: Clock;
}

// Check, INCR and SET in one script, so fencing tokens rise in the order the lease was taken.
// The stored value is "<token>:<owner>": renew and release must match both. A missing counter
// (first use, or lost with a restart or failover) starts at the server's time in microseconds,
// so a token issued after the loss is still above every earlier one: a counter can only have
// run ahead of the clock by taking more than one lease per microsecond. The token stays a
// string inside Lua, whose numbers would print a 16-digit value in exponent form.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], now[1] .. string.format('%06d', tonumber(now[2])))
end
redis.call('INCR', KEYS[2])
local token = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/**
 * A {@link Lease} on Redis: `SET key "<token>:<owner>" PX ttl` when the key is free to take it,
 * compare-and-set to renew, compare-and-delete to release (Lua scripts, so only the holder, by
 * owner and token, touches its lease). The fencing token is an `INCR` counter per key, taken in
 * the same script; it never expires, and a lost counter restarts from the server's clock in
 * microseconds, so tokens keep rising across a restart without persistence.
 * The key in braces is a Redis Cluster hash tag, so a lease and its counter share a slot.
 * Guarantees hold on one primary: a failover with asynchronous replication can lose a lease and
 * recent counter increments alike.
 *
 * @example
 * const lease = createRedisLease({ client: redis });
 * const handle = await lease.tryAcquire('scheduler:check-due', 30_000);
 * if (handle) { try { await work(handle.token); } finally { await lease.release(handle); } }
 */
export function createRedisLease(options: RedisLeaseOptions): Lease {
  const client = options.client;
  if (typeof client !== 'object' || client === null || typeof client.eval !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRedisLease: client must be a Redis client (for example an ioredis 5 Redis instance)');
  }
  const prefix = assertNonEmptyString('prefix', options.prefix ?? 'integration-sync:lease');
  const clock = options.clock ?? systemClock;
  const leaseKey = (key: string): string => `${prefix}:{${key}}`;
  const holder = (handle: LeaseHandle): string => `${handle.token}:${handle.owner}`;

  const call = async (what: string, key: string, script: string, keys: string[], args: Array<string | number>): Promise<unknown> => {
    try {
      return await client.eval(script, keys.length, ...keys, ...args);
    } catch (cause) {
      throw new IntegrationSyncError('ERR_LEASE', `lease ${what} of "${key}" failed in Redis; check the connection and retry`, { cause, details: { key } });
    }
  };

  return {
    async tryAcquire(key, ttlMs) {
      assertNonEmptyString('key', key);
      assertMs('ttlMs', ttlMs);
      const owner = randomUUID();
      const start = clock.now();
      const token = await call('acquire', key, ACQUIRE, [leaseKey(key), `${leaseKey(key)}:fence`], [owner, ttlMs]);
      if (token === null || token === undefined || token === false) return null;
      return { key, owner, token: Number(token), expiresAt: start + ttlMs };
    },
    async renew(handle: LeaseHandle, ttlMs) {
      assertMs('ttlMs', ttlMs);
      const start = clock.now();
      const renewed = await call('renew', handle.key, RENEW, [leaseKey(handle.key)], [holder(handle), ttlMs]);
      return Number(renewed) === 1 ? { ...handle, expiresAt: start + ttlMs } : null;
    },
    async release(handle: LeaseHandle) {
      await call('release', handle.key, RELEASE, [leaseKey(handle.key)], [holder(handle)]);
    },
  };
}

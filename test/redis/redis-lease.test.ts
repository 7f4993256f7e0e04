/**
 * The Redis lease against the real Redis: the shared lease conformance suite, plus what is
 * Redis-specific (key layout, TTL on the server, fencing counter that survives release).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { testLease } from '../../src/testing/lease-conformance.js';
import { createRedisLease } from '../../src/redis/index.js';
import { closeClients, deleteKeys, newClient, uniquePrefix } from './helpers.js';

const redis: Redis = newClient();

afterAll(async () => {
  await closeClients([redis]);
});

testLease({
  name: 'redis',
  create: async (namespace) => createRedisLease({ client: redis, prefix: `itest:lease:${namespace}` }),
  cleanup: (namespace) => deleteKeys(redis, `itest:lease:${namespace}`),
});

describe('Redis lease specifics', () => {
  const prefix = uniquePrefix('lease');
  afterEach(() => deleteKeys(redis, prefix));

  it('stores the owner with a server-side TTL under a hash-tagged key, and keeps the fencing counter after release', async () => {
    const lease = createRedisLease({ client: redis, prefix });
    const handle = await lease.tryAcquire('job', 5_000);
    expect(handle).not.toBeNull();
    expect(await redis.get(`${prefix}:{job}`)).toBe(`${handle?.token}:${handle?.owner}`);
    const ttl = await redis.pttl(`${prefix}:{job}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5_000);
    await lease.release(handle!);
    expect(await redis.exists(`${prefix}:{job}`)).toBe(0);
    expect(Number(await redis.get(`${prefix}:{job}:fence`))).toBe(handle!.token);
    const next = await lease.tryAcquire('job', 5_000);
    expect(next!.token).toBe(handle!.token + 1);
  });

  it('rejects bad arguments with ERR_INVALID_OPTION and wraps Redis failures as ERR_LEASE', async () => {
    expect(() => createRedisLease({ client: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    const lease = createRedisLease({ client: redis, prefix });
    await expect(lease.tryAcquire('job', 0)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    const down = newClient();
    await down.quit();
    const broken = createRedisLease({ client: down, prefix });
    await expect(broken.tryAcquire('job', 1_000)).rejects.toMatchObject({ code: 'ERR_LEASE' });
  });
});

/** The Redis idempotency store against the real Redis. */
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import { closeClients, deleteKeys, newClient, uniquePrefix, waitFor } from './helpers.js';

const redis: Redis = newClient();
const prefix = uniquePrefix('idem');

afterAll(async () => {
  await deleteKeys(redis, prefix);
  await closeClients([redis]);
});

describe('createRedisIdempotencyStore', () => {
  it('remembers a key for its TTL, under the prefix, shared by every store on the same Redis', async () => {
    const one = createRedisIdempotencyStore({ client: redis, prefix });
    const other = newClient();
    const two = createRedisIdempotencyStore({ client: other, prefix });
    try {
      expect(await one.has('g:e1')).toBe(false);
      await one.add('g:e1', 300);
      expect(await two.has('g:e1')).toBe(true);
      expect(await two.has('g:e2')).toBe(false);
      const ttl = await redis.pttl(`${prefix}:g:e1`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      await waitFor('expiry', async () => !(await two.has('g:e1')), 5_000);
    } finally {
      await closeClients([other]);
    }
  });

  it('wraps Redis failures as ERR_STORE (the pipeline then retries rather than guess)', async () => {
    const down = newClient();
    await down.quit();
    const store = createRedisIdempotencyStore({ client: down, prefix });
    await expect(store.has('g:e1')).rejects.toMatchObject({ code: 'ERR_STORE' });
    await expect(store.add('g:e1', 1000)).rejects.toMatchObject({ code: 'ERR_STORE' });
  });
});

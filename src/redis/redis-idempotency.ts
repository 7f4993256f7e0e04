import { IntegrationSyncError } from '../core/errors.js';
import { assertNonEmptyString } from '../core/options.js';
import type { IdempotencyStore } from '../bus/idempotency.js';
import type { RedisClientLike } from './redis-client.js';

/** Options of {@link createRedisIdempotencyStore}. */
export interface RedisIdempotencyStoreOptions {
  /** The host's Redis client; only `set`/`exists` are used. */
  client: Pick<RedisClientLike, 'set' | 'exists'>;
  /** Keys are `<prefix>:<group>:<event id>`. @default "integration-sync:handled" */
  prefix?: string;
}

/**
 * An {@link IdempotencyStore} in Redis, shared by every replica, so an event one replica handled
 * is skipped by the others. Each handled id is one key with a TTL (`SET NX PX`): bounded by
 * expiry, not by count. Pass it as `idempotency` to any bus, not only the Redis one.
 *
 * @example
 * const bus = createNatsBus({ ..., idempotency: createRedisIdempotencyStore({ client: redis }) });
 */
export function createRedisIdempotencyStore(options: RedisIdempotencyStoreOptions): IdempotencyStore {
  const client = options.client;
  if (typeof client !== 'object' || client === null || typeof client.set !== 'function' || typeof client.exists !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRedisIdempotencyStore: client must be a Redis client (for example an ioredis 5 Redis instance)');
  }
  const prefix = assertNonEmptyString('prefix', options.prefix ?? 'integration-sync:handled');
  const storeError = (what: string, cause: unknown): IntegrationSyncError =>
    new IntegrationSyncError('ERR_STORE', `idempotency store ${what} failed in Redis; check the connection`, { cause });

  return {
    async has(key) {
      try {
        return (await client.exists(`${prefix}:${key}`)) > 0;
      } catch (cause) {
        throw storeError('read', cause);
      }
    },
    async add(key, ttlMs) {
      try {
        await client.set(`${prefix}:${key}`, '1', 'PX', Math.max(1, Math.floor(ttlMs)), 'NX');
      } catch (cause) {
        throw storeError('write', cause);
      }
    },
  };
}

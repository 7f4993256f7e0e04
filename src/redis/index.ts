/**
 * Redis adapters: the Redis Streams `EventBus` (consumer groups, XAUTOCLAIM of dead members'
 * entries), a `Lease` (SET NX PX with fencing tokens) and a shared `IdempotencyStore`.
 * They take the host's own client (ioredis 5 fits), typed structurally: this entry imports no
 * Redis package.
 *
 * @module integration-sync/redis
 */
export { createRedisBus, redisStreamKey, type RedisBusOptions, type RedisEventBus } from './redis-bus.js';
export { createRedisLease, type RedisLeaseOptions } from './redis-lease.js';
export { createRedisIdempotencyStore, type RedisIdempotencyStoreOptions } from './redis-idempotency.js';
export { createRedisRefreshRecordStore, type RedisRefreshRecordStoreOptions } from './redis-refresh-records.js';
export type { RedisClientLike, RedisBlockingClientLike } from './redis-client.js';

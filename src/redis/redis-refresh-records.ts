import { IntegrationSyncError } from '../core/errors.js';
import { assertMs, assertNonEmptyString } from '../core/options.js';
import type { RefreshRecordStore } from '../tokens/refresh-record-store.js';
import type { RedisClientLike } from './redis-client.js';

/** Options of {@link createRedisRefreshRecordStore}. */
export interface RedisRefreshRecordStoreOptions {
  /** The host's Redis client; only `eval` is used. */
  client: Pick<RedisClientLike, 'eval'>;
  /** Keys are `<prefix>:<connection id>`. @default "integration-sync:refreshed" */
  prefix?: string;
  /** How long a record is kept; keep it above the longest gap between refresh requests. @default 604800000 (7 days) */
  ttlMs?: number;
}

// Only ever moves a record forward, so out-of-order completions on two replicas cannot undo each other.
const SET_MAX = `
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1`;
const GET = `return redis.call('GET', KEYS[1])`;

/**
 * A {@link RefreshRecordStore} in Redis, shared by every replica, so the stale-request check of
 * `TokenRefreshService` holds across them: a refresh request made before any replica's last
 * successful refresh of that connection is skipped. Pass it as `refreshRecords`.
 *
 * @example
 * const tokens = new TokenRefreshService({ bus, http, baseUrl, lease, refreshRecords: createRedisRefreshRecordStore({ client: redis }) });
 */
export function createRedisRefreshRecordStore(options: RedisRefreshRecordStoreOptions): RefreshRecordStore {
  const client = options?.client;
  if (typeof client !== 'object' || client === null || typeof client.eval !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRedisRefreshRecordStore: client must be a Redis client (for example an ioredis 5 Redis instance)');
  }
  const prefix = assertNonEmptyString('prefix', options.prefix ?? 'integration-sync:refreshed');
  const ttlMs = assertMs('ttlMs', options.ttlMs ?? 7 * 24 * 60 * 60 * 1000);
  const storeError = (what: string, cause: unknown): IntegrationSyncError =>
    new IntegrationSyncError('ERR_STORE', `refresh record ${what} failed in Redis; check the connection`, { cause });
  return {
    async get(connectionId) {
      let value: unknown;
      try {
        value = await client.eval(GET, 1, `${prefix}:${connectionId}`);
      } catch (cause) {
        throw storeError('read', cause);
      }
      const ms = typeof value === 'string' ? Number(value) : Number.NaN;
      return Number.isFinite(ms) ? ms : undefined;
    },
    async set(connectionId, refreshedAtMs) {
      try {
        await client.eval(SET_MAX, 1, `${prefix}:${connectionId}`, Math.floor(refreshedAtMs), ttlMs);
      } catch (cause) {
        throw storeError('write', cause);
      }
    },
  };
}

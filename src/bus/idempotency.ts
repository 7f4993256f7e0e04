import { assertOptionalFunction, assertOptions, assertPositiveInt } from '../core/options.js';

/**
 * Remembers which events a consumer group has handled, so a redelivered or re-published event
 * with an id already handled is skipped. Bounded: entries expire and the oldest are evicted.
 */
export interface IdempotencyStore {
  /** True when `key` was marked handled and has not expired. */
  has(key: string): Promise<boolean>;
  /** Marks `key` handled for `ttlMs`. */
  add(key: string, ttlMs: number): Promise<void>;
}

/** Options of {@link createMemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /** Most keys kept; the least recently added are evicted first. @default 100000 */
  maxEntries?: number;
  /** Time source. @default Date.now */
  now?: () => number;
}

/** Default time an event id is remembered: 24 hours. */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * An in-process {@link IdempotencyStore} (the default), bounded by `maxEntries`: the ids added
 * longest ago go first (a lookup does not refresh an id). Replicas do not share it: use the
 * Redis store from `integration-sync/redis` when several processes consume one group.
 */
export function createMemoryIdempotencyStore(options: MemoryIdempotencyStoreOptions = {}): IdempotencyStore {
  options = assertOptions('createMemoryIdempotencyStore', options);
  const maxEntries = assertPositiveInt('maxEntries', options.maxEntries ?? 100_000);
  const now = assertOptionalFunction('now', options.now) ?? Date.now;
  const entries = new Map<string, number>();
  return {
    has(key) {
      const expiresAt = entries.get(key);
      if (expiresAt === undefined) return Promise.resolve(false);
      if (expiresAt <= now()) {
        entries.delete(key);
        return Promise.resolve(false);
      }
      return Promise.resolve(true);
    },
    add(key, ttlMs) {
      entries.delete(key);
      entries.set(key, now() + ttlMs);
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value as string;
        entries.delete(oldest);
      }
      return Promise.resolve();
    },
  };
}

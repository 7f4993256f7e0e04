import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import { assertMs, assertOptionalMethods, assertOptions, CLOCK_METHODS } from '../core/options.js';
import type { Lease, LeaseHandle } from './types.js';

/** Options of {@link createMemoryLease}. */
export interface MemoryLeaseOptions {
  /** Time source for expiry. @default the system clock */
  clock?: Clock;
}

interface Entry {
  owner: string;
  token: number;
  expiresAt: number;
}

/** Expired entries are swept once this many acquisitions have passed, keeping the map bounded. */
const SWEEP_EVERY = 256;

function assertKey(key: unknown): string {
  if (typeof key !== 'string' || key === '') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `lease key must be a non-empty string; got ${typeof key}`);
  }
  return key;
}

/**
 * An in-process {@link Lease} (the default): correct among the callers of one process, useless
 * across replicas; use the Redis or PostgreSQL lease there.
 *
 * Fencing tokens come from one counter for all keys, so they increase strictly per key even
 * after a key's entry is released or swept, without remembering every key ever used.
 *
 * @example
 * const lease = createMemoryLease();
 * const handle = await lease.tryAcquire('token-refresh:conn-1', 30_000);
 * if (handle) try { await work(handle.token); } finally { await lease.release(handle); }
 */
export function createMemoryLease(options: MemoryLeaseOptions = {}): Lease {
  options = assertOptions('createMemoryLease', options);
  const clock = assertOptionalMethods('clock', options.clock, CLOCK_METHODS) ?? systemClock;
  const entries = new Map<string, Entry>();
  let counter = 0;
  let sinceSweep = 0;

  const live = (key: string, now: number): Entry | undefined => {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };

  const sweep = (now: number): void => {
    sinceSweep = 0;
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
  };

  const holds = (handle: LeaseHandle, now: number): Entry | undefined => {
    // Not a handle at all (null, a string): nobody holds through it.
    if (typeof handle !== 'object' || handle === null) return undefined;
    const entry = live(handle.key, now);
    return entry !== undefined && entry.owner === handle.owner && entry.token === handle.token ? entry : undefined;
  };

  // Async methods so a bad argument rejects (as a remote lease would) instead of throwing.
  return {
    async tryAcquire(key, ttlMs) {
      assertKey(key);
      assertMs('ttlMs', ttlMs);
      const now = clock.now();
      if (++sinceSweep >= SWEEP_EVERY) sweep(now);
      if (live(key, now) !== undefined) return null;
      const entry: Entry = { owner: randomUUID(), token: ++counter, expiresAt: now + ttlMs };
      entries.set(key, entry);
      return { key, ...entry };
    },
    async renew(handle, ttlMs) {
      assertMs('ttlMs', ttlMs);
      const now = clock.now();
      const entry = holds(handle, now);
      if (entry === undefined) return null;
      entry.expiresAt = now + ttlMs;
      return { key: handle.key, ...entry };
    },
    async release(handle) {
      if (holds(handle, clock.now()) !== undefined) entries.delete(handle.key);
    },
  };
}

import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createMemoryLease } from '../../src/leases/memory-lease.js';
import type { Lease } from '../../src/leases/types.js';
import { testLease } from '../../src/testing/lease-conformance.js';

// Same namespace, same instance: two handles on one map are two "replicas" of one process.
const byNamespace = new Map<string, Lease>();
testLease({
  name: 'memory',
  create: async (namespace) => {
    let lease = byNamespace.get(namespace);
    if (lease === undefined) {
      lease = createMemoryLease();
      byNamespace.set(namespace, lease);
    }
    return lease;
  },
  cleanup: async (namespace) => {
    byNamespace.delete(namespace);
  },
});

function manualClock(start = 1_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    setTimeout: () => undefined,
    clearTimeout: () => {},
    advance(ms) {
      now += ms;
    },
  };
}

describe('createMemoryLease on an injected clock', () => {
  it('expires exactly at expiresAt', async () => {
    const clock = manualClock();
    const lease = createMemoryLease({ clock });
    const handle = await lease.tryAcquire('k', 1_000);
    expect(handle?.expiresAt).toBe(1_001_000);
    clock.advance(999);
    expect(await lease.tryAcquire('k', 1_000)).toBeNull();
    clock.advance(1);
    expect(await lease.tryAcquire('k', 1_000)).not.toBeNull();
  });

  it('does not renew an expired lease even if nobody took it', async () => {
    const clock = manualClock();
    const lease = createMemoryLease({ clock });
    const handle = await lease.tryAcquire('k', 1_000);
    clock.advance(1_000);
    expect(await lease.renew(handle!, 1_000)).toBeNull();
  });

  it('keeps fencing tokens increasing after the key is swept away', async () => {
    const clock = manualClock();
    const lease = createMemoryLease({ clock });
    const first = await lease.tryAcquire('k', 10);
    clock.advance(20);
    // Enough acquisitions of other keys to trigger a sweep of the expired entry.
    for (let i = 0; i < 300; i++) await lease.tryAcquire(`other-${i}`, 5);
    clock.advance(10);
    const second = await lease.tryAcquire('k', 10);
    expect(second!.token).toBeGreaterThan(first!.token);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '100'])('rejects ttlMs %s with ERR_INVALID_OPTION', async (ttl) => {
    const lease = createMemoryLease();
    const error = await lease.tryAcquire('k', ttl as number).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
  });

  it('rejects an empty key with ERR_INVALID_OPTION', async () => {
    const error = await createMemoryLease().tryAcquire('', 1_000).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
  });
});

import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lease, LeaseHandle } from '../leases/types.js';

/**
 * What a {@link Lease} adapter supplies to run {@link testLease} against it. Leases created with
 * the same namespace must share their state (the same Redis key prefix, the same table rows):
 * two of them are two replicas.
 */
export interface LeaseConformanceHarness {
  /** Shown in the suite's `describe` title. */
  name: string;
  /** A lease in `namespace`; a second call with the same namespace is a second replica. */
  create(namespace: string): Promise<Lease>;
  /** Removes what the namespace left behind (keys, rows). */
  cleanup?(namespace: string): Promise<void>;
}

/** Polls every 10 ms until `probe` returns a value, failing after `timeoutMs`. */
async function eventually<T>(probe: () => Promise<T | null>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Registers the lease conformance tests (vitest): acquire, contention, expiry, renew, release
 * (only by the holder), strictly increasing fencing tokens and a parallel race with one winner.
 * Every built-in lease passes it; run it against yours.
 *
 * @example
 * import { testLease } from 'integration-sync/testing';
 * testLease({ name: 'my lease', create: async (ns) => new MyLease(client, { prefix: ns }) });
 */
export function testLease(harness: LeaseConformanceHarness): void {
  describe(`Lease conformance: ${harness.name}`, () => {
    const namespaces: string[] = [];
    const open = async (): Promise<{ ns: string; a: Lease; b: Lease; key: (name: string) => string }> => {
      const ns = `lease-conf-${randomUUID().slice(0, 8)}`;
      namespaces.push(ns);
      const a = await harness.create(ns);
      const b = await harness.create(ns);
      return { ns, a, b, key: (name) => `${ns}:${name}` };
    };

    afterEach(async () => {
      for (const ns of namespaces.splice(0)) await harness.cleanup?.(ns);
    });

    it('acquires a free key and returns a complete handle', async () => {
      const { a, key } = await open();
      const before = Date.now();
      const handle = await a.tryAcquire(key('free'), 5_000);
      expect(handle).not.toBeNull();
      const h = handle as LeaseHandle;
      expect(h.key).toBe(key('free'));
      expect(Number.isFinite(h.token)).toBe(true);
      expect(typeof h.owner).toBe('string');
      expect(h.owner.length).toBeGreaterThan(0);
      // Generous bounds: a remote store's clock may differ from ours by a little.
      expect(h.expiresAt).toBeGreaterThan(before + 2_000);
      expect(h.expiresAt).toBeLessThan(before + 60_000);
    });

    it('refuses a held key to every other caller and replica, but not other keys', async () => {
      const { a, b, key } = await open();
      expect(await a.tryAcquire(key('held'), 5_000)).not.toBeNull();
      expect(await a.tryAcquire(key('held'), 5_000)).toBeNull();
      expect(await b.tryAcquire(key('held'), 5_000)).toBeNull();
      expect(await b.tryAcquire(key('other'), 5_000)).not.toBeNull();
    });

    it('frees a key once its TTL has passed, with a larger fencing token', async () => {
      const { a, b, key } = await open();
      const first = (await a.tryAcquire(key('expiring'), 300)) as LeaseHandle;
      expect(first).not.toBeNull();
      const second = await eventually(() => b.tryAcquire(key('expiring'), 5_000), 10_000, 'the lease to expire');
      expect(second.token).toBeGreaterThan(first.token);
      expect(second.owner).not.toBe(first.owner);
    });

    it('renews only for the holder, and a renewed lease outlives its first TTL', async () => {
      const { a, b, key } = await open();
      const handle = (await a.tryAcquire(key('renew'), 600)) as LeaseHandle;
      const renewed = await a.renew(handle, 10_000);
      expect(renewed).not.toBeNull();
      expect((renewed as LeaseHandle).token).toBe(handle.token);
      expect((renewed as LeaseHandle).expiresAt).toBeGreaterThan(handle.expiresAt);
      await new Promise((r) => setTimeout(r, 900));
      expect(await b.tryAcquire(key('renew'), 5_000)).toBeNull();
      const forged: LeaseHandle = { ...handle, owner: `${handle.owner}-not-me` };
      expect(await b.renew(forged, 10_000)).toBeNull();
    });

    it('does not renew a lease that expired and was taken by someone else', async () => {
      const { a, b, key } = await open();
      const lost = (await a.tryAcquire(key('lost'), 200)) as LeaseHandle;
      const winner = await eventually(() => b.tryAcquire(key('lost'), 5_000), 10_000, 'the lease to expire');
      expect(await a.renew(lost, 5_000)).toBeNull();
      expect(await a.tryAcquire(key('lost'), 5_000)).toBeNull();
      await b.release(winner);
    });

    it('releases for the holder and ignores a release by anyone else', async () => {
      const { a, b, key } = await open();
      const handle = (await a.tryAcquire(key('release'), 10_000)) as LeaseHandle;
      await b.release({ ...handle, owner: `${handle.owner}-not-me` });
      await b.release({ ...handle, token: handle.token + 1_000_000 });
      expect(await b.tryAcquire(key('release'), 10_000)).toBeNull();
      await a.release(handle);
      const next = await b.tryAcquire(key('release'), 10_000);
      expect(next).not.toBeNull();
      // The old holder's late release must not free the new holder's lease.
      await a.release(handle);
      expect(await a.tryAcquire(key('release'), 10_000)).toBeNull();
      // Releasing twice is harmless.
      await b.release(next as LeaseHandle);
      await b.release(next as LeaseHandle);
    });

    it('issues strictly increasing fencing tokens for one key', async () => {
      const { a, b, key } = await open();
      const tokens: number[] = [];
      for (let i = 0; i < 6; i++) {
        const lease = i % 2 === 0 ? a : b;
        const handle = (await lease.tryAcquire(key('fencing'), 10_000)) as LeaseHandle;
        expect(handle).not.toBeNull();
        tokens.push(handle.token);
        await lease.release(handle);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    });

    it('lets exactly one of many parallel tryAcquire calls win', async () => {
      const { a, b, key } = await open();
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? a : b).tryAcquire(key('race'), 10_000)),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    });
  });
}

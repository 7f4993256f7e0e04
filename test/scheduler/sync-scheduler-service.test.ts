import { describe, expect, it, vi } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { parseEvent } from '../../src/events/envelope.js';
import { createMemoryLease } from '../../src/leases/memory-lease.js';
import type { Lease } from '../../src/leases/types.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';
import { TokenRefreshService } from '../../src/tokens/token-refresh-service.js';
import { collectingBus, FakeClock } from './fake-clock.js';

const http = { request: async () => ({ status: 200, headers: {}, text: '', attempts: 1 }) };

describe('SyncSchedulerService', () => {
  it('publishes a valid check-due per slot with a slot-derived id and the tick time', async () => {
    const clock = new FakeClock(1_700_000_000_500);
    const bus = collectingBus();
    const scheduler = new SyncSchedulerService({ bus, clock, intervalMs: 60_000 });
    expect(scheduler.intervalMs).toBe(60_000);
    scheduler.start();
    await clock.advance(120_000);
    await scheduler.stop();
    expect(bus.events.map((e) => e.id)).toEqual([
      'check-due:60000:28333333',
      'check-due:60000:28333334',
      'check-due:60000:28333335',
    ]);
    for (const event of bus.events) expect(parseEvent(JSON.stringify(event)).ok).toBe(true);
    expect(bus.events[0]).toMatchObject({
      type: 'integration.sync.check-due',
      time: new Date(1_700_000_000_500).toISOString(),
      data: { timestamp: new Date(1_700_000_000_500).toISOString() },
    });
    expect((bus.events[1]?.data as { timestamp: string }).timestamp).toBe(new Date(28333334 * 60_000).toISOString());
  });

  it('defaults to one minute', () => {
    expect(new SyncSchedulerService({ bus: collectingBus() }).intervalMs).toBe(60_000);
  });

  it('emits once per slot across replicas that share a lease', async () => {
    const clock = new FakeClock(0);
    const lease = createMemoryLease({ clock });
    const bus = collectingBus();
    const replicas = [1, 2, 3].map(() => new SyncSchedulerService({ bus, clock, lease, intervalMs: 1_000 }));
    for (const r of replicas) r.start();
    await clock.advance(10_000);
    await Promise.all(replicas.map((r) => r.stop()));
    const ids = bus.events.map((e) => e.id);
    expect(ids).toHaveLength(11);
    expect(new Set(ids).size).toBe(11);
  });

  it('emits anyway (same id) when the lease store fails, and logs it', async () => {
    const clock = new FakeClock(0);
    const broken: Lease = {
      tryAcquire: async () => {
        throw new Error('redis down');
      },
      renew: async () => null,
      release: async () => {},
    };
    const warn = vi.fn();
    const logger = { debug: () => {}, info: () => {}, warn, error: () => {} };
    const bus = collectingBus();
    const scheduler = new SyncSchedulerService({ bus, clock, lease: broken, intervalMs: 1_000, logger });
    scheduler.start();
    await clock.advance(0);
    await scheduler.stop();
    expect(bus.events.map((e) => e.id)).toEqual(['check-due:1000:0']);
    expect(warn).toHaveBeenCalled();
  });

  it('survives a publish that rejects and reports it to onError', async () => {
    const clock = new FakeClock(0);
    let calls = 0;
    const bus = collectingBus(async () => {
      calls++;
      if (calls === 1) throw new Error('broker away');
    });
    const onError = vi.fn();
    const scheduler = new SyncSchedulerService({ bus, clock, intervalMs: 1_000, onError });
    scheduler.start();
    await clock.advance(2_000);
    await scheduler[Symbol.asyncDispose]();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(bus.events.map((e) => e.id)).toEqual(['check-due:1000:1', 'check-due:1000:2']);
    expect(clock.pending).toBe(0);
  });

  it('passes the tick signal to publish, aborted when stop gives up', async () => {
    const clock = new FakeClock(0);
    let seen: AbortSignal | undefined;
    const bus = {
      publish: (_event: unknown, options?: { signal?: AbortSignal }) => {
        seen = options?.signal;
        return new Promise<void>(() => {});
      },
      subscribe: async () => {
        throw new Error('unused');
      },
      close: async () => {},
    };
    const scheduler = new SyncSchedulerService({ bus, clock, intervalMs: 1_000, stopTimeoutMs: 100 });
    scheduler.start();
    const stopping = scheduler.stop();
    await clock.advance(100);
    await stopping;
    expect(seen?.aborted).toBe(true);
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 'soon'])('rejects intervalMs %s with ERR_INVALID_OPTION', (intervalMs) => {
    let error: unknown;
    try {
      new SyncSchedulerService({ bus: collectingBus(), intervalMs: intervalMs as number });
    } catch (e) {
      error = e;
    }
    expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
  });

  it('rejects a missing bus with ERR_INVALID_OPTION', () => {
    expect(() => new SyncSchedulerService({} as never)).toThrow(/bus must be an EventBus/);
  });
});

describe('TokenRefreshService check-expiring timer', () => {
  it('publishes check-expiring hourly with thresholdTime one interval plus five minutes ahead', async () => {
    const clock = new FakeClock(0);
    const bus = collectingBus();
    const service = new TokenRefreshService({ bus, http, baseUrl: 'http://127.0.0.1:1', clock });
    expect(service.intervalMs).toBe(3_600_000);
    service.start();
    await clock.advance(3_600_000);
    await service.stop();
    expect(bus.events.map((e) => e.id)).toEqual(['check-expiring:3600000:0', 'check-expiring:3600000:1']);
    expect(bus.events[1]).toMatchObject({
      type: 'integration.token.check-expiring',
      data: { timestamp: new Date(3_600_000).toISOString(), thresholdTime: new Date(3_600_000 + 3_600_000 + 300_000).toISOString() },
    });
    for (const event of bus.events) expect(parseEvent(event).ok).toBe(true);
  });

  it('honours lookAheadMs and lookAheadMarginMs', async () => {
    const clock = new FakeClock(0);
    const bus = collectingBus();
    const a = new TokenRefreshService({ bus, http, baseUrl: 'http://x.test', clock, intervalMs: 1_000, lookAheadMarginMs: 10 });
    const b = new TokenRefreshService({ bus, http, baseUrl: 'http://x.test', clock, intervalMs: 1_000, lookAheadMs: 42 });
    a.start();
    b.start();
    await Promise.all([a.stop(), b.stop()]);
    const thresholds = bus.events.map((e) => (e.data as { thresholdTime: string }).thresholdTime);
    expect(thresholds).toEqual([new Date(1_010).toISOString(), new Date(42).toISOString()]);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '60000'])('rejects intervalMs %s with ERR_INVALID_OPTION', (intervalMs) => {
    let error: unknown;
    try {
      new TokenRefreshService({ bus: collectingBus(), http, baseUrl: 'http://x.test', intervalMs: intervalMs as number });
    } catch (e) {
      error = e;
    }
    expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
  });

  it.each([
    ['no http', { bus: collectingBus(), baseUrl: 'http://x.test' }],
    ['no baseUrl', { bus: collectingBus(), http }],
    ['relative baseUrl', { bus: collectingBus(), http, baseUrl: '/api' }],
    ['ftp baseUrl', { bus: collectingBus(), http, baseUrl: 'ftp://x.test' }],
    ['credentials in baseUrl', { bus: collectingBus(), http, baseUrl: 'https://user:secret@x.test' }],
    ['negative retries', { bus: collectingBus(), http, baseUrl: 'http://x.test', retries: -1 }],
    ['zero leaseTtlMs', { bus: collectingBus(), http, baseUrl: 'http://x.test', leaseTtlMs: 0 }],
  ])('rejects %s with ERR_INVALID_OPTION, without echoing secrets', (_name, options) => {
    let error: unknown;
    try {
      new TokenRefreshService(options as never);
    } catch (e) {
      error = e;
    }
    expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
    expect(String((error as Error).message)).not.toContain('secret');
  });
});

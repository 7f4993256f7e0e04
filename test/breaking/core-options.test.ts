import { describe, expect, it } from 'vitest';
import { createMemoryAuditStore } from '../../src/audit/memory-sink.js';
import { createMemoryIdempotencyStore } from '../../src/bus/idempotency.js';
import { createMemoryBroker, createMemoryBus } from '../../src/bus/memory-bus.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { SyncTaskEventConsumer } from '../../src/events/consumers/SyncTaskEventConsumer.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';
import { createMemoryLease } from '../../src/leases/memory-lease.js';
import { createRefreshPlanner } from '../../src/planners/refresh-planner.js';
import { createSyncPlanner } from '../../src/planners/sync-planner.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';
import { createMemorySyncTaskStore } from '../../src/tasks/memory-task-store.js';
import { TokenRefreshService } from '../../src/tokens/token-refresh-service.js';

const bus = createMemoryBus();
const http = { request: async () => ({ status: 200, headers: {}, text: '', attempts: 1 }) };
const tokenRefresh = { refreshConnectionTokens: async () => ({ status: 'skipped' as const, connectionId: 'c', reason: 'lease_held' as const }) };
const syncService = { execute: async () => {} };

/** Values that are the wrong type for nearly any option. */
const junk: Record<string, unknown> = { null: null, string: 'x', number: 5, NaN: Number.NaN, function: () => {}, emptyObject: {} };

function expectInvalid(make: () => unknown): void {
  let thrown: unknown;
  try {
    make();
  } catch (error) {
    thrown = error;
  }
  expect(isIntegrationSyncError(thrown, 'ERR_INVALID_OPTION'), `threw ${String(thrown)}`).toBe(true);
}

/** Each factory with the option bag merged over a valid base. */
const factories: Record<string, (options: Record<string, unknown>) => unknown> = {
  createMemoryBus: (o) => createMemoryBus(o),
  SyncSchedulerService: (o) => new SyncSchedulerService({ bus, ...o }),
  TokenRefreshService: (o) => new TokenRefreshService({ bus, http, baseUrl: 'http://127.0.0.1:9', ...o }),
  SyncTaskEventConsumer: (o) => new SyncTaskEventConsumer({ bus, tokenRefresh, syncService, ...o }),
  createSyncPlanner: (o) => createSyncPlanner({ bus, findDue: () => [], ...o }),
  createRefreshPlanner: (o) => createRefreshPlanner({ bus, findExpiring: async () => ({ items: [] }), ...o }),
  createFetchHttpClient: (o) => createFetchHttpClient(o),
  createMemoryAuditStore: (o) => createMemoryAuditStore(o),
  createMemoryLease: (o) => createMemoryLease(o),
  createMemorySyncTaskStore: (o) => createMemorySyncTaskStore(o),
  createMemoryIdempotencyStore: (o) => createMemoryIdempotencyStore(o),
  createMemoryBroker: (o) => createMemoryBroker(o),
};

/** Which options each factory takes, and which junk values are wrong for them (all, here). */
const optionNames: Record<string, string[]> = {
  createMemoryBus: ['logger', 'clock', 'audit', 'idempotency', 'onDeadLetter', 'maxAttempts', 'retryBaseMs', 'retryMaxMs', 'idempotencyTtlMs', 'closeTimeoutMs', 'maxPayloadBytes', 'maxDeadLetters', 'broker'],
  SyncSchedulerService: ['logger', 'clock', 'lease', 'onError', 'emitOnStart', 'intervalMs', 'stopTimeoutMs', 'source'],
  TokenRefreshService: ['logger', 'clock', 'lease', 'onError', 'emitOnStart', 'audit', 'refreshRecords', 'intervalMs', 'headers', 'buildRequest'],
  SyncTaskEventConsumer: ['logger', 'clock', 'lease', 'store', 'audit', 'idGenerator', 'concurrency', 'overlap', 'group'],
  createSyncPlanner: ['logger', 'clock', 'audit', 'concurrency', 'source'],
  createRefreshPlanner: ['logger', 'clock', 'audit', 'concurrency', 'pageSize', 'maxPages'],
  createFetchHttpClient: ['logger', 'clock', 'fetch', 'random', 'headers', 'retries', 'timeoutMs'],
  createMemoryAuditStore: ['maxRecords'],
  createMemoryLease: ['clock'],
  createMemorySyncTaskStore: ['clock', 'maxTasks'],
  createMemoryIdempotencyStore: ['maxEntries', 'now'],
  createMemoryBroker: ['maxQueueLength'],
};

const NUMERIC = ['maxAttempts', 'retryBaseMs', 'retryMaxMs', 'idempotencyTtlMs', 'closeTimeoutMs', 'maxPayloadBytes', 'maxDeadLetters', 'intervalMs', 'stopTimeoutMs', 'concurrency', 'pageSize', 'maxPages', 'retries', 'timeoutMs', 'maxRecords', 'maxTasks', 'maxEntries', 'maxQueueLength'];

describe('constructors throw ERR_INVALID_OPTION for wrong option types, never a later TypeError', () => {
  for (const [factory, make] of Object.entries(factories)) {
    for (const bag of ['null', 'string', 'number', 'function'] as const) {
      if (factory === 'SyncSchedulerService' || factory === 'TokenRefreshService' || factory === 'SyncTaskEventConsumer' || factory.endsWith('Planner')) continue;
      it(`${factory}(${bag})`, () => expectInvalid(() => make(junk[bag] as Record<string, unknown>)));
    }
    for (const option of optionNames[factory] ?? []) {
      for (const [label, value] of Object.entries(junk)) {
        // null means "not set" (the default applies), as `??` reads it everywhere.
        if (label === 'null') continue;
        // A function is right for function options, an empty object for `headers`.
        if (label === 'function' && ['onDeadLetter', 'onError', 'idGenerator', 'buildRequest', 'fetch', 'random', 'now', 'headers'].includes(option)) continue;
        if (label === 'emptyObject' && option === 'headers') continue;
        if (label === 'number' && NUMERIC.includes(option)) continue;
        if (label === 'string' && ['source', 'group'].includes(option)) continue;
        it(`${factory} { ${option}: ${label} }`, () => expectInvalid(() => make({ [option]: value })));
      }
    }
  }
});

describe('numbers at the edges', () => {
  for (const value of [-1, 1.5, Number.POSITIVE_INFINITY, 2 ** 31, Number.MAX_SAFE_INTEGER + 2]) {
    it(`intervalMs ${value} is refused by both timers`, () => {
      expectInvalid(() => new SyncSchedulerService({ bus, intervalMs: value }));
      expectInvalid(() => new TokenRefreshService({ bus, http, baseUrl: 'http://127.0.0.1:9', intervalMs: value }));
    });
  }
  it('retry options of the memory bus: negative, fractional or inverted', () => {
    expectInvalid(() => createMemoryBus({ retryBaseMs: -1 }));
    expectInvalid(() => createMemoryBus({ retryMaxMs: 0.5 }));
    expectInvalid(() => createMemoryBus({ maxAttempts: 0 }));
    expectInvalid(() => createMemoryBus({ idempotencyTtlMs: -5 }));
  });
});

describe('method calls with null options behave as with none', () => {
  it('bus, subscription, consumer, planners, router, lease and store', async () => {
    const { EventRouter } = await import('../../src/events/router.js');
    const { createEvent } = await import('../../src/events/envelope.js');
    const local = createMemoryBus();
    const event = createEvent('integration.sync.check-due', { timestamp: new Date().toISOString() });
    await expect(local.publish(event, null as never)).resolves.toBeUndefined();
    const sub = await local.subscribe({ group: 'g', types: ['x'], handler: async () => {} });
    await expect(sub.close(null as never)).resolves.toBeUndefined();
    const routed = new EventRouter().on('x', async () => {});
    await expect(routed.subscribe(local, null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    const consumer = new SyncTaskEventConsumer({ bus: local, tokenRefresh, syncService });
    await expect(consumer.stop(null as never)).resolves.toBeUndefined();
    const planner = createSyncPlanner({ bus: local, findDue: () => [] });
    await expect(planner.plan(event, null as never)).resolves.toMatchObject({ published: 0 });
    const refresh = createRefreshPlanner({ bus: local, findExpiring: async () => ({ items: [] }) });
    const expiring = createEvent('integration.token.check-expiring', { timestamp: new Date().toISOString(), thresholdTime: new Date().toISOString() });
    await expect(refresh.plan(expiring, null as never)).resolves.toMatchObject({ published: 0 });
    const lease = createMemoryLease();
    await expect(lease.renew(null as never, 1000)).resolves.toBeNull();
    await expect(lease.release(null as never)).resolves.toBeUndefined();
    await expect(createMemorySyncTaskStore().list(null as never)).resolves.toEqual([]);
    await expect(local.close(null as never)).resolves.toBeUndefined();
  });
});

describe('a null constructor option means "not set", as `??` reads it', () => {
  // Each of these threw ERR_INVALID_OPTION for null while its siblings took the default.
  const nullable: Record<string, string[]> = {
    TokenRefreshService: ['timeoutMs', 'retries', 'buildRequest', 'headers'],
    SyncTaskEventConsumer: ['lease', 'maxAttempts', 'syncTimeoutMs', 'overlap', 'idGenerator'],
    createSyncPlanner: ['source'],
    createRefreshPlanner: ['source'],
    createMemoryBus: ['broker'],
  };
  for (const [factory, options] of Object.entries(nullable)) {
    for (const option of options) {
      it(`${factory} { ${option}: null }`, async () => {
        const made = factories[factory]!({ [option]: null }) as { close?: () => Promise<void> };
        expect(made).toBeDefined();
        await made.close?.();
      });
    }
  }
  it('TokenRefreshService with buildRequest null still needs a baseUrl for the default request', () => {
    expectInvalid(() => new TokenRefreshService({ bus, http, buildRequest: null as never }));
  });
});

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createEvent,
  createMemoryBroker,
  createMemoryBus,
  createMemoryLease,
  createMemorySyncTaskStore,
  EventTypes,
  isIntegrationSyncError,
  SyncTaskEventConsumer,
  type AuditRecord,
  type CloudEvent,
  type ConnectionRefreshRequest,
  type EventBus,
  type Lease,
  type MemoryEventBus,
  type RefreshOutcome,
  type SyncTask,
  type SyncTaskEventConsumerOptions,
} from '../../src/index.js';
import { taskErrorText } from '../../src/tasks/task-error.js';

const SECRET = 'sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0';

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface ExecuteCall {
  task: SyncTask;
  signal: AbortSignal;
}

/** A sync service whose behaviour each test sets; records every call. */
function fakeSync() {
  const calls: ExecuteCall[] = [];
  let behaviour: (call: ExecuteCall) => Promise<void | Record<string, unknown>> = async () => ({ fetched: 1 });
  return {
    calls,
    set(fn: typeof behaviour) {
      behaviour = fn;
    },
    service: {
      execute(task: SyncTask, options: { signal: AbortSignal }) {
        const call = { task, signal: options.signal };
        calls.push(call);
        return behaviour(call);
      },
    },
  };
}

function fakeRefresher(outcome: RefreshOutcome | Error) {
  const calls: { request: ConnectionRefreshRequest; signal: AbortSignal | undefined }[] = [];
  return {
    calls,
    refresher: {
      async refreshConnectionTokens(request: ConnectionRefreshRequest, options?: { signal?: AbortSignal }) {
        calls.push({ request, signal: options?.signal });
        if (outcome instanceof Error) throw outcome;
        return outcome;
      },
    },
  };
}

const refreshed: RefreshOutcome = { status: 'refreshed', connectionId: 'conn_81', refreshedAt: new Date().toISOString(), attempts: 1 };

function scheduled(integrationId = 'int_crm', tenantId = 'tenant_a', id?: string): CloudEvent {
  return createEvent(
    EventTypes.SyncScheduled,
    { integrationId, tenantId, trigger: 'schedule', scheduledAt: new Date().toISOString() },
    id ? { id } : {},
  );
}

function webhook(integrationId = 'int_tickets', tenantId = 'tenant_b', extra: Record<string, unknown> = {}): CloudEvent {
  return createEvent(EventTypes.WebhookReceived, { integrationId, tenantId, ...extra });
}

describe('SyncTaskEventConsumer', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(options: Partial<SyncTaskEventConsumerOptions> & { bus?: MemoryEventBus } = {}) {
    const bus = options.bus ?? createMemoryBus({ retryBaseMs: 5, retryMaxMs: 20, maxAttempts: 3, closeTimeoutMs: 200 });
    const sync = fakeSync();
    const refresh = fakeRefresher(refreshed);
    const audit: AuditRecord[] = [];
    const store = createMemorySyncTaskStore();
    const consumer = new SyncTaskEventConsumer({
      bus,
      syncService: sync.service,
      tokenRefresh: refresh.refresher,
      store,
      group: `sync-${Math.random().toString(36).slice(2)}`,
      audit: { record: (r) => void audit.push(r) },
      stopTimeoutMs: 500,
      ...options,
    });
    cleanups.push(async () => {
      await consumer.stop({ timeoutMs: 200 });
      await bus.close({ timeoutMs: 200 });
    });
    await consumer.start();
    return { bus, sync, refresh, audit, store, consumer };
  }

  it('integration.sync.scheduled: one task, executed once, pending -> running -> succeeded, each audited', async () => {
    const { bus, sync, audit, store, consumer } = await setup();
    const event = scheduled();
    await bus.publish(event);
    await waitFor(async () => (await store.get(`${consumer.group}:${event.id}`))?.status === 'succeeded', 'task to succeed');
    const task = await store.get(`${consumer.group}:${event.id}`);
    expect(task).toMatchObject({ integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', eventId: event.id, result: { fetched: 1 } });
    expect(task?.startedAt).toBeDefined();
    expect(task?.finishedAt).toBeDefined();
    expect(sync.calls).toHaveLength(1);
    expect(sync.calls[0]?.task).toMatchObject({ id: task?.id, status: 'running' });
    expect(sync.calls[0]?.signal).toBeInstanceOf(AbortSignal);
    const transitions = audit.filter((r) => r.kind === 'task.transition');
    expect(transitions.map((r) => r.outcome)).toEqual(['pending', 'running', 'succeeded']);
    for (const r of transitions) {
      expect(r).toMatchObject({ integrationId: 'int_crm', tenantId: 'tenant_a', taskId: task?.id, eventId: event.id, group: consumer.group });
    }
  });

  it('integration.webhook.received: trigger webhook, with entityType and filters', async () => {
    const { bus, sync, store } = await setup();
    const fixture = JSON.parse(readFileSync(join(__dirname, '../fixtures/events/valid-webhook-received.json'), 'utf8')) as CloudEvent;
    await bus.publish(fixture);
    await waitFor(async () => (await store.list({ status: 'succeeded' })).length === 1, 'webhook task');
    const [task] = await store.list();
    expect(task).toMatchObject({
      trigger: 'webhook',
      integrationId: 'int_tickets',
      tenantId: 'tenant_b',
      entityType: 'ticket',
      filters: { updatedSince: '2026-11-30T09:00:00Z', ids: ['T-1', 'T-2'] },
    });
    expect(sync.calls[0]?.task.entityType).toBe('ticket');
  });

  it('integration.token.refresh-requested: calls the refresher with the connection data and a signal; a failed outcome is acked', async () => {
    const refresh = fakeRefresher({ status: 'failed', connectionId: 'conn_81', error: 'invalid_grant', retryable: false, attempts: 1 });
    const { bus, sync } = await setup({ tokenRefresh: refresh.refresher });
    const fixture = JSON.parse(readFileSync(join(__dirname, '../fixtures/events/valid-refresh-requested.json'), 'utf8')) as CloudEvent;
    await bus.publish(fixture);
    await waitFor(() => refresh.calls.length === 1, 'refresh call');
    expect(refresh.calls[0]?.request).toEqual({
      connectionId: 'conn_81',
      integrationId: 'int_crm',
      tenantId: 'tenant_a',
      expiresAt: '2026-11-30T09:40:00.000Z',
      requestedAt: '2026-11-30T09:00:00.000Z',
    });
    expect(refresh.calls[0]?.signal).toBeInstanceOf(AbortSignal);
    // Acked: no redelivery, no dead letter.
    await new Promise((r) => setTimeout(r, 100));
    expect(refresh.calls).toHaveLength(1);
    expect(bus.deadLetters()).toEqual([]);
    expect(sync.calls).toHaveLength(0);
  });

  it('a refresher that throws makes the event retry, then dead-letters it', async () => {
    const refresh = fakeRefresher(new Error(`refresh blew up with Bearer ${SECRET}`));
    const { bus } = await setup({ tokenRefresh: refresh.refresher });
    await bus.publish(createEvent(EventTypes.TokenRefreshRequested, {
      connectionId: 'c1', integrationId: 'i1', tenantId: 't1', expiresAt: new Date().toISOString(), requestedAt: new Date().toISOString(),
    }));
    await waitFor(() => bus.deadLetters().length === 1, 'dead letter');
    expect(refresh.calls).toHaveLength(3);
    expect(bus.deadLetters()[0]).toMatchObject({ reason: 'max_attempts' });
    expect(JSON.stringify(bus.deadLetters())).not.toContain(SECRET);
  });

  it('shared fixture cases: valid consumed events are handled, invalid ones never reach the services', async () => {
    const broker = createMemoryBroker();
    const bus = createMemoryBus({ broker, retryBaseMs: 5 });
    const { sync, refresh, store } = await setup({ bus });
    const dir = join(__dirname, '../fixtures/events');
    const consumed = new Set<string>([EventTypes.SyncScheduled, EventTypes.WebhookReceived, EventTypes.TokenRefreshRequested]);
    let validConsumed = 0;
    let invalid = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      const type = (JSON.parse(text) as { type: string }).type;
      if (!consumed.has(type)) continue;
      if (file.startsWith('valid')) validConsumed += 1;
      else invalid += 1;
      broker.publishRaw(type, text);
    }
    expect(invalid).toBe(4);
    const expectedSyncs = validConsumed - 1; // one valid consumed case is a refresh request
    await waitFor(async () => (await store.list({ status: 'succeeded' })).length === expectedSyncs && refresh.calls.length === 1 && bus.deadLetters().length === invalid, 'fixtures handled');
    expect(bus.deadLetters().every((d) => d.reason === 'invalid')).toBe(true);
    expect(sync.calls.map((c) => c.task.eventId).sort()).toEqual(['6f1c2a1e-0005', '6f1c2a1e-0006', '6f1c2a1e-0007', '6f1c2a1e-0009']);
    expect(refresh.calls.map((c) => c.request.connectionId)).toEqual(['conn_81']);
  });

  it('a failed sync records a secret-free error, is retried under the same task id, and succeeds', async () => {
    const { bus, sync, audit, store, consumer } = await setup();
    sync.set(async (call) => {
      if (sync.calls.length === 1) throw new Error(`provider said 401 for Authorization: Bearer ${SECRET}`);
      expect(call.task.error).toBeUndefined();
    });
    const event = scheduled();
    await bus.publish(event);
    const id = `${consumer.group}:${event.id}`;
    await waitFor(async () => (await store.get(id))?.status === 'succeeded', 'retry to succeed');
    expect(sync.calls.map((c) => c.task.id)).toEqual([id, id]);
    expect((await store.list()).length).toBe(1);
    const outcomes = audit.filter((r) => r.kind === 'task.transition').map((r) => r.outcome);
    expect(outcomes).toEqual(['pending', 'running', 'failed', 'running', 'succeeded']);
    const failed = audit.find((r) => r.outcome === 'failed');
    expect(failed?.reason).toContain('[redacted]');
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });

  it('a sync that keeps failing ends failed and dead-lettered, with no secret anywhere', async () => {
    const { bus, sync, store } = await setup();
    sync.set(async () => {
      throw new Error(`upstream body {"access_token":"${SECRET}"} token=${SECRET}`);
    });
    await bus.publish(scheduled());
    await waitFor(() => bus.deadLetters().length === 1, 'dead letter');
    expect(sync.calls).toHaveLength(3);
    const [task] = await store.list();
    expect(task?.status).toBe('failed');
    expect(task?.error).toBeDefined();
    expect(task?.error).not.toContain(SECRET);
    expect(bus.deadLetters()[0]).toMatchObject({ reason: 'max_attempts', error: { code: 'ERR_SYNC_FAILED' } });
    expect(JSON.stringify(bus.deadLetters())).not.toContain(SECRET);
  });

  it('records the error code when the thrown error has one; a non-retryable error is dead-lettered at once', async () => {
    const { bus, sync, store } = await setup();
    sync.set(async () => {
      throw Object.assign(new Error(`bad config ${SECRET}`), { code: 'E_CONFIG', retryable: false });
    });
    await bus.publish(scheduled());
    await waitFor(() => bus.deadLetters().length === 1, 'dead letter');
    expect(sync.calls).toHaveLength(1);
    expect(bus.deadLetters()[0]?.reason).toBe('non_retryable');
    expect((await store.list())[0]?.error).toBe('E_CONFIG');
  });

  it('a redelivered event (same id) does not run a second sync, even on another replica without the bus dedupe', async () => {
    const { sync, store, consumer, audit } = await setup();
    const event = scheduled();
    await consumer.router.handle(event);
    await consumer.router.handle(event);
    expect(sync.calls).toHaveLength(1);
    // A second replica sharing the task store (its own bus, its own idempotency memory).
    const other = new SyncTaskEventConsumer({
      bus: createMemoryBus(),
      syncService: sync.service,
      tokenRefresh: fakeRefresher(refreshed).refresher,
      store,
      group: consumer.group,
    });
    await other.router.handle(event);
    expect(sync.calls).toHaveLength(1);
    expect(audit.filter((r) => r.outcome === 'succeeded')).toHaveLength(1);
    await other.stop();
  });

  it('a webhook storm of 1000 events for one integration costs exactly 2 syncs; the rest are skipped', async () => {
    const { bus, sync, store } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    sync.set(async () => {
      if (sync.calls.length === 1) await gate;
    });
    const events = Array.from({ length: 1000 }, () => webhook('int_storm', 'tenant_s', { entityType: 'ticket' }));
    for (const e of events) await bus.publish(e);
    await waitFor(async () => (await store.list({ status: 'skipped', limit: 1000 })).length === 998, '998 coalesced', 30_000);
    release();
    await waitFor(async () => (await store.list({ status: 'succeeded' })).length === 2, 'two syncs');
    expect(sync.calls).toHaveLength(2);
    const followUpId = sync.calls[1]?.task.id;
    const skipped = await store.list({ status: 'skipped', limit: 1000 });
    expect(skipped.every((t) => t.error === `coalesced into ${followUpId}`)).toBe(true);
    expect(sync.calls[1]?.task.entityType).toBe('ticket');
    expect(bus.deadLetters()).toEqual([]);
  });

  it('coalesced webhooks with different scopes widen the follow-up to a full sync', async () => {
    const { bus, sync, store } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    sync.set(async () => {
      if (sync.calls.length === 1) await gate;
    });
    await bus.publish(webhook('int_w', 't', { entityType: 'ticket' }));
    await waitFor(() => sync.calls.length === 1, 'first run');
    await bus.publish(webhook('int_w', 't', { entityType: 'ticket', filters: { ids: ['1'] } }));
    await bus.publish(webhook('int_w', 't', { entityType: 'contact' }));
    await waitFor(async () => (await store.list({ status: 'skipped' })).length === 1, 'merge');
    release();
    await waitFor(async () => (await store.list({ status: 'succeeded' })).length === 2, 'follow-up');
    expect(sync.calls[1]?.task.entityType).toBeUndefined();
    expect(sync.calls[1]?.task.filters).toBeUndefined();
    const stored = await store.get(sync.calls[1]?.task.id ?? '');
    expect(stored?.entityType).toBeUndefined();
    expect(stored?.filters).toBeUndefined();
  });

  it('different integrations and tenants run in parallel', async () => {
    const { bus, sync } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    sync.set(() => gate);
    await bus.publish(scheduled('int_a', 't1'));
    await bus.publish(scheduled('int_a', 't2'));
    await bus.publish(scheduled('int_b', 't1'));
    await waitFor(() => sync.calls.length === 3, 'three concurrent syncs');
    release();
  });

  it("overlap 'queue' runs every arrival, one at a time, in order", async () => {
    const { bus, sync, store } = await setup({ overlap: 'queue' });
    let running = 0;
    let maxRunning = 0;
    sync.set(async () => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 20));
      running -= 1;
    });
    const events = [scheduled('q', 't'), scheduled('q', 't'), scheduled('q', 't'), scheduled('q', 't')];
    for (const e of events) await bus.publish(e);
    await waitFor(async () => (await store.list({ status: 'succeeded' })).length === 4, 'all four');
    expect(sync.calls.map((c) => c.task.eventId)).toEqual(events.map((e) => e.id));
    expect(maxRunning).toBe(1);
  });

  it("overlap 'skip' drops arrivals while a sync runs, recorded skipped", async () => {
    const { bus, sync, store } = await setup({ overlap: 'skip' });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    sync.set(() => gate);
    await bus.publish(scheduled('s', 't'));
    await waitFor(() => sync.calls.length === 1, 'first');
    await bus.publish(scheduled('s', 't'));
    await bus.publish(scheduled('s', 't'));
    await waitFor(async () => (await store.list({ status: 'skipped' })).length === 2, 'skips');
    const first = sync.calls[0]?.task.id;
    expect((await store.list({ status: 'skipped' })).every((t) => t.error === `sync ${first} already running`)).toBe(true);
    release();
    await waitFor(async () => (await store.list({ status: 'succeeded' })).length === 1, 'first done');
    expect(sync.calls).toHaveLength(1);
  });

  it('stop() mid-sync aborts the signal, the task is not marked succeeded, and stop is idempotent', async () => {
    const { bus, sync, store, consumer } = await setup();
    sync.set(
      (call) =>
        new Promise((_resolve, reject) => {
          call.signal.addEventListener('abort', () => reject(call.signal.reason), { once: true });
        }),
    );
    await bus.publish(scheduled());
    await waitFor(() => sync.calls.length === 1, 'sync started');
    const stopping = consumer.stop({ timeoutMs: 50 });
    expect(consumer.stop()).toBe(stopping);
    await stopping;
    expect(sync.calls[0]?.signal.aborted).toBe(true);
    const [task] = await store.list();
    expect(task?.status).toBe('failed');
    expect(task?.error).toMatch(/^ERR_(ABORTED|CLOSED)$/);
    expect(consumer.running).toBe(false);
    await expect(consumer.start()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('stop() returns even when the sync ignores its signal', async () => {
    const { bus, sync, store, consumer } = await setup();
    sync.set(() => new Promise(() => {}));
    await bus.publish(scheduled());
    await waitFor(() => sync.calls.length === 1, 'sync started');
    await consumer.stop({ timeoutMs: 30 });
    expect((await store.list())[0]?.status).not.toBe('succeeded');
  });

  it('syncTimeoutMs fails a sync that runs too long', async () => {
    const { bus, sync, store } = await setup({ syncTimeoutMs: 30, maxAttempts: 1 });
    sync.set(() => new Promise(() => {}));
    await bus.publish(scheduled());
    await waitFor(() => bus.deadLetters().length === 1, 'dead letter');
    expect((await store.list())[0]).toMatchObject({ status: 'failed', error: 'ERR_SYNC_TIMEOUT' });
  });

  it('with a lease, a key held by another replica keeps the task pending until it is free; the lease is held while syncing', async () => {
    const lease = createMemoryLease();
    const key = 'sync:int_l:tenant_l';
    const elsewhere = await lease.tryAcquire(key, 60_000);
    const bus = createMemoryBus({ retryBaseMs: 5, retryMaxMs: 20, maxAttempts: 100, closeTimeoutMs: 200 });
    const { sync, store } = await setup({ bus, lease, leaseWaitMs: 20 });
    let heldDuringSync: unknown = 'unset';
    sync.set(async () => {
      heldDuringSync = await lease.tryAcquire(key, 1000);
    });
    await bus.publish(scheduled('int_l', 'tenant_l'));
    await waitFor(async () => (await store.list()).length === 1, 'task created');
    await new Promise((r) => setTimeout(r, 150));
    expect(sync.calls).toHaveLength(0);
    expect((await store.list())[0]?.status).toBe('pending');
    await lease.release(elsewhere as NonNullable<typeof elsewhere>);
    await waitFor(async () => (await store.list())[0]?.status === 'succeeded', 'sync after release');
    expect(sync.calls).toHaveLength(1);
    expect(heldDuringSync).toBeNull();
    expect(await lease.tryAcquire(key, 1000)).not.toBeNull();
  });

  it('a lost lease aborts the sync, which fails with ERR_LEASE', async () => {
    let released = 0;
    const lease: Lease = {
      tryAcquire: async (key, ttlMs) => ({ key, token: 1, owner: 'me', expiresAt: Date.now() + ttlMs }),
      renew: async () => null,
      release: async () => {
        released += 1;
      },
    };
    const bus = createMemoryBus({ retryBaseMs: 5, maxAttempts: 1, closeTimeoutMs: 200 });
    const { sync, store } = await setup({ bus, lease, leaseTtlMs: 30 });
    sync.set(
      (call) =>
        new Promise((_resolve, reject) => {
          call.signal.addEventListener('abort', () => reject(call.signal.reason), { once: true });
        }),
    );
    await bus.publish(scheduled());
    await waitFor(() => bus.deadLetters().length === 1, 'dead letter');
    expect((await store.list())[0]).toMatchObject({ status: 'failed', error: 'ERR_LEASE' });
    expect(sync.calls[0]?.signal.aborted).toBe(true);
    expect(released).toBe(1);
  });

  it('judges lease expiry on its own clock when renewals fail, even if the store clock runs far ahead', async () => {
    // The lease store (a database) reports expiry an hour ahead of us; renewals then fail.
    const lease: Lease = {
      tryAcquire: async (key, ttlMs) => ({ key, token: 1, owner: 'me', expiresAt: Date.now() + 3_600_000 + ttlMs }),
      renew: async () => {
        throw new Error('lease store unreachable');
      },
      release: async () => {},
    };
    const bus = createMemoryBus({ retryBaseMs: 5, maxAttempts: 1, closeTimeoutMs: 200 });
    const { sync, store } = await setup({ bus, lease, leaseTtlMs: 60 });
    sync.set(
      (call) =>
        new Promise((_resolve, reject) => {
          call.signal.addEventListener('abort', () => reject(call.signal.reason), { once: true });
        }),
    );
    await bus.publish(scheduled());
    await waitFor(() => bus.deadLetters().length === 1, 'dead letter after the lease expired locally');
    expect((await store.list())[0]).toMatchObject({ status: 'failed', error: 'ERR_LEASE' });
    expect(sync.calls[0]?.signal.aborted).toBe(true);
  });

  it('start() is idempotent: one subscription', async () => {
    const inner = createMemoryBus();
    let subscribes = 0;
    const bus: EventBus = {
      publish: (e, o) => inner.publish(e, o),
      subscribe: (o) => {
        subscribes += 1;
        return inner.subscribe(o);
      },
      close: (o) => inner.close(o),
    };
    const consumer = new SyncTaskEventConsumer({ bus, syncService: fakeSync().service, tokenRefresh: fakeRefresher(refreshed).refresher });
    await Promise.all([consumer.start(), consumer.start()]);
    await consumer.start();
    expect(subscribes).toBe(1);
    expect(consumer.running).toBe(true);
    await consumer[Symbol.asyncDispose]();
    await inner.close();
  });

  it('rejects bad options at construction with ERR_INVALID_OPTION', () => {
    const base = { bus: createMemoryBus(), syncService: fakeSync().service, tokenRefresh: fakeRefresher(refreshed).refresher };
    const bad: Partial<SyncTaskEventConsumerOptions>[] = [
      { syncService: undefined as never },
      { tokenRefresh: {} as never },
      { bus: null as never },
      { overlap: 'sometimes' as never },
      { concurrency: 0 },
      { syncTimeoutMs: -1 },
      { group: '' },
    ];
    for (const override of bad) {
      let error: unknown;
      try {
        new SyncTaskEventConsumer({ ...base, ...override });
      } catch (e) {
        error = e;
      }
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
    }
  });

  it('reads null optional options as not set, like every other service (was ERR_INVALID_OPTION for lease, maxAttempts, syncTimeoutMs, overlap, idGenerator)', async () => {
    const bus = createMemoryBus();
    const sync = fakeSync();
    const consumer = new SyncTaskEventConsumer({
      bus,
      syncService: sync.service,
      tokenRefresh: fakeRefresher(refreshed).refresher,
      lease: null as never,
      maxAttempts: null as never,
      syncTimeoutMs: null as never,
      overlap: null as never,
      idGenerator: null as never,
    });
    await consumer.start();
    await bus.publish(createEvent(EventTypes.SyncScheduled, { integrationId: 'int_null', tenantId: 't1', trigger: 'schedule', scheduledAt: new Date().toISOString() }));
    await waitFor(() => sync.calls.length === 1, 'the sync to run with the defaults');
    await consumer.stop();
    await bus.close();
  });
});

describe('taskErrorText', () => {
  it('prefers a plain code, masks credentials, truncates', () => {
    expect(taskErrorText(Object.assign(new Error('x'), { code: 'ERR_HTTP_TIMEOUT' }))).toBe('ERR_HTTP_TIMEOUT');
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl';
    for (const message of [`Bearer ${SECRET}`, `jwt ${jwt}`, `access_token=${SECRET.slice(0, 10)}`, `"client_secret": "abc123"`, `key ${SECRET}`]) {
      const text = taskErrorText(new Error(message));
      expect(text).toContain('[redacted]');
      expect(text).not.toContain(SECRET.slice(0, 10));
      expect(text).not.toContain('abc123');
      expect(text).not.toContain(jwt);
    }
    expect(taskErrorText(new Error('x'.repeat(10) + ' y'.repeat(500))).length).toBeLessThanOrEqual(200);
    expect(taskErrorText('plain')).toBe('plain');
    expect(taskErrorText(42)).toBe('non-error thrown');
  });
});

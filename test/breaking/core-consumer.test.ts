import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/types.js';
import { createMemoryBus, type MemoryEventBus } from '../../src/bus/memory-bus.js';
import type { Logger } from '../../src/core/logger.js';
import { createEvent } from '../../src/events/envelope.js';
import { SyncTaskEventConsumer, type SyncTaskEventConsumerOptions } from '../../src/events/consumers/SyncTaskEventConsumer.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createMemorySyncTaskStore } from '../../src/tasks/memory-task-store.js';
import type { SyncTask, SyncTaskStore } from '../../src/tasks/types.js';
import type { TokenRefresher } from '../../src/tokens/types.js';
import { failOnUnhandledRejections } from '../support/unhandled.js';

failOnUnhandledRejections();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const refresher: TokenRefresher = {
  refreshConnectionTokens: async (r) => ({ status: 'skipped', connectionId: r.connectionId, reason: 'stale_request' }),
};

function capturing(logs: string[]): Logger {
  const line = (level: string) => (obj: Record<string, unknown>, msg?: string) => void logs.push(JSON.stringify({ level, ...obj, msg }));
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

async function setup(overrides: Partial<SyncTaskEventConsumerOptions> & { execute?: SyncTaskEventConsumerOptions['syncService']['execute'] } = {}) {
  const logs: string[] = [];
  const audit: AuditRecord[] = [];
  const bus: MemoryEventBus = createMemoryBus({ maxAttempts: 3, retryBaseMs: 5, retryMaxMs: 20, logger: capturing(logs), audit: { record: (r) => void audit.push(r) } });
  const runs: SyncTask[] = [];
  const { execute, ...rest } = overrides;
  const consumer = new SyncTaskEventConsumer({
    bus,
    tokenRefresh: refresher,
    concurrency: 8,
    stopTimeoutMs: 200,
    logger: capturing(logs),
    audit: { record: (r) => void audit.push(r) },
    syncService: {
      execute: async (task, context) => {
        runs.push(task);
        if (execute) return execute(task, context);
        await new Promise((r) => setTimeout(r, 20));
      },
    },
    ...rest,
  });
  await consumer.start();
  cleanups.push(async () => {
    await consumer.stop();
    await bus.close({ timeoutMs: 100 });
  });
  return { bus, consumer, runs, logs, audit };
}

const scheduled = (integrationId: string, tenantId = 't', id?: string) =>
  createEvent(EventTypes.SyncScheduled, { integrationId, tenantId, trigger: 'manual', scheduledAt: new Date().toISOString() }, id ? { id } : {});
const webhook = (integrationId: string, tenantId = 't') => createEvent(EventTypes.WebhookReceived, { integrationId, tenantId });

describe('SyncTaskEventConsumer under attack', () => {
  it('a webhook storm across 40 keys costs at most two syncs per key and loses nothing', async () => {
    const { bus, consumer, runs } = await setup();
    const keys = Array.from({ length: 40 }, (_, i) => `int-${i}`);
    await Promise.all(keys.flatMap((k) => Array.from({ length: 15 }, () => bus.publish(webhook(k)))));
    await until(async () => (await consumer.store.list({ limit: 10_000 })).filter((t) => t.status === 'succeeded' || t.status === 'skipped').length === 600);
    for (const k of keys) {
      const n = runs.filter((r) => r.integrationId === k).length;
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(2);
    }
    expect(bus.deadLetters()).toEqual([]);
  });

  it('the same event id published again while it runs is synced once', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const { bus, runs, consumer } = await setup({ execute: () => gate });
    const event = scheduled('int-dup');
    await bus.publish(event);
    await until(() => runs.length === 1);
    await bus.publish(event);
    await bus.publish(event);
    await new Promise((r) => setTimeout(r, 100));
    release();
    await until(async () => (await consumer.store.get(`integration-sync:${event.id}`))?.status === 'succeeded');
    await new Promise((r) => setTimeout(r, 100));
    expect(runs).toHaveLength(1);
    expect(bus.deadLetters()).toEqual([]);
  });

  it('stop() mid-sync with a sync that ignores its signal and throws afterwards: bounded, task failed ERR_ABORTED', async () => {
    const { bus, consumer, runs } = await setup({
      execute: async () => {
        await new Promise((r) => setTimeout(r, 600));
        throw new Error('thrown after the signal');
      },
    });
    const event = scheduled('int-stop');
    await bus.publish(event);
    await until(() => runs.length === 1);
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).toBeLessThan(5000);
    const task = await consumer.store.get(`integration-sync:${event.id}`);
    expect(task).toMatchObject({ status: 'failed', error: 'ERR_ABORTED' });
    await new Promise((r) => setTimeout(r, 700));
  });

  it('a store that throws on create: retried, then dead-lettered, no sync, no crash', async () => {
    const base = createMemorySyncTaskStore();
    const store: SyncTaskStore = { ...base, create: async () => Promise.reject(new Error('db down')), get: base.get, update: base.update, list: base.list };
    const { bus, runs } = await setup({ store });
    await bus.publish(scheduled('int-create'));
    await until(() => bus.deadLetters().length === 1);
    expect(bus.deadLetters()[0]).toMatchObject({ reason: 'max_attempts', attempts: 3 });
    expect(runs).toHaveLength(0);
  });

  it('a store that throws on update only after the sync: the sync ran once and the event is acked', async () => {
    const base = createMemorySyncTaskStore();
    const store: SyncTaskStore = {
      create: base.create,
      get: base.get,
      list: base.list,
      update: async (id, patch) => {
        if (patch.status === 'succeeded') throw new Error('db down');
        return base.update(id, patch);
      },
    };
    const { bus, runs } = await setup({ store });
    await bus.publish(scheduled('int-update'));
    await until(() => runs.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(runs).toHaveLength(1);
    expect(bus.deadLetters()).toEqual([]);
  });

  it('a store whose get() hangs cannot hold stop() past its deadline', async () => {
    const base = createMemorySyncTaskStore();
    const store: SyncTaskStore = { ...base, create: base.create, update: base.update, list: base.list, get: () => new Promise(() => {}) };
    const { bus, consumer } = await setup({ store });
    await bus.publish(scheduled('int-hang'));
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('secrets in a sync error reach no task, log, audit or dead-letter record', async () => {
    const canary = `CANARY${randomUUID().replace(/-/g, '')}`;
    const { bus, consumer, logs, audit } = await setup({
      execute: async () => {
        throw new Error(`401 from provider: Authorization: Bearer ${canary} refresh_token=${canary} body {"access_token":"${canary}"}`);
      },
    });
    const event = scheduled('int-secret');
    await bus.publish(event);
    await until(() => bus.deadLetters().length === 1);
    const everything = JSON.stringify({ tasks: await consumer.store.list(), audit, dl: bus.deadLetters() }) + logs.join('\n');
    expect(everything).not.toContain(canary);
  });
});

describe('a sync that ignores its signal past syncTimeoutMs', () => {
  it('never overlaps itself for one integration and tenant (retries wait for it to return)', async () => {
    let active = 0;
    let peak = 0;
    const { bus, consumer } = await setup({
      syncTimeoutMs: 40,
      execute: async () => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 150));
        active -= 1;
      },
    });
    for (let i = 0; i < 3; i += 1) await bus.publish(scheduled('int-timeout'));
    await until(() => bus.deadLetters().length >= 1, 15_000);
    expect(peak).toBe(1);
    const tasks = await consumer.store.list();
    expect(tasks.some((t) => t.error === 'ERR_SYNC_TIMEOUT')).toBe(true);
  });

  it('stop() does not wait for such a sync past its deadline', async () => {
    const { bus, consumer, runs } = await setup({
      syncTimeoutMs: 20,
      execute: () => new Promise<void>(() => {}),
    });
    await bus.publish(scheduled('int-hung'));
    await until(() => runs.length === 1);
    await new Promise((r) => setTimeout(r, 60));
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

import { describe, expect, it } from 'vitest';
import { createMemoryAuditStore } from '../../src/audit/index.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { createEvent } from '../../src/events/envelope.js';
import { EventRouter } from '../../src/events/router.js';
import { createSyncPlanner, syncScheduledEventId, type DueIntegration } from '../../src/planners/index.js';
import { fixedClock, RecordingBus, recordingLogger } from './fakes.js';

const TICK = '2026-12-03T10:00:00.000Z';
const tick = (timestamp = TICK, id = `tick-${timestamp}`) => createEvent('integration.sync.check-due', { timestamp }, { id });

describe('createSyncPlanner', () => {
  it('publishes one scheduled event per due integration, with the tick as scheduledAt and a derived id', async () => {
    const bus = new RecordingBus();
    const asked: Date[] = [];
    const planner = createSyncPlanner({
      bus,
      clock: fixedClock('2026-12-03T10:00:02.000Z'),
      findDue: async (at) => {
        asked.push(at);
        return [
          { integrationId: 'hubspot', tenantId: 't1' },
          { integrationId: 'zendesk', tenantId: 't1', trigger: 'catch-up' },
        ];
      },
    });
    const result = await planner.plan(tick());
    expect(result).toEqual({ published: 2, invalid: 0, failed: 0 });
    expect(asked.map((d) => d.toISOString())).toEqual([TICK]);
    expect(bus.published.map((e) => [e.type, e.data])).toEqual([
      ['integration.sync.scheduled', { integrationId: 'hubspot', tenantId: 't1', trigger: 'schedule', scheduledAt: TICK }],
      ['integration.sync.scheduled', { integrationId: 'zendesk', tenantId: 't1', trigger: 'catch-up', scheduledAt: TICK }],
    ]);
    expect(bus.published[0]?.id).toBe(syncScheduledEventId('hubspot', 't1', TICK));
    expect(bus.published[0]?.time).toBe('2026-12-03T10:00:02.000Z');
  });

  it('derives the same ids for a duplicate tick and different ids for another slot, integration or tenant', async () => {
    const bus = new RecordingBus();
    const due: DueIntegration[] = [
      { integrationId: 'hubspot', tenantId: 't1' },
      { integrationId: 'hubspot', tenantId: 't2' },
    ];
    const planner = createSyncPlanner({ bus, findDue: () => due });
    await planner.plan(tick(TICK, 'replica-a'));
    // The same slot written with an offset, from another replica: still the same instant.
    await planner.plan(tick('2026-12-03T11:00:00+01:00', 'replica-b'));
    await planner.plan(tick('2026-12-03T10:01:00.000Z'));
    const ids = bus.published.map((e) => e.id);
    expect(ids.slice(0, 2)).toEqual(ids.slice(2, 4));
    expect(new Set(ids.slice(0, 2)).size).toBe(2);
    expect(ids.slice(4).some((id) => ids.slice(0, 2).includes(id))).toBe(false);
    // Ids are short and use only characters every broker takes, whatever the host's ids contain.
    const odd = syncScheduledEventId('a b/c:d*>', 'tenant with spaces', TICK);
    expect(odd).toMatch(/^sched-[0-9a-f]{64}$/);
    expect(syncScheduledEventId('a:b', 'c', TICK)).not.toBe(syncScheduledEventId('a', 'b:c', TICK));
    expect(syncScheduledEventId('a\u0000b', 'c', TICK)).not.toBe(syncScheduledEventId('a', 'b\u0000c', TICK));
  });

  it('with the memory bus, a duplicate tick schedules nothing twice downstream', async () => {
    const audit = createMemoryAuditStore();
    const bus = createMemoryBus({ audit });
    const handled: string[] = [];
    await bus.subscribe({
      group: 'consumers',
      types: ['integration.sync.scheduled'],
      handler: async (event) => {
        handled.push(`${(event.data as DueIntegration).integrationId}@${(event.data as { scheduledAt: string }).scheduledAt}`);
      },
    });
    const planner = createSyncPlanner({ bus, findDue: () => [{ integrationId: 'hubspot', tenantId: 't1' }] });
    const sub = await planner.subscribe(bus, { group: 'planner' });
    await bus.publish(tick(TICK, 'replica-a'));
    await bus.publish(tick(TICK, 'replica-b'));
    await bus.publish(tick('2026-12-03T10:01:00.000Z'));
    // Three scheduled events reach the consumers; the second of the first slot is a duplicate.
    const consumed = async () => audit.query({ kind: 'event.consumed', eventType: 'integration.sync.scheduled' });
    await waitFor(async () => (await consumed()).length >= 3);
    expect((await consumed()).map((r) => r.outcome).sort()).toEqual(['duplicate', 'handled', 'handled']);
    expect(handled.sort()).toEqual(['hubspot@2026-12-03T10:00:00.000Z', 'hubspot@2026-12-03T10:01:00.000Z']);
    await sub.close();
    await bus.close();
  });

  it('walks an async iterable from the host and drops duplicate pairs in one tick', async () => {
    const bus = new RecordingBus();
    async function* due(): AsyncIterable<DueIntegration> {
      yield { integrationId: 'a', tenantId: 't' };
      yield { integrationId: 'b', tenantId: 't' };
      yield { integrationId: 'a', tenantId: 't' };
    }
    const planner = createSyncPlanner({ bus, findDue: () => due() });
    expect(await planner.plan(tick())).toEqual({ published: 2, invalid: 0, failed: 0 });
  });

  it('skips items that fail the schema, logging and auditing each, and publishes the rest', async () => {
    const bus = new RecordingBus();
    const audit = createMemoryAuditStore();
    const { logger, lines } = recordingLogger();
    const planner = createSyncPlanner({
      bus,
      audit,
      logger,
      findDue: () =>
        [
          { integrationId: 'ok-1', tenantId: 't' },
          { integrationId: '', tenantId: 't' },
          { integrationId: 'no-tenant' },
          null,
          { integrationId: 'ok-2', tenantId: 't', trigger: 42 },
          { integrationId: 'ok-3', tenantId: 't' },
        ] as unknown as DueIntegration[],
    });
    const result = await planner.plan(tick());
    expect(result).toEqual({ published: 2, invalid: 4, failed: 0 });
    expect(bus.published.map((e) => (e.data as DueIntegration).integrationId)).toEqual(['ok-1', 'ok-3']);
    const skipped = await audit.query({ kind: 'planner.skipped' });
    expect(skipped).toHaveLength(4);
    expect(skipped.every((r) => r.outcome === 'invalid' && r.eventType === 'integration.sync.scheduled')).toBe(true);
    expect(skipped.find((r) => r.integrationId === 'no-tenant')?.reason).toMatch(/data\.tenantId/);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(4);
  });

  it('publishes the rest when some publishes fail, then rejects so the bus retries the check', async () => {
    const bus = new RecordingBus();
    bus.failWhen = (event) => (event.data as DueIntegration).integrationId === 'flaky';
    const audit = createMemoryAuditStore();
    const planner = createSyncPlanner({
      bus,
      audit,
      concurrency: 2,
      findDue: () => ['a', 'flaky', 'b', 'c'].map((integrationId) => ({ integrationId, tenantId: 't' })),
    });
    const error = await planner.plan(tick()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED')).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ published: 3, failed: 1 });
    expect(bus.published.map((e) => (e.data as DueIntegration).integrationId).sort()).toEqual(['a', 'b', 'c']);
    expect(await audit.query({ kind: 'planner.skipped', integrationId: 'flaky' })).toMatchObject([{ outcome: 'publish_failed' }]);
  });

  it('rejects when the host lookup fails or returns something that is not iterable', async () => {
    const bus = new RecordingBus();
    const failing = createSyncPlanner({ bus, findDue: async () => Promise.reject(new Error('db down')) });
    await expect(failing.plan(tick())).rejects.toThrow('db down');
    const garbage = createSyncPlanner({ bus, findDue: async () => 42 as never });
    await expect(garbage.plan(tick())).rejects.toThrow(/iterable/);
    expect(bus.published).toEqual([]);
  });

  it('lets publishes already started finish before rejecting on a host error mid-walk', async () => {
    const bus = new RecordingBus();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slowPublish = bus.publish.bind(bus);
    bus.publish = async (event, options) => {
      await gate;
      await slowPublish(event, options);
    };
    const planner = createSyncPlanner({
      bus,
      findDue: async function* () {
        yield { integrationId: 'a', tenantId: 't' };
        setTimeout(release, 50);
        throw new Error('cursor broke');
      },
    });
    await expect(planner.plan(tick())).rejects.toThrow('cursor broke');
    expect(bus.published).toHaveLength(1);
  });

  it('refuses other event types and bad data as non-retryable', async () => {
    const planner = createSyncPlanner({ bus: new RecordingBus(), findDue: () => [] });
    const other = createEvent('integration.token.check-expiring', { timestamp: TICK, thresholdTime: TICK });
    await expect(planner.plan(other)).rejects.toMatchObject({ code: 'ERR_NON_RETRYABLE' });
    await expect(planner.plan({ ...tick(), data: { timestamp: 'soon' } })).rejects.toMatchObject({ code: 'ERR_NON_RETRYABLE' });
  });

  it('stops at an aborted signal with the signal reason', async () => {
    const bus = new RecordingBus();
    const controller = new AbortController();
    const planner = createSyncPlanner({
      bus,
      findDue: function* () {
        yield { integrationId: 'a', tenantId: 't' };
        controller.abort(new Error('shutting down'));
        yield { integrationId: 'b', tenantId: 't' };
      },
    });
    await expect(planner.plan(tick(), { signal: controller.signal })).rejects.toThrow('shutting down');
    expect(bus.published.map((e) => (e.data as DueIntegration).integrationId)).not.toContain('b');
  });

  it('plugs into an EventRouter and a bus subscription', async () => {
    const bus = new RecordingBus();
    const planner = createSyncPlanner({ bus, findDue: () => [{ integrationId: 'a', tenantId: 't' }] });
    const router = new EventRouter().on(planner.type, planner.schema, planner.handle);
    await router.handle(tick(), { attempt: 1, group: 'g', signal: new AbortController().signal, progress: () => {} });
    expect(bus.published).toHaveLength(1);
    await planner.subscribe(bus, { group: 'planners', maxAttempts: 3 });
    expect(bus.subscriptions[0]).toMatchObject({ group: 'planners', types: ['integration.sync.check-due'], maxAttempts: 3 });
    await expect(planner.subscribe(bus, { group: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });

  it('rejects bad options at construction', () => {
    const bus = new RecordingBus();
    expect(() => createSyncPlanner({ bus, findDue: undefined as never })).toThrow(/findDue/);
    expect(() => createSyncPlanner({ bus: {} as never, findDue: () => [] })).toThrow(/bus/);
    expect(() => createSyncPlanner({ bus, findDue: () => [], concurrency: 0 })).toThrow(/concurrency/);
  });
});

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

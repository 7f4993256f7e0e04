import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../audit/types.js';
import type { BusOptions } from '../bus/delivery.js';
import { createMemoryIdempotencyStore } from '../bus/idempotency.js';
import type { DeadLetterRecord, DeliveryContext, EventBus, EventHandler } from '../bus/types.js';
import { isIntegrationSyncError, NonRetryableError } from '../core/errors.js';
import type { CloudEvent } from '../events/envelope.js';
import { EventTypes } from '../events/schemas.js';

/**
 * What an {@link EventBus} adapter supplies to run {@link testEventBus} against it. Keep it
 * small: the suite drives everything else through the `EventBus` interface itself.
 *
 * The suite subscribes before it publishes and expects `subscribe` to resolve only once the
 * consumer group exists on the broker, so every event published afterwards reaches the group.
 */
export interface BusConformanceHarness {
  /** Shown in the suite's `describe` title. */
  name: string;
  /** A new bus. Buses made with the same namespace share one broker namespace: two of them are two replicas. */
  createBus(namespace: string, options: BusOptions): Promise<EventBus>;
  /** Puts raw bytes on the broker for `type`, as a foreign producer would (non-JSON, oversized...). */
  publishRaw(namespace: string, type: string, payload: string | Uint8Array): Promise<void>;
  /** Simulates the process dying mid-handler: drop its connections at once, no acks, no graceful close. */
  crash(bus: EventBus): Promise<void>;
  /** How long redelivery to another member may take after a crash or a failure (ms). @default 15000 */
  redeliveryTimeoutMs?: number;
  /** Whether the broker keeps publish order for one group with concurrency 1. @default false */
  ordered?: boolean;
  /** Removes what the namespace made on the broker. */
  cleanup?(namespace: string): Promise<void>;
}

/** Largest payload the suite's buses accept, so the oversized case stays small on the wire. */
const SUITE_MAX_PAYLOAD_BYTES = 64 * 1024;
const SUITE_MAX_ATTEMPTS = 3;

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Polls `condition` every 10 ms until it holds; fails with `what` after `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Like {@link waitFor} but gives up quietly: for things that may legitimately never happen. */
async function waitBriefly(condition: () => boolean, timeoutMs: number): Promise<void> {
  try {
    await waitFor(condition, timeoutMs, 'an optional condition');
  } catch {
    // Nothing to do: the caller asserts what matters.
  }
}

/** Waits for `promise` without letting a rejection escape; returns it (or a timeout) as a value. */
async function settle<T>(promise: Promise<T>, timeoutMs: number): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return { ok: true, value: await Promise.race([promise, timeout]) };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

class SuiteContext {
  readonly namespace = `conf-${randomUUID().slice(0, 8)}`;
  readonly deadLetters: DeadLetterRecord[] = [];
  readonly audits: AuditRecord[] = [];
  /** One handled-event store per test, as replicas of a host share one (Redis in production). */
  private readonly idempotency = createMemoryIdempotencyStore();
  private readonly buses: EventBus[] = [];
  private seq = 0;

  constructor(private readonly harness: BusConformanceHarness) {}

  async bus(overrides: Partial<BusOptions> = {}): Promise<EventBus> {
    const bus = await this.harness.createBus(this.namespace, {
      retryBaseMs: 20,
      retryMaxMs: 100,
      maxAttempts: SUITE_MAX_ATTEMPTS,
      maxPayloadBytes: SUITE_MAX_PAYLOAD_BYTES,
      closeTimeoutMs: 2000,
      idempotency: this.idempotency,
      onDeadLetter: (record) => {
        this.deadLetters.push(record);
      },
      audit: { record: (record) => void this.audits.push(record) },
      ...overrides,
    });
    this.buses.push(bus);
    return bus;
  }

  /** A group name unique to this test. */
  group(name: string): string {
    return `${this.namespace}-${name}`;
  }

  /** A valid `integration.sync.scheduled` event with a fresh id. */
  scheduled(extra: Record<string, unknown> = {}): CloudEvent {
    this.seq += 1;
    return {
      specversion: '1.0',
      id: `${this.namespace}-${this.seq}`,
      source: '/conformance',
      type: EventTypes.SyncScheduled,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: new Date().toISOString(), seq: this.seq },
      ...extra,
    };
  }

  deadLetterFor(eventId: string): DeadLetterRecord | undefined {
    return this.deadLetters.find((r) => r.eventId === eventId);
  }

  async dispose(): Promise<void> {
    for (const bus of this.buses) {
      // A crashed bus may refuse a graceful close; cleanup must go on regardless.
      await settle(bus.close({ timeoutMs: 500 }), 10_000);
    }
    if (this.harness.cleanup) await settle(this.harness.cleanup(this.namespace), 30_000);
  }
}

/** Records what a handler saw, per event id. */
class Recorder {
  readonly seen: { event: CloudEvent; context: DeliveryContext; member: string }[] = [];

  handler(member: string, inner?: (event: CloudEvent, context: DeliveryContext) => Promise<void>): EventHandler {
    return async (event, context) => {
      this.seen.push({ event, context, member });
      if (inner) await inner(event, context);
    };
  }

  count(eventId: string, member?: string): number {
    return this.seen.filter((s) => s.event.id === eventId && (member === undefined || s.member === member)).length;
  }

  ids(member?: string): string[] {
    return this.seen.filter((s) => member === undefined || s.member === member).map((s) => s.event.id);
  }
}

/**
 * Registers the shared `EventBus` conformance suite (vitest `describe`/`it` blocks) for one
 * adapter: delivery, consumer groups, at-least-once after a crash, retry and dead-letter,
 * validation, idempotency, ordering (when the harness says the broker keeps it) and graceful
 * close. Every built-in bus passes it; a host proves its own adapter the same way. Needs
 * `vitest` (an optional peer dependency of this package).
 *
 * @example
 * // test/my-bus.test.ts
 * import { testEventBus } from 'integration-sync/testing';
 * testEventBus({
 *   name: 'my-bus',
 *   createBus: (namespace, options) => createMyBus({ client, prefix: namespace, ...options }),
 *   publishRaw: (namespace, type, payload) => client.send(`${namespace}.${type}`, payload),
 *   crash: (bus) => (bus as MyBus).destroyConnection(),
 * });
 */
export function testEventBus(harness: BusConformanceHarness): void {
  const redeliveryMs = harness.redeliveryTimeoutMs ?? 15_000;
  const quickMs = Math.min(redeliveryMs, 10_000);
  const testTimeout = redeliveryMs * 2 + 20_000;

  describe(`EventBus conformance: ${harness.name}`, () => {
    let ctx: SuiteContext;
    beforeEach(() => {
      ctx = new SuiteContext(harness);
    });
    afterEach(async () => {
      await ctx.dispose();
    });

    it('delivers a published event with its data and extension attributes', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      const group = ctx.group('receive');
      await bus.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('a') });
      const event = ctx.scheduled({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
      await bus.publish(event);
      await waitFor(() => recorder.seen.length > 0, quickMs, 'the event');
      const [first] = recorder.seen;
      expect(first?.event.id).toBe(event.id);
      expect(first?.event.data).toEqual(event.data);
      expect(first?.event.traceparent).toBe(event.traceparent);
      expect(first?.event.source).toBe(event.source);
      expect(first?.context.group).toBe(group);
      expect(first?.context.attempt).toBe(1);
      expect(first?.context.signal.aborted).toBe(false);
      expect(ctx.deadLetters).toEqual([]);
    }, testTimeout);

    it('gives every event to each consumer group', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      await bus.subscribe({ group: ctx.group('one'), types: [EventTypes.SyncScheduled], handler: recorder.handler('one') });
      await bus.subscribe({ group: ctx.group('two'), types: [EventTypes.SyncScheduled], handler: recorder.handler('two') });
      const events = Array.from({ length: 5 }, () => ctx.scheduled());
      for (const event of events) await bus.publish(event);
      await waitFor(() => recorder.ids('one').length >= 5 && recorder.ids('two').length >= 5, quickMs, 'both groups');
      const ids = events.map((e) => e.id).sort();
      expect([...recorder.ids('one')].sort()).toEqual(ids);
      expect([...recorder.ids('two')].sort()).toEqual(ids);
    }, testTimeout);

    it('shares one group between members, each event handled by exactly one', async () => {
      const busA = await ctx.bus();
      const busB = await ctx.bus();
      const recorder = new Recorder();
      const group = ctx.group('shared');
      // Whoever gets the first event holds it until the other member has handled one, so the
      // work must be shared for the test to finish quickly (and a batching broker still passes).
      let holder: string | undefined;
      const inner = (member: string) => async (): Promise<void> => {
        holder ??= member;
        if (holder === member) {
          await waitBriefly(() => recorder.seen.some((s) => s.member !== member), redeliveryMs);
        }
      };
      await busA.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('a', inner('a')) });
      await busB.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('b', inner('b')) });
      const events = Array.from({ length: 30 }, () => ctx.scheduled());
      for (const event of events) await busA.publish(event);
      await waitFor(() => new Set(recorder.ids()).size >= events.length, redeliveryMs + quickMs, 'all events');
      const ids = recorder.ids();
      expect(new Set(ids).size).toBe(events.length);
      expect(ids.length).toBe(events.length);
      expect(recorder.ids('a').length).toBeGreaterThan(0);
      expect(recorder.ids('b').length).toBeGreaterThan(0);
    }, testTimeout);

    it('redelivers to another member when one crashes mid-handler (at-least-once)', async () => {
      const busA = await ctx.bus();
      const group = ctx.group('crash');
      const recorder = new Recorder();
      const release = deferred();
      await busA.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('a', () => release.promise) });
      const event = ctx.scheduled();
      await busA.publish(event);
      await waitFor(() => recorder.count(event.id, 'a') === 1, quickMs, 'member A to start the handler');
      const busB = await ctx.bus();
      await busB.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('b') });
      await harness.crash(busA);
      try {
        await waitFor(() => recorder.count(event.id, 'b') >= 1, redeliveryMs, 'redelivery to member B');
      } finally {
        release.resolve();
      }
      expect(ctx.deadLetters).toEqual([]);
      // Later events still flow to the surviving member.
      const after = ctx.scheduled();
      await busB.publish(after);
      await waitFor(() => recorder.count(after.id, 'b') === 1, quickMs, 'a later event on member B');
    }, testTimeout);

    it('retries a throwing handler, then dead-letters it with max_attempts', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      await bus.subscribe({
        group: ctx.group('retry'),
        types: [EventTypes.SyncScheduled],
        handler: recorder.handler('a', async () => {
          throw new Error('downstream unavailable');
        }),
      });
      const event = ctx.scheduled();
      await bus.publish(event);
      await waitFor(() => ctx.deadLetterFor(event.id) !== undefined, redeliveryMs * SUITE_MAX_ATTEMPTS, 'the dead-letter record');
      const record = ctx.deadLetterFor(event.id);
      expect(record?.reason).toBe('max_attempts');
      expect(record?.attempts).toBe(SUITE_MAX_ATTEMPTS);
      expect(record?.type).toBe(EventTypes.SyncScheduled);
      expect(record?.error?.message).toContain('downstream unavailable');
      expect(record?.event?.id).toBe(event.id);
      expect(recorder.count(event.id)).toBe(SUITE_MAX_ATTEMPTS);
      expect(recorder.seen.map((s) => s.context.attempt)).toEqual([1, 2, 3]);
    }, testTimeout + redeliveryMs * SUITE_MAX_ATTEMPTS);

    it('dead-letters at once on NonRetryableError', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      await bus.subscribe({
        group: ctx.group('nonretry'),
        types: [EventTypes.SyncScheduled],
        handler: recorder.handler('a', async () => {
          throw new NonRetryableError('integration was deleted');
        }),
      });
      const event = ctx.scheduled();
      await bus.publish(event);
      await waitFor(() => ctx.deadLetterFor(event.id) !== undefined, quickMs, 'the dead-letter record');
      const record = ctx.deadLetterFor(event.id);
      expect(record?.reason).toBe('non_retryable');
      expect(record?.attempts).toBe(1);
      expect(record?.error?.code).toBe('ERR_NON_RETRYABLE');
      expect(recorder.count(event.id)).toBe(1);
    }, testTimeout);

    it('dead-letters invalid events with their issues, never calls the handler, and goes on', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      const types = [EventTypes.SyncScheduled, EventTypes.WebhookReceived, EventTypes.TokenRefreshRequested];
      await bus.subscribe({ group: ctx.group('invalid'), types, handler: recorder.handler('a') });
      const base = { specversion: '1.0', source: '/conformance', time: '2026-11-30T09:15:00.000Z', datacontenttype: 'application/json' };
      const cases: { event: Record<string, unknown>; path: string }[] = [
        {
          event: { ...base, id: `${ctx.namespace}-missing-tenant`, type: EventTypes.SyncScheduled, data: { integrationId: 'int_crm', trigger: 'schedule', scheduledAt: '2026-11-30T09:15:00.000Z' } },
          path: 'data.tenantId',
        },
        {
          event: {
            ...base,
            id: `${ctx.namespace}-number-id`,
            type: EventTypes.TokenRefreshRequested,
            data: { connectionId: 81, integrationId: 'int_crm', tenantId: 'tenant_a', expiresAt: '2026-11-30T09:40:00.000Z', requestedAt: '2026-11-30T09:00:00.000Z' },
          },
          path: 'data.connectionId',
        },
        {
          event: { id: `${ctx.namespace}-no-specversion`, source: '/conformance', type: EventTypes.WebhookReceived, data: { integrationId: 'int_tickets', tenantId: 'tenant_b' } },
          path: 'specversion',
        },
        {
          event: { ...base, id: `${ctx.namespace}-bad-date`, type: EventTypes.SyncScheduled, data: { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: 'next tuesday' } },
          path: 'data.scheduledAt',
        },
      ];
      for (const c of cases) await bus.publish(c.event as unknown as CloudEvent);
      const valid = ctx.scheduled();
      await bus.publish(valid);
      await waitFor(() => cases.every((c) => ctx.deadLetterFor(c.event.id as string) !== undefined), quickMs, 'four dead-letter records');
      await waitFor(() => recorder.count(valid.id) === 1, quickMs, 'the valid event after them');
      for (const c of cases) {
        const record = ctx.deadLetterFor(c.event.id as string);
        expect(record?.reason, c.path).toBe('invalid');
        expect(record?.attempts, c.path).toBe(1);
        expect(record?.issues?.map((i) => i.path), c.path).toContain(c.path);
      }
      expect(recorder.ids()).toEqual([valid.id]);
    }, testTimeout);

    it('dead-letters raw non-JSON and oversized payloads as unparsable', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      await bus.subscribe({ group: ctx.group('raw'), types: [EventTypes.SyncScheduled], handler: recorder.handler('a') });
      await harness.publishRaw(ctx.namespace, EventTypes.SyncScheduled, 'this is {not json');
      const oversized = JSON.stringify({ ...ctx.scheduled(), padding: 'x'.repeat(SUITE_MAX_PAYLOAD_BYTES + 1024) });
      await harness.publishRaw(ctx.namespace, EventTypes.SyncScheduled, new TextEncoder().encode(oversized));
      const valid = ctx.scheduled();
      await bus.publish(valid);
      const unparsable = (): DeadLetterRecord[] => ctx.deadLetters.filter((r) => r.reason === 'unparsable');
      await waitFor(() => unparsable().length >= 2, quickMs, 'two unparsable dead-letter records');
      await waitFor(() => recorder.count(valid.id) === 1, quickMs, 'the valid event after them');
      const messages = unparsable().flatMap((r) => (r.issues ?? []).map((i) => i.message));
      expect(messages.some((m) => /not valid JSON/i.test(m))).toBe(true);
      expect(messages.some((m) => /limit/i.test(m))).toBe(true);
      expect(unparsable().every((r) => r.attempts === 1)).toBe(true);
      expect(recorder.ids()).toEqual([valid.id]);
    }, testTimeout);

    it('handles an event id published twice once per group', async () => {
      const bus = await ctx.bus();
      const recorder = new Recorder();
      const groups = [ctx.group('idem-1'), ctx.group('idem-2')];
      for (const group of groups) {
        await bus.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler(group) });
      }
      const event = ctx.scheduled();
      await bus.publish(event);
      await bus.publish({ ...event, data: { ...(event.data as object) } });
      const marker = ctx.scheduled();
      await bus.publish(marker);
      await waitFor(() => groups.every((g) => recorder.count(marker.id, g) === 1 && recorder.count(event.id, g) >= 1), quickMs, 'both groups');
      // A broker that de-duplicates on publish never delivers the copy; one that does must skip it.
      const skipped = (g: string): boolean => ctx.audits.some((a) => a.group === g && a.eventId === event.id && a.outcome === 'duplicate');
      await waitBriefly(() => groups.every(skipped), 2000);
      for (const group of groups) expect(recorder.count(event.id, group), group).toBe(1);
    }, testTimeout);

    if (harness.ordered) {
      it('keeps publish order for one group with concurrency 1', async () => {
        const bus = await ctx.bus();
        const recorder = new Recorder();
        await bus.subscribe({ group: ctx.group('order'), types: [EventTypes.SyncScheduled], concurrency: 1, handler: recorder.handler('a') });
        const events = Array.from({ length: 20 }, () => ctx.scheduled());
        for (const event of events) await bus.publish(event);
        await waitFor(() => recorder.seen.length >= events.length, quickMs, 'all events');
        expect(recorder.ids()).toEqual(events.map((e) => e.id));
      }, testTimeout);
    }

    it('close lets an in-flight handler finish within the deadline and acks it', async () => {
      const busA = await ctx.bus();
      const group = ctx.group('graceful');
      const recorder = new Recorder();
      const release = deferred();
      let finished = false;
      const subscription = await busA.subscribe({
        group,
        types: [EventTypes.SyncScheduled],
        handler: recorder.handler('a', async () => {
          await release.promise;
          finished = true;
        }),
      });
      const event = ctx.scheduled();
      await busA.publish(event);
      await waitFor(() => recorder.count(event.id, 'a') === 1, quickMs, 'the handler to start');
      const closing = subscription.close({ timeoutMs: 10_000 });
      setTimeout(() => release.resolve(), 50);
      await closing;
      expect(finished).toBe(true);
      expect(recorder.seen[0]?.context.signal.aborted).toBe(false);
      const busB = await ctx.bus();
      await busB.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('b') });
      const marker = ctx.scheduled();
      await busB.publish(marker);
      await waitFor(() => recorder.count(marker.id, 'b') === 1, quickMs, 'a later event on member B');
      expect(recorder.count(event.id)).toBe(1);
      expect(ctx.audits.filter((a) => a.eventId === event.id && a.outcome === 'handled')).toHaveLength(1);
    }, testTimeout);

    it('close aborts a handler past the deadline and hands its event to another member', async () => {
      const busA = await ctx.bus();
      const group = ctx.group('deadline');
      const recorder = new Recorder();
      const subscription = await busA.subscribe({
        group,
        types: [EventTypes.SyncScheduled],
        handler: recorder.handler('a', (_event, context) => {
          // Stops only when told to, as a well-behaved long handler does.
          return new Promise<void>((_, reject) => {
            context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true });
          });
        }),
      });
      const event = ctx.scheduled();
      await busA.publish(event);
      await waitFor(() => recorder.count(event.id, 'a') === 1, quickMs, 'the handler to start');
      const busB = await ctx.bus();
      await busB.subscribe({ group, types: [EventTypes.SyncScheduled], handler: recorder.handler('b') });
      await subscription.close({ timeoutMs: 200 });
      expect(recorder.seen[0]?.context.signal.aborted).toBe(true);
      await waitFor(() => recorder.count(event.id, 'b') === 1, redeliveryMs, 'redelivery to member B');
      expect(ctx.deadLetters).toEqual([]);
    }, testTimeout);

    it('close is idempotent; publish and subscribe after close reject with ERR_CLOSED', async () => {
      const bus = await ctx.bus();
      await bus.subscribe({ group: ctx.group('closed'), types: [EventTypes.SyncScheduled], handler: async () => {} });
      await Promise.all([bus.close(), bus.close()]);
      await bus.close();
      const publish = await settle(bus.publish(ctx.scheduled()), quickMs);
      expect(publish.ok).toBe(false);
      expect(!publish.ok && isIntegrationSyncError(publish.error, 'ERR_CLOSED')).toBe(true);
      const subscribe = await settle(bus.subscribe({ group: ctx.group('late'), types: [EventTypes.SyncScheduled], handler: async () => {} }), quickMs);
      expect(subscribe.ok).toBe(false);
      expect(!subscribe.ok && isIntegrationSyncError(subscribe.error, 'ERR_CLOSED')).toBe(true);
    }, testTimeout);
  });
}

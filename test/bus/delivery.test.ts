import { describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../src/audit/types.js';
import { DeliveryPipeline, encodeForPublish, type BusOptions } from '../../src/bus/delivery.js';
import { createMemoryIdempotencyStore, type IdempotencyStore } from '../../src/bus/idempotency.js';
import type { DeadLetterRecord, EventHandler } from '../../src/bus/types.js';
import type { Clock } from '../../src/core/clock.js';
import { IntegrationSyncError, NonRetryableError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';

const NOW = Date.parse('2026-12-03T12:00:00.000Z');
const fakeClock: Clock = { now: () => NOW, setTimeout: () => 0, clearTimeout: () => {} };

const event = (id = 'e1', data: Record<string, unknown> = {}): CloudEvent => ({
  specversion: '1.0',
  id,
  source: '/unit',
  type: EventTypes.SyncScheduled,
  time: '2026-11-30T09:15:00.000Z',
  datacontenttype: 'application/json',
  data: { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: '2026-11-30T09:15:00.000Z', ...data },
});

function setup(handler: EventHandler, bus: BusOptions = {}, maxAttempts?: number) {
  const deadLetters: DeadLetterRecord[] = [];
  const audits: AuditRecord[] = [];
  const pipeline = new DeliveryPipeline(
    { group: 'g', types: [EventTypes.SyncScheduled], handler, ...(maxAttempts ? { maxAttempts } : {}) },
    {
      clock: fakeClock,
      retryBaseMs: 100,
      retryMaxMs: 1000,
      onDeadLetter: (r) => void deadLetters.push(r),
      audit: { record: (r) => void audits.push(r) },
      ...bus,
    },
  );
  return { pipeline, deadLetters, audits };
}

const json = (value: unknown): string => JSON.stringify(value);

describe('DeliveryPipeline outcomes', () => {
  it('acks a handled event, then acks a redelivery of the same id as a duplicate', async () => {
    const handler = vi.fn(async () => {});
    const { pipeline, audits } = setup(handler);
    expect(await pipeline.process({ body: json(event()), attempt: 1 })).toEqual({ action: 'ack', result: 'handled' });
    expect(await pipeline.process({ body: json(event()), attempt: 2 })).toEqual({ action: 'ack', result: 'duplicate' });
    expect(handler).toHaveBeenCalledTimes(1);
    expect(audits.filter((a) => a.kind === 'event.consumed').map((a) => a.outcome)).toEqual(['handled', 'duplicate']);
    expect(audits[0]).toMatchObject({ group: 'g', eventId: 'e1', integrationId: 'int_crm', tenantId: 'tenant_a', at: new Date(NOW).toISOString() });
  });

  it('passes attempt, group, signal and progress to the handler', async () => {
    const handler = vi.fn<EventHandler>(async () => {});
    const { pipeline } = setup(handler);
    const controller = new AbortController();
    const progress = vi.fn();
    await pipeline.process({ body: event(), attempt: 0, signal: controller.signal, progress });
    const context = handler.mock.calls[0]?.[1];
    expect(context?.attempt).toBe(1);
    expect(context?.group).toBe('g');
    expect(context?.signal).toBe(controller.signal);
    context?.progress();
    expect(progress).toHaveBeenCalledOnce();
  });

  it('asks for a retry with a bounded full-jitter backoff while attempts remain', async () => {
    const { pipeline, deadLetters, audits } = setup(async () => {
      throw new Error('boom');
    });
    for (const attempt of [1, 2, 3, 4]) {
      const outcome = await pipeline.process({ body: json(event(`r${attempt}`)), attempt });
      expect(outcome.action).toBe('retry');
      if (outcome.action === 'retry') {
        expect(outcome.delayMs).toBeGreaterThanOrEqual(0);
        expect(outcome.delayMs).toBeLessThan(Math.min(1000, 100 * 2 ** (attempt - 1)) + 1);
        expect(outcome.error).toMatchObject({ name: 'Error', message: 'boom' });
      }
    }
    expect(deadLetters).toEqual([]);
    expect(audits.filter((a) => a.outcome === 'retry')).toHaveLength(4);
  });

  it('dead-letters with max_attempts on the last attempt', async () => {
    const { pipeline, deadLetters } = setup(async () => {
      throw new IntegrationSyncError('ERR_SYNC_FAILED', 'provider down');
    }, {}, 3);
    const outcome = await pipeline.process({ body: json(event()), attempt: 3 });
    expect(outcome.action).toBe('dead-letter');
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatchObject({
      reason: 'max_attempts',
      group: 'g',
      type: EventTypes.SyncScheduled,
      eventId: 'e1',
      attempts: 3,
      error: { code: 'ERR_SYNC_FAILED', message: 'provider down' },
      deadLetteredAt: new Date(NOW).toISOString(),
    });
  });

  it('dead-letters at once on NonRetryableError or retryable: false', async () => {
    const errors = [new NonRetryableError('gone'), Object.assign(new Error('no'), { retryable: false })];
    for (const error of errors) {
      const { pipeline, deadLetters } = setup(async () => {
        throw error;
      });
      const outcome = await pipeline.process({ body: json(event()), attempt: 1 });
      expect(outcome.action).toBe('dead-letter');
      expect(deadLetters[0]).toMatchObject({ reason: 'non_retryable', attempts: 1 });
    }
  });

  it('dead-letters invalid events with issues, audits the rejection and never calls the handler', async () => {
    const handler = vi.fn(async () => {});
    const { pipeline, deadLetters, audits } = setup(handler);
    const bad = event('bad', { tenantId: 42 });
    const outcome = await pipeline.process({ body: json(bad), attempt: 1 });
    expect(outcome.action).toBe('dead-letter');
    expect(handler).not.toHaveBeenCalled();
    expect(deadLetters[0]).toMatchObject({ reason: 'invalid', eventId: 'bad', type: EventTypes.SyncScheduled, attempts: 1 });
    expect(deadLetters[0]?.issues?.map((i) => i.path)).toEqual(['data.tenantId']);
    expect(deadLetters[0]?.payload).toBe(json(bad));
    expect(audits.map((a) => a.kind)).toEqual(['event.rejected', 'event.dead-lettered']);
    expect(audits[0]?.reason).toContain('data.tenantId');
  });

  it('dead-letters an event of a type the group did not subscribe to', async () => {
    const handler = vi.fn(async () => {});
    const { pipeline, deadLetters } = setup(handler);
    await pipeline.process({ body: { ...event(), type: EventTypes.SyncCheckDue, data: { timestamp: '2026-11-30T09:15:00Z' } }, attempt: 1 });
    expect(handler).not.toHaveBeenCalled();
    expect(deadLetters[0]?.issues?.[0]?.path).toBe('type');
  });

  it('dead-letters non-JSON text, non-JSON bytes and oversized payloads as unparsable', async () => {
    const handler = vi.fn(async () => {});
    const { pipeline, deadLetters } = setup(handler, { maxPayloadBytes: 512 });
    await pipeline.process({ body: '{"specversion":', attempt: 1 });
    await pipeline.process({ body: new Uint8Array([0xff, 0xfe, 0x00, 0x7b]), attempt: 1 });
    await pipeline.process({ body: json(event('big', { pad: 'x'.repeat(600) })), attempt: 1 });
    expect(handler).not.toHaveBeenCalled();
    expect(deadLetters.map((r) => r.reason)).toEqual(['unparsable', 'unparsable', 'unparsable']);
    expect(deadLetters[2]?.issues?.[0]?.message).toMatch(/limit is 512/);
    expect(deadLetters[0]?.payload).toBe('{"specversion":');
  });

  it('retries when the idempotency store cannot answer, and acks when only the mark fails', async () => {
    const warn = vi.fn();
    const logger: Logger = { debug: () => {}, info: () => {}, warn, error: () => {} };
    const failingHas: IdempotencyStore = { has: () => Promise.reject(new Error('store down')), add: () => Promise.resolve() };
    const handler = vi.fn(async () => {});
    const first = setup(handler, { idempotency: failingHas });
    expect((await first.pipeline.process({ body: json(event()), attempt: 1 })).action).toBe('retry');
    expect(handler).not.toHaveBeenCalled();

    const failingAdd: IdempotencyStore = { has: () => Promise.resolve(false), add: () => Promise.reject(new Error('write failed')) };
    const second = setup(handler, { idempotency: failingAdd, logger });
    expect(await second.pipeline.process({ body: json(event()), attempt: 1 })).toEqual({ action: 'ack', result: 'handled' });
    expect(handler).toHaveBeenCalledOnce();
    expect(warn).toHaveBeenCalled();
  });

  it('retries a second delivery of an event that is still in flight instead of running it twice', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handler = vi.fn(() => gate);
    const { pipeline } = setup(handler, { idempotency: createMemoryIdempotencyStore() });
    const first = pipeline.process({ body: json(event()), attempt: 1 });
    await vi.waitFor(() => expect(handler).toHaveBeenCalledOnce());
    expect((await pipeline.process({ body: json(event()), attempt: 1 })).action).toBe('retry');
    release();
    expect(await first).toEqual({ action: 'ack', result: 'handled' });
    expect(handler).toHaveBeenCalledOnce();
  });

  it('rejects bad subscribe options at construction', () => {
    const handler = async (): Promise<void> => {};
    expect(() => new DeliveryPipeline({ group: ' ', types: ['t'], handler })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new DeliveryPipeline({ group: 'g', types: [''], handler })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new DeliveryPipeline({ group: 'g', types: ['t'], handler: 'no' as unknown as EventHandler })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => new DeliveryPipeline({ group: 'g', types: ['t'], handler, maxAttempts: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });
});

describe('encodeForPublish', () => {
  it('serialises a valid event and refuses what cannot be routed or carried', () => {
    expect(JSON.parse(encodeForPublish(event()))).toEqual(event());
    expect(() => encodeForPublish({ ...event(), id: '' })).toThrow(expect.objectContaining({ code: 'ERR_PUBLISH_FAILED' }));
    expect(() => encodeForPublish(null as unknown as CloudEvent)).toThrow(expect.objectContaining({ code: 'ERR_PUBLISH_FAILED' }));
    expect(() => encodeForPublish(event('x', { pad: 'y'.repeat(100) }), 50)).toThrow(/limit is 50/);
  });
});

describe('idempotency keys', () => {
  it('never confuse one group and id with another pair that joins to the same text', async () => {
    const { createMemoryIdempotencyStore: createStore } = await import('../../src/bus/idempotency.js');
    const shared = createStore();
    const handled: string[] = [];
    const make = (group: string): DeliveryPipeline =>
      new DeliveryPipeline({ group, types: ['integration.sync.check-due'], handler: async (e) => void handled.push(`${group}|${e.id}`) }, { idempotency: shared });
    const event = (id: string): Record<string, unknown> => ({ specversion: '1.0', id, source: '/t', type: 'integration.sync.check-due', data: { timestamp: '2026-11-30T09:15:00Z' } });
    expect(await make('sync').process({ body: JSON.stringify(event('eu:slot-1')), attempt: 1 })).toMatchObject({ action: 'ack', result: 'handled' });
    expect(await make('sync:eu').process({ body: JSON.stringify(event('slot-1')), attempt: 1 })).toMatchObject({ action: 'ack', result: 'handled' });
    expect(handled).toEqual(['sync|eu:slot-1', 'sync:eu|slot-1']);
  });
});


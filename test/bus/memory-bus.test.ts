import { describe, expect, it } from 'vitest';
import { createMemoryBroker, createMemoryBus, type MemoryBroker } from '../../src/bus/memory-bus.js';
import { crashMemoryBus } from '../../src/bus/memory-bus.js';
import type { DeliveryContext, EventBus } from '../../src/bus/types.js';
import type { Clock } from '../../src/core/clock.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import { testEventBus } from '../../src/testing/index.js';

const brokers = new Map<string, MemoryBroker>();
const brokerFor = (namespace: string): MemoryBroker => {
  let broker = brokers.get(namespace);
  if (broker === undefined) {
    broker = createMemoryBroker();
    brokers.set(namespace, broker);
  }
  return broker;
};

testEventBus({
  name: 'memory',
  createBus: async (namespace, options) => createMemoryBus({ ...options, broker: brokerFor(namespace) }),
  publishRaw: async (namespace, type, payload) => brokerFor(namespace).publishRaw(type, payload),
  crash: (bus) => crashMemoryBus(bus),
  redeliveryTimeoutMs: 5000,
  ordered: true,
  cleanup: async (namespace) => {
    brokers.delete(namespace);
  },
});

const scheduled = (id: string, extra: Record<string, unknown> = {}): CloudEvent => ({
  specversion: '1.0',
  id,
  source: '/memory-test',
  type: EventTypes.SyncScheduled,
  time: '2026-11-30T09:15:00.000Z',
  datacontenttype: 'application/json',
  data: { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: '2026-11-30T09:15:00.000Z' },
  ...extra,
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A real-time clock that counts live timers, to prove close() leaves none. */
function countingClock(): Clock & { live(): number } {
  const live = new Set<unknown>();
  return {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const handle = setTimeout(() => {
        live.delete(handle);
        fn();
      }, ms);
      live.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    },
    live: () => live.size,
  };
}

const hangUntilAborted = (_event: CloudEvent, context: DeliveryContext): Promise<void> =>
  new Promise((_, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true }));

describe('memory bus specifics', () => {
  it('keeps a handed-back event in the group queue for a later member', async () => {
    const broker = createMemoryBroker();
    const first = createMemoryBus({ broker });
    const seen: { id: string; attempt: number }[] = [];
    const sub = await first.subscribe({
      group: 'g',
      types: [EventTypes.SyncScheduled],
      handler: (event, context) => {
        seen.push({ id: event.id, attempt: context.attempt });
        return hangUntilAborted(event, context);
      },
    });
    await first.publish(scheduled('e1'));
    await waitFor(() => seen.length === 1, 'the first delivery');
    await sub.close({ timeoutMs: 20 });
    expect(broker.pending('g')).toBe(1);
    const second = createMemoryBus({ broker });
    await second.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async (event, context) => void seen.push({ id: event.id, attempt: context.attempt }) });
    await waitFor(() => seen.length === 2, 'the redelivery');
    expect(seen[1]).toEqual({ id: 'e1', attempt: 2 });
    expect(broker.pending('g')).toBe(0);
    await Promise.all([first.close(), second.close()]);
  });

  it('does not give a new group the events published before it subscribed', async () => {
    const bus = createMemoryBus();
    const seen: string[] = [];
    await bus.publish(scheduled('before'));
    await bus.subscribe({ group: 'late', types: [EventTypes.SyncScheduled], handler: async (e) => void seen.push(e.id) });
    await bus.publish(scheduled('after'));
    await waitFor(() => seen.length === 1, 'the later event');
    await bus.close();
    expect(seen).toEqual(['after']);
  });

  it('honours concurrency per member', async () => {
    const bus = createMemoryBus();
    let running = 0;
    let peak = 0;
    let done = 0;
    await bus.subscribe({
      group: 'g',
      types: [EventTypes.SyncScheduled],
      concurrency: 3,
      handler: async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
        done += 1;
      },
    });
    for (let i = 0; i < 12; i += 1) await bus.publish(scheduled(`c${i}`));
    await waitFor(() => done === 12, 'all events');
    expect(peak).toBe(3);
    await bus.close();
  });

  it('gives handlers their own copy of the event', async () => {
    const bus = createMemoryBus();
    const seen: CloudEvent[] = [];
    const mutate = async (event: CloudEvent): Promise<void> => {
      (event.data as Record<string, unknown>).tenantId = 'changed';
      seen.push(event);
    };
    await bus.subscribe({ group: 'a', types: [EventTypes.SyncScheduled], handler: mutate });
    await bus.subscribe({ group: 'b', types: [EventTypes.SyncScheduled], handler: mutate });
    const event = scheduled('copy');
    await bus.publish(event);
    (event.data as Record<string, unknown>).integrationId = 'mutated-after-publish';
    await waitFor(() => seen.length === 2, 'both groups');
    expect(seen[0]).not.toBe(seen[1]);
    for (const got of seen) expect((got.data as Record<string, unknown>).integrationId).toBe('int_crm');
    await bus.close();
  });

  it('keeps a bounded list of dead-letter records', async () => {
    const bus = createMemoryBus({ maxDeadLetters: 2 });
    await bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async () => {} });
    for (const id of ['d1', 'd2', 'd3']) await bus.publish(scheduled(id, { data: { integrationId: 'x' } }));
    await waitFor(() => bus.deadLetters().some((r) => r.eventId === 'd3'), 'the third record');
    expect(bus.deadLetters().map((r) => r.eventId)).toEqual(['d2', 'd3']);
    expect(bus.deadLetters()[0]?.issues?.map((i) => i.path)).toContain('data.tenantId');
    await bus.close();
  });

  it('hands pending retries back and clears their timers on close', async () => {
    const clock = countingClock();
    const broker = createMemoryBroker();
    const bus = createMemoryBus({ broker, clock, retryBaseMs: 60_000, retryMaxMs: 60_000 });
    let calls = 0;
    await bus.subscribe({
      group: 'g',
      types: [EventTypes.SyncScheduled],
      handler: async () => {
        calls += 1;
        throw new Error('fails');
      },
    });
    await bus.publish(scheduled('r1'));
    await waitFor(() => calls === 1 && clock.live() === 1, 'a pending retry timer');
    expect(broker.pending('g')).toBe(1);
    await bus.close();
    expect(clock.live()).toBe(0);
    expect(broker.pending('g')).toBe(1);
  });

  it('aborts in-flight handlers after the bus closeTimeoutMs and leaves no timer behind', async () => {
    const clock = countingClock();
    const bus = createMemoryBus({ clock, closeTimeoutMs: 30 });
    const signals: AbortSignal[] = [];
    await bus.subscribe({
      group: 'g',
      types: [EventTypes.SyncScheduled],
      handler: (event, context) => {
        signals.push(context.signal);
        return hangUntilAborted(event, context);
      },
    });
    await bus.publish(scheduled('slow'));
    await waitFor(() => signals.length === 1, 'the handler');
    await bus[Symbol.asyncDispose]();
    expect(signals[0]?.aborted).toBe(true);
    expect(clock.live()).toBe(0);
  });

  it('rejects publish when a group queue is full, without enqueuing anywhere', async () => {
    const broker = createMemoryBroker({ maxQueueLength: 2 });
    const bus = createMemoryBus({ broker });
    const sub = await bus.subscribe({ group: 'full', types: [EventTypes.SyncScheduled], handler: async () => {} });
    await sub.close();
    await bus.publish(scheduled('q1'));
    await bus.publish(scheduled('q2'));
    await expect(bus.publish(scheduled('q3'))).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    expect(broker.pending('full')).toBe(2);
    await bus.close();
  });

  it('validates its options and subscribe options with ERR_INVALID_OPTION', async () => {
    expect(() => createMemoryBus({ broker: {} as MemoryBroker })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createMemoryBus({ maxDeadLetters: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createMemoryBroker({ maxQueueLength: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    const bus = createMemoryBus();
    const handler = async (): Promise<void> => {};
    await expect(bus.subscribe({ group: '', types: [EventTypes.SyncScheduled], handler })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(bus.subscribe({ group: 'g', types: [], handler })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler, concurrency: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await bus.close();
  });

  it('rejects publish of events it cannot carry and with an aborted signal', async () => {
    const bus = createMemoryBus({ maxPayloadBytes: 1024 });
    await expect(bus.publish(scheduled('big', { padding: 'x'.repeat(2000) }))).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    await expect(bus.publish({ ...scheduled('n'), id: '' })).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    await expect(bus.publish(scheduled('b', { big: 1n }))).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(bus.publish(scheduled('s'), { signal: controller.signal })).rejects.toThrow('stop');
    await bus.close();
  });

  it('survives a throwing onDeadLetter hook and audit sink', async () => {
    const bus = createMemoryBus({
      onDeadLetter: () => {
        throw new Error('hook failed');
      },
      audit: { record: () => Promise.reject(new Error('sink failed')) },
    });
    const seen: string[] = [];
    await bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async (e) => void seen.push(e.id) });
    await bus.publish(scheduled('bad', { specversion: '0.3' }));
    await bus.publish(scheduled('good'));
    await waitFor(() => seen.length === 1 && bus.deadLetters().length === 1, 'both outcomes');
    expect(seen).toEqual(['good']);
    await bus.close();
  });

  it('treats crash as a close: idempotent, later publish rejects with ERR_CLOSED', async () => {
    const bus = createMemoryBus();
    await bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async () => {} });
    await crashMemoryBus(bus);
    await crashMemoryBus(bus);
    await bus.close();
    await expect(bus.publish(scheduled('x'))).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(crashMemoryBus({} as EventBus)).rejects.toThrow(TypeError);
  });
});

describe('memory subscription disposal', () => {
  it('[Symbol.asyncDispose] closes the subscription: later events wait for another member', async () => {
    const bus = createMemoryBus();
    const seen: string[] = [];
    const subscription = await bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async (event) => void seen.push(event.id) });
    await bus.publish(scheduled('before'));
    await waitFor(() => seen.length === 1, 'the first event');
    await (subscription as unknown as AsyncDisposable)[Symbol.asyncDispose]();
    await bus.publish(scheduled('after'));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual(['before']);
    await bus.close();
  });
});

describe('memory bus close options', () => {
  it('rejects a bad close timeout without closing, so a corrected close still works', async () => {
    const bus = createMemoryBus();
    const sub = await bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async () => {} });
    await expect(sub.close({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(bus.close({ timeoutMs: Number.NaN })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await bus.publish(scheduled('still-open'));
    await sub.close({ timeoutMs: 0 });
    await bus.close();
    await expect(bus.publish(scheduled('closed'))).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('stops waiting for in-flight handlers when the close signal aborts', async () => {
    const bus = createMemoryBus({ closeTimeoutMs: 60_000 });
    const signals: AbortSignal[] = [];
    await bus.subscribe({
      group: 'g',
      types: [EventTypes.SyncScheduled],
      handler: (event, context) => {
        signals.push(context.signal);
        return hangUntilAborted(event, context);
      },
    });
    await bus.publish(scheduled('slow'));
    await waitFor(() => signals.length === 1, 'the handler');
    const controller = new AbortController();
    const closing = bus.close({ signal: controller.signal });
    controller.abort();
    await closing;
    expect(signals[0]?.aborted).toBe(true);
  });
});

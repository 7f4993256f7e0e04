import { CloudEvent as SdkCloudEvent } from 'cloudevents';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createEvent,
  createMemoryBus,
  EventRouter,
  EventTypes,
  isIntegrationSyncError,
  type CloudEvent,
  type MemoryEventBus,
} from '../../src/index.js';

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const scheduled = () =>
  createEvent(EventTypes.SyncScheduled, {
    integrationId: 'int_crm',
    tenantId: 'tenant_a',
    trigger: 'manual',
    scheduledAt: new Date().toISOString(),
  });

describe('EventRouter', () => {
  const buses: MemoryEventBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close({ timeoutMs: 100 })));
  });

  it('lists its types and the schema of each (contract default or given)', () => {
    const custom = z.looseObject({ invoiceId: z.string() });
    const router = new EventRouter()
      .on(EventTypes.SyncScheduled, async () => {})
      .on('acme.invoice.paid', custom, async () => {})
      .on('acme.free-form', async () => {});
    expect(router.types).toEqual([EventTypes.SyncScheduled, 'acme.invoice.paid', 'acme.free-form']);
    expect(router.schemas.get('acme.invoice.paid')).toBe(custom);
    expect(router.schemas.get(EventTypes.SyncScheduled)).toBeDefined();
    expect(router.schemas.has('acme.free-form')).toBe(false);
  });

  it('refuses a second handler for one type, a missing handler, and a non-schema', () => {
    const router = new EventRouter().on(EventTypes.SyncScheduled, async () => {});
    expect(() => router.on(EventTypes.SyncScheduled, async () => {})).toThrow(/already has a handler/);
    expect(() => router.on('x.y', undefined as never)).toThrow(/must be a function/);
    expect(() => router.on('x.y', { nope: true } as never, async () => {})).toThrow(/zod schema/);
    expect(() => router.on('', async () => {})).toThrow(/non-empty/);
  });

  it('handle() runs the route with parsed data and a usable default context', async () => {
    const seen: { data: unknown; group: string; attempt: number; aborted: boolean }[] = [];
    const router = new EventRouter().on(EventTypes.SyncScheduled, async (event, context) => {
      seen.push({ data: event.data, group: context.group, attempt: context.attempt, aborted: context.signal.aborted });
    });
    const event = scheduled();
    await router.handle(event);
    expect(seen).toEqual([{ data: event.data, group: 'direct', attempt: 1, aborted: false }]);
  });

  it('handle() rejects invalid data and unknown types as non-retryable, without calling a route', async () => {
    let calls = 0;
    const router = new EventRouter().on(EventTypes.SyncScheduled, async () => {
      calls += 1;
    });
    const bad = { ...scheduled(), data: { integrationId: 'int_crm', trigger: 'manual', scheduledAt: 'soon' } } as CloudEvent;
    const invalid = await router.handle(bad).catch((e: unknown) => e);
    expect(isIntegrationSyncError(invalid, 'ERR_NON_RETRYABLE')).toBe(true);
    expect(String((invalid as Error).message)).toMatch(/data\.tenantId/);
    const unknown = await router.handle({ ...scheduled(), type: 'acme.other' } as CloudEvent).catch((e: unknown) => e);
    expect(isIntegrationSyncError(unknown, 'ERR_NON_RETRYABLE')).toBe(true);
    const garbage = await router.handle('not an event' as never).catch((e: unknown) => e);
    expect(isIntegrationSyncError(garbage, 'ERR_NON_RETRYABLE')).toBe(true);
    expect(calls).toBe(0);
  });

  it('handle() validates against the routes as they are now, also after a route added later', async () => {
    const seen: unknown[] = [];
    const router = new EventRouter().on(EventTypes.SyncScheduled, async (event) => void seen.push(event.data.integrationId));
    await router.handle(scheduled());
    const paid = { ...scheduled(), type: 'acme.invoice.paid', data: { invoiceId: 42 } } as CloudEvent;
    await expect(router.handle(paid)).rejects.toMatchObject({ code: 'ERR_NON_RETRYABLE' });
    router.on('acme.invoice.paid', z.looseObject({ invoiceId: z.string() }), async (event) => void seen.push(event.data.invoiceId));
    // The new route's schema applies: a number is refused, a string passes.
    await expect(router.handle(paid)).rejects.toMatchObject({ code: 'ERR_NON_RETRYABLE' });
    await router.handle({ ...paid, data: { invoiceId: 'inv_1' } });
    expect(seen).toEqual(['int_crm', 'inv_1']);
  });

  it('subscribe() delivers through a real memory bus with its schemas; invalid events are dead-lettered', async () => {
    const bus = createMemoryBus({ retryBaseMs: 5 });
    buses.push(bus);
    const invoices: string[] = [];
    const scheduledIds: string[] = [];
    const router = new EventRouter()
      .on('acme.invoice.paid', z.looseObject({ invoiceId: z.string().min(1) }), async (event) => {
        invoices.push(event.data.invoiceId);
      })
      .on(EventTypes.SyncScheduled, async (event) => {
        scheduledIds.push(event.data.integrationId);
      });
    const subscription = await router.subscribe(bus, { group: `router-${Date.now()}`, concurrency: 2 });
    expect(subscription.types).toEqual(router.types);
    await bus.publish(createEvent('acme.invoice.paid', { invoiceId: 'inv_1' }));
    await bus.publish(createEvent('acme.invoice.paid', { invoiceId: 42 }));
    await bus.publish(scheduled());
    await waitFor(() => invoices.length === 1 && scheduledIds.length === 1 && bus.deadLetters().length === 1, 'deliveries');
    expect(invoices).toEqual(['inv_1']);
    expect(bus.deadLetters()[0]).toMatchObject({ reason: 'invalid', type: 'acme.invoice.paid' });
    expect(bus.deadLetters()[0]?.issues?.map((i) => i.path)).toContain('data.invoiceId');
  });

  it('routes an event made by the official cloudevents SDK', async () => {
    const received: unknown[] = [];
    const router = new EventRouter().on(EventTypes.WebhookReceived, async (event) => {
      received.push(event.data);
    });
    const sdkEvent = new SdkCloudEvent({
      type: EventTypes.WebhookReceived,
      source: '/provider/webhooks',
      datacontenttype: 'application/json',
      data: { integrationId: 'int_tickets', tenantId: 'tenant_b', entityType: 'ticket' },
    });
    await router.handle(JSON.parse(JSON.stringify(sdkEvent)) as CloudEvent);
    expect(received).toEqual([{ integrationId: 'int_tickets', tenantId: 'tenant_b', entityType: 'ticket' }]);
  });

  it('subscribe() without routes is refused', async () => {
    const bus = createMemoryBus();
    buses.push(bus);
    await expect(new EventRouter().subscribe(bus, { group: 'g' })).rejects.toThrow(/add a route/);
  });
});

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryPipeline } from '../../src/bus/delivery.js';
import { createMemoryBroker, createMemoryBus, type MemoryEventBus } from '../../src/bus/memory-bus.js';
import type { DeadLetterRecord, EventHandler } from '../../src/bus/types.js';
import { validateEvent, type CloudEvent } from '../../src/events/envelope.js';
import { EventTypes, isoDateTime } from '../../src/events/schemas.js';

const MAX_PAYLOAD = 16 * 1024;
const CONSUMED = [EventTypes.SyncScheduled, EventTypes.WebhookReceived, EventTypes.TokenRefreshRequested] as const;
type Consumed = (typeof CONSUMED)[number];

/** Required data fields of each consumed type, and which of them are timestamps. */
const FIELDS: Record<Consumed, { required: string[]; dates: string[]; optional: string[] }> = {
  [EventTypes.SyncScheduled]: { required: ['integrationId', 'tenantId', 'trigger', 'scheduledAt'], dates: ['scheduledAt'], optional: [] },
  [EventTypes.WebhookReceived]: { required: ['integrationId', 'tenantId'], dates: [], optional: ['entityType', 'filters'] },
  [EventTypes.TokenRefreshRequested]: {
    required: ['connectionId', 'integrationId', 'tenantId', 'expiresAt', 'requestedAt'],
    dates: ['expiresAt', 'requestedAt'],
    optional: [],
  },
};

const isoDate = fc
  .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const nonEmpty = fc.string({ minLength: 1, maxLength: 40 });
const FORBIDDEN = ['__proto__', 'constructor', 'prototype'];
const hasForbiddenKey = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && Object.keys(value).some((k) => FORBIDDEN.includes(k) || hasForbiddenKey((value as Record<string, unknown>)[k]));
/**
 * JSON values as they survive a round trip (no `-0`), without the keys decoding drops on
 * purpose (fast-check likes to generate `__proto__` and `constructor`; they have their own test).
 */
const plainJson = fc
  .jsonValue()
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  .filter((v) => !hasForbiddenKey(v));
const plainKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !FORBIDDEN.includes(k));
/** Extra data keys a newer producer might add. */
const extraFields = fc.dictionary(
  plainKey.filter((k) => !Object.values(FIELDS).some((f) => f.required.includes(k) || f.optional.includes(k))),
  plainJson,
  { maxKeys: 3 },
);

function validData(type: Consumed): fc.Arbitrary<Record<string, unknown>> {
  const spec = FIELDS[type];
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of spec.required) shape[field] = spec.dates.includes(field) ? isoDate : nonEmpty;
  const base = fc.record(shape) as fc.Arbitrary<Record<string, unknown>>;
  const optional =
    type === EventTypes.WebhookReceived
      ? fc.record({ entityType: nonEmpty, filters: fc.dictionary(plainKey, plainJson, { maxKeys: 3 }) }, { requiredKeys: [] })
      : fc.constant({});
  return fc.tuple(base, optional, extraFields).map(([required, opt, extra]) => ({ ...extra, ...required, ...opt }));
}

const envelope = (type: string, data: unknown, id: string): Record<string, unknown> => ({
  specversion: '1.0',
  id,
  source: '/fuzz',
  type,
  time: '2026-11-30T09:15:00.000Z',
  datacontenttype: 'application/json',
  data,
});

const validEvent = fc
  .tuple(fc.constantFrom(...CONSUMED), fc.uuid())
  .chain(([type, id]) => validData(type).map((data) => envelope(type, data, id)));

/** A value of the wrong type for a string field. */
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }));
/** Strings that are not RFC 3339 times with an offset. */
const badDate = fc.oneof(
  fc.constantFrom('next tuesday', '2026-11-30T09:15:00', '2026-13-30T09:15:00Z', '2026-02-30T09:15:00Z', '30/11/2026', '', '1764494100000', 'T', '2026-11-30 09:15:00Z'),
  fc.string({ maxLength: 30 }),
).filter((s) => !isoDateTime.safeParse(s).success);

/** A consumed event with exactly one data field broken, and the issue path it must produce. */
const brokenEvent = fc
  .tuple(fc.constantFrom(...CONSUMED), fc.uuid())
  .chain(([type, id]) =>
    validData(type).chain((data) => {
      const spec = FIELDS[type];
      const fields = [...spec.required, ...spec.optional];
      return fc.tuple(fc.constantFrom(...fields), fc.oneof(fc.constant('missing' as const), fc.constant('wrong-type' as const), fc.constant('bad-date' as const), fc.constant('empty' as const))).chain(([field, how]) => {
        const isDate = spec.dates.includes(field);
        const optional = spec.optional.includes(field);
        let value: fc.Arbitrary<unknown>;
        if (how === 'missing' && !optional) value = fc.constant(undefined);
        else if (how === 'bad-date' && isDate) value = badDate;
        else if (how === 'empty' && field !== 'filters') value = fc.constant('');
        else if (field === 'filters') value = fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer(), { maxLength: 2 }), fc.constant(null));
        else value = notAString;
        return value.map((v) => {
          const broken: Record<string, unknown> = { ...data };
          if (v === undefined) delete broken[field];
          else broken[field] = v;
          return { event: envelope(type, broken, id), path: `data.${field}` };
        });
      });
    }),
  );

function pipelineWith(onCall: () => void): { pipeline: DeliveryPipeline; deadLetters: DeadLetterRecord[] } {
  const deadLetters: DeadLetterRecord[] = [];
  const handler: EventHandler = async () => onCall();
  const pipeline = new DeliveryPipeline(
    { group: 'fuzz', types: [...CONSUMED], handler },
    { maxPayloadBytes: MAX_PAYLOAD, onDeadLetter: (r) => void deadLetters.push(r) },
  );
  return { pipeline, deadLetters };
}

function assertNotPolluted(): void {
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
}

describe('DeliveryPipeline on bad input (property-based)', () => {
  it('never throws and never calls the handler for arbitrary JSON values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.boolean(), async (value, asText) => {
        let calls = 0;
        const { pipeline, deadLetters } = pipelineWith(() => (calls += 1));
        const body = asText ? JSON.stringify(value) ?? 'null' : (value as object);
        const outcome = await pipeline.process({ body: body ?? 'null', attempt: 1 });
        if (validateEvent(value).ok) return; // astronomically rare; nothing to assert
        expect(outcome.action).toBe('dead-letter');
        expect(calls).toBe(0);
        expect(deadLetters).toHaveLength(1);
        expect(deadLetters[0]?.issues?.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('dead-letters a wrong type, a missing field, an empty string or a bad date in every data field', async () => {
    await fc.assert(
      fc.asyncProperty(brokenEvent, fc.boolean(), async ({ event, path }, asText) => {
        let calls = 0;
        const { pipeline, deadLetters } = pipelineWith(() => (calls += 1));
        const outcome = await pipeline.process({ body: asText ? JSON.stringify(event) : event, attempt: 1 });
        expect(outcome.action).toBe('dead-letter');
        expect(calls).toBe(0);
        expect(deadLetters[0]?.reason).toBe('invalid');
        expect(deadLetters[0]?.eventId).toBe(event.id);
        expect(deadLetters[0]?.issues?.map((i) => i.path)).toContain(path);
      }),
      { numRuns: 400 },
    );
  });

  it('never lets __proto__ or constructor keys reach a prototype', async () => {
    const hostile = fc.constantFrom(
      '"__proto__":{"polluted":true}',
      '"constructor":{"prototype":{"polluted":true}}',
      '"__proto__":{"__proto__":{"polluted":true}}',
      '"prototype":{"polluted":true}',
    );
    await fc.assert(
      fc.asyncProperty(validEvent, hostile, fc.constantFrom('root', 'data'), fc.boolean(), async (event, key, where, breakIt) => {
        let calls = 0;
        let received: CloudEvent | undefined;
        const deadLetters: DeadLetterRecord[] = [];
        const pipeline = new DeliveryPipeline(
          { group: 'proto', types: [...CONSUMED], handler: async (e) => void ((calls += 1), (received = e)) },
          { onDeadLetter: (r) => void deadLetters.push(r) },
        );
        const data = { ...(event.data as Record<string, unknown>) };
        if (breakIt) delete data.integrationId;
        const dataText = JSON.stringify(data);
        const withData = JSON.stringify({ ...event, data: '__DATA__' });
        const dataPart = where === 'data' ? `{${key},${dataText.slice(1)}`.replace(',}', '}') : dataText;
        let text = withData.replace('"__DATA__"', () => dataPart);
        if (where === 'root') text = `{${key},${text.slice(1)}`;
        const outcome = await pipeline.process({ body: text, attempt: 1 });
        assertNotPolluted();
        if (breakIt) {
          expect(outcome.action).toBe('dead-letter');
          expect(calls).toBe(0);
          expect(deadLetters[0]?.issues?.map((i) => i.path)).toContain('data.integrationId');
        } else {
          // Dropped while decoding; the rest of a valid event is still delivered.
          expect(calls).toBe(1);
          expect(Object.getPrototypeOf(received?.data)).toBe(Object.prototype);
          expect(Object.prototype.hasOwnProperty.call(received?.data, '__proto__')).toBe(false);
          expect(Object.prototype.hasOwnProperty.call(received, 'constructor')).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('dead-letters huge payloads as unparsable without calling the handler', async () => {
    await fc.assert(
      fc.asyncProperty(validEvent, fc.integer({ min: MAX_PAYLOAD + 1, max: MAX_PAYLOAD * 8 }), fc.boolean(), async (event, size, bytes) => {
        let calls = 0;
        const { pipeline, deadLetters } = pipelineWith(() => (calls += 1));
        const text = JSON.stringify({ ...event, data: { ...(event.data as object), blob: 'x'.repeat(size) } });
        const outcome = await pipeline.process({ body: bytes ? new TextEncoder().encode(text) : text, attempt: 1 });
        expect(outcome.action).toBe('dead-letter');
        expect(calls).toBe(0);
        expect(deadLetters[0]?.reason).toBe('unparsable');
        expect(deadLetters[0]?.issues?.[0]?.message).toMatch(/limit/);
      }),
      { numRuns: 40 },
    );
  });

  it('delivers every valid generated event to the handler with its data intact', async () => {
    await fc.assert(
      fc.asyncProperty(validEvent, fc.boolean(), async (event, asText) => {
        const received: CloudEvent[] = [];
        const pipeline = new DeliveryPipeline({ group: 'valid', types: [...CONSUMED], handler: async (e) => void received.push(e) }, {});
        const outcome = await pipeline.process({ body: asText ? JSON.stringify(event) : event, attempt: 1 });
        expect(outcome).toEqual({ action: 'ack', result: 'handled' });
        expect(received).toHaveLength(1);
        expect(received[0]?.data).toEqual(JSON.parse(JSON.stringify(event.data)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('memory bus on bad input (property-based)', () => {
  const buses: MemoryEventBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close({ timeoutMs: 100 })));
  });

  async function waitFor(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  it('dead-letters arbitrary raw payloads and broken events, and still delivers the valid one after them', async () => {
    const rawPayload = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
      brokenEvent.map(({ event }) => JSON.stringify(event)),
      fc.uint8Array({ maxLength: 64 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(rawPayload, { minLength: 1, maxLength: 8 }), validEvent, async (payloads, valid) => {
        const broker = createMemoryBroker();
        const bus = createMemoryBus({ broker, maxPayloadBytes: MAX_PAYLOAD });
        buses.push(bus);
        const received: string[] = [];
        await bus.subscribe({ group: 'fuzz', types: [...CONSUMED], handler: async (e) => void received.push(e.id) });
        for (const payload of payloads) broker.publishRaw(EventTypes.SyncScheduled, payload);
        await bus.publish(valid as unknown as CloudEvent);
        await waitFor(() => received.length === 1 && bus.deadLetters().length === payloads.length, 'every payload to settle');
        expect(received).toEqual([valid.id]);
        for (const record of bus.deadLetters()) {
          expect(['unparsable', 'invalid']).toContain(record.reason);
          expect(record.issues?.length).toBeGreaterThan(0);
        }
        assertNotPolluted();
        await bus.close();
      }),
      { numRuns: 60 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createEvent, parseEvent, validateEvent } from '../../src/events/envelope.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { EventTypes } from '../../src/events/schemas.js';
import { failOnUnhandledRejections } from '../support/unhandled.js';

failOnUnhandledRejections();

const envelope = (data: unknown): Record<string, unknown> => ({ specversion: '1.0', id: 'x', source: 's', type: EventTypes.WebhookReceived, data });

describe('parseEvent never throws on bad input', () => {
  const hostile: Record<string, () => unknown> = {
    'a data getter that throws': () =>
      envelope({
        get integrationId(): string {
          throw new Error('getter');
        },
        tenantId: 't',
      }),
    'an envelope getter that throws': () => ({
      specversion: '1.0',
      get id(): string {
        throw new Error('id getter');
      },
      source: 's',
      type: 't',
      data: {},
    }),
    'a Proxy envelope': () =>
      new Proxy(
        {},
        {
          get() {
            throw new Error('get trap');
          },
          ownKeys() {
            throw new Error('ownKeys trap');
          },
          getOwnPropertyDescriptor() {
            throw new Error('descriptor trap');
          },
        },
      ),
    'a Proxy as data': () =>
      envelope(
        new Proxy(
          { integrationId: 'i', tenantId: 't' },
          {
            get() {
              throw new Error('get trap');
            },
          },
        ),
      ),
  };
  for (const [name, make] of Object.entries(hostile)) {
    it(`returns ok: false for ${name}`, () => {
      const value = make();
      const parsed = parseEvent(value as object);
      expect(parsed.ok).toBe(false);
      const validated = validateEvent(value);
      expect(validated.ok).toBe(false);
      if (!validated.ok) expect(validated.issues.length).toBeGreaterThan(0);
    });
  }

  it('handles cyclic data, deep nesting, Symbol keys, non-string ids and a 10 MB payload', () => {
    const cyclic: Record<string, unknown> = { integrationId: 'i', tenantId: 't' };
    cyclic.filters = { self: cyclic };
    expect(parseEvent(envelope(cyclic)).ok).toBe(true);
    const deep = `{"specversion":"1.0","id":"x","source":"s","type":"${EventTypes.WebhookReceived}","data":{"integrationId":"i","tenantId":"t","filters":{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}`;
    expect(parseEvent(deep).ok).toBe(true);
    expect(parseEvent({ ...envelope({ integrationId: 'i', tenantId: 't' }), [Symbol('s')]: 1 }).ok).toBe(true);
    expect(parseEvent({ ...envelope({ integrationId: 'i', tenantId: 't' }), id: 5 })).toMatchObject({ ok: false, issues: [{ path: 'id' }] });
    expect(parseEvent('"' + 'a'.repeat(10 * 1024 * 1024) + '"').ok).toBe(false);
    expect(parseEvent(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])).ok).toBe(false);
  });

  it('drops __proto__/constructor keys, even escaped, without polluting prototypes', () => {
    const text = `{"specversion":"1.0","id":"x","source":"s","type":"${EventTypes.WebhookReceived}","data":{"integrationId":"i","tenantId":"t","\\u005f_proto__":{"polluted":1},"filters":{"constructor":{"prototype":{"polluted":1}}}}}`;
    const parsed = parseEvent(text);
    expect(parsed.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(parsed)).not.toContain('polluted');
  });

  it('judges times: leap seconds, odd offsets and impossible dates', () => {
    const at = (timestamp: string): boolean =>
      parseEvent({ specversion: '1.0', id: 'x', source: 's', type: EventTypes.SyncCheckDue, data: { timestamp } }).ok;
    expect(at('2026-12-03T10:00:00+14:00')).toBe(true);
    expect(at('2026-12-03T10:00:00.123456789-09:30')).toBe(true);
    expect(at('2026-12-03T10:00:00')).toBe(false);
    expect(at('2026-02-30T10:00:00Z')).toBe(false);
    expect(at('2026-12-03T10:00:00+99:99')).toBe(false);
  });
});

describe('createEvent with hostile options and data', () => {
  it('throws ERR_EVENT_INVALID (not a RangeError) for an invalid Date', () => {
    const error = (() => {
      try {
        createEvent(EventTypes.SyncCheckDue, { timestamp: new Date().toISOString() }, { time: new Date(Number.NaN) });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isIntegrationSyncError(error, 'ERR_EVENT_INVALID')).toBe(true);
  });

  it('accepts null options as no options', () => {
    expect(createEvent(EventTypes.SyncCheckDue, { timestamp: new Date().toISOString() }, null as never).type).toBe(EventTypes.SyncCheckDue);
  });

  it('extensions cannot override the core attributes', () => {
    const event = createEvent(EventTypes.SyncCheckDue, { timestamp: new Date().toISOString() }, { id: 'mine', extensions: { specversion: '2.0', id: 'theirs' } as never });
    expect(event).toMatchObject({ specversion: '1.0', id: 'mine' });
  });

  it('a cyclic or BigInt event is refused by publish with ERR_PUBLISH_FAILED, never a TypeError', async () => {
    const bus = createMemoryBus();
    const cyclic: Record<string, unknown> = { integrationId: 'i', tenantId: 't' };
    cyclic.filters = { self: cyclic };
    for (const data of [cyclic, { integrationId: 'i', tenantId: 't', filters: { n: 1n } }]) {
      const event = createEvent(EventTypes.WebhookReceived, data as never);
      const error = await bus.publish(event).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED')).toBe(true);
    }
    const getter = { specversion: '1.0', source: 's', type: 't', data: {}, get id(): string { throw new Error('getter'); } };
    const error = await bus.publish(getter as never).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED')).toBe(true);
    await bus.close();
  });
});

describe('property: parseEvent never throws', () => {
  it('for any value, any text and any bytes', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.oneof(fc.anything({ withBigInt: true, withMap: true, withSet: true, withObjectString: true, withNullPrototype: true, withTypedArray: true, withSparseArray: true }), fc.string(), fc.uint8Array()), (value) => {
        const result = parseEvent(value as object);
        expect(typeof result.ok).toBe('boolean');
        const wrapped = parseEvent({ specversion: '1.0', id: 'x', source: 's', type: EventTypes.WebhookReceived, data: value });
        expect(typeof wrapped.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });
});

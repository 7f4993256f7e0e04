/**
 * Interop with the official CloudEvents SDK: every contract event we create parses there, and
 * every event the SDK produces (structured and binary HTTP modes) parses here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CloudEvent as SdkEvent, HTTP } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { createEvent, EventTypes, parseEvent, serializeEvent, type EventDataMap } from '../../src/index.js';

const now = '2026-11-30T09:15:00.000Z';
const samples: { [K in keyof EventDataMap]: EventDataMap[K] } = {
  'integration.sync.check-due': { timestamp: now },
  'integration.token.check-expiring': { timestamp: now, thresholdTime: '2026-11-30T10:20:00.000Z' },
  'integration.token.refreshed': { connectionId: 'conn_1', integrationId: 'int_crm', refreshedAt: now },
  'integration.token.refresh.failed': { connectionId: 'conn_1', integrationId: 'int_crm', error: 'invalid_grant', failedAt: now },
  'integration.sync.scheduled': { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: now },
  'integration.webhook.received': { integrationId: 'int_crm', tenantId: 'tenant_a', entityType: 'contact', filters: { ids: ['1'] } },
  'integration.token.refresh-requested': {
    connectionId: 'conn_1',
    integrationId: 'int_crm',
    tenantId: 'tenant_a',
    expiresAt: '2026-11-30T09:40:00.000Z',
    requestedAt: now,
  },
};

describe('CloudEvents SDK interop', () => {
  it('covers all seven contract types', () => {
    expect(Object.keys(samples).sort()).toEqual(Object.values(EventTypes).sort());
  });

  for (const [type, data] of Object.entries(samples)) {
    it(`${type}: ours parses in the SDK (structured mode) with every attribute intact`, () => {
      const ours = createEvent(type as keyof EventDataMap, data as never, { extensions: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
      const message = { headers: { 'content-type': 'application/cloudevents+json' }, body: serializeEvent(ours) };
      const sdk = HTTP.toEvent(message) as SdkEvent<unknown>;
      expect(sdk.validate()).toBe(true);
      expect(sdk.id).toBe(ours.id);
      expect(sdk.type).toBe(type);
      expect(sdk.source).toBe(ours.source);
      expect(new Date(sdk.time as string).toISOString()).toBe(ours.time);
      expect(sdk.data).toEqual(data);
      expect(sdk.traceparent).toBe(ours.traceparent);
    });

    it(`${type}: the SDK's event parses here, from structured and binary HTTP messages`, () => {
      const sdk = new SdkEvent({ type, source: '/sdk/producer', data, datacontenttype: 'application/json' });
      const structured = HTTP.structured(sdk);
      const fromStructured = parseEvent(structured.body as string);
      expect(fromStructured.ok).toBe(true);
      if (fromStructured.ok) {
        expect(fromStructured.event.id).toBe(sdk.id);
        expect(fromStructured.event.data).toEqual(data);
      }
      // Binary mode: rebuild the structured JSON from the SDK's own decode of headers + body.
      const binary = HTTP.binary(sdk);
      const decoded = HTTP.toEvent({ headers: binary.headers, body: binary.body }) as SdkEvent<unknown>;
      const fromBinary = parseEvent(JSON.parse(JSON.stringify(decoded.toJSON())) as object);
      expect(fromBinary.ok).toBe(true);
      if (fromBinary.ok) expect(fromBinary.event.type).toBe(type);
    });
  }

  it('the SDK rejects nothing of the shared valid cases, and we reject what breaks the contract', () => {
    const dir = join(__dirname, '../fixtures/events');
    for (const file of readdirSync(dir).filter((f) => f.startsWith('valid-'))) {
      const body = readFileSync(join(dir, file), 'utf8');
      const sdk = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body }) as SdkEvent<unknown>;
      expect(sdk.validate(), file).toBe(true);
      expect(parseEvent(body).ok, file).toBe(true);
    }
  });

  it('an SDK event whose data misses a required field is rejected here with its path', () => {
    const sdk = new SdkEvent({ type: EventTypes.SyncScheduled, source: '/sdk', data: { integrationId: 'i', trigger: 'x', scheduledAt: now } });
    const result = parseEvent(HTTP.structured(sdk).body as string);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContain('data.tenantId');
  });
});

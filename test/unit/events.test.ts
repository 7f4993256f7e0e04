import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEvent, EventTypes, parseEvent } from '../../src/index.js';

const casesDir = join(__dirname, '../fixtures/events');

describe('shared event cases', () => {
  const files = readdirSync(casesDir).filter((f) => f.endsWith('.json'));
  it('has cases to check', () => {
    expect(files.length).toBeGreaterThanOrEqual(13);
  });
  for (const file of files) {
    it(`${file} ${file.startsWith('valid') ? 'parses' : 'is rejected'}`, () => {
      const result = parseEvent(readFileSync(join(casesDir, file), 'utf8'));
      expect(result.ok).toBe(file.startsWith('valid'));
    });
  }
  it('names the offending path', () => {
    const expected: Record<string, string> = {
      'invalid-scheduled-missing-tenant.json': 'data.tenantId',
      'invalid-refresh-requested-number-id.json': 'data.connectionId',
      'invalid-webhook-no-specversion.json': 'specversion',
      'invalid-scheduled-bad-date.json': 'data.scheduledAt',
    };
    for (const [file, path] of Object.entries(expected)) {
      const result = parseEvent(readFileSync(join(casesDir, file), 'utf8'));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(path);
    }
  });
  it('keeps unknown data fields and extensions', () => {
    const result = parseEvent(readFileSync(join(casesDir, 'valid-sync-scheduled-extra-fields.json'), 'utf8'));
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect((result.event.data as Record<string, unknown>).priority).toBe('high');
      expect(result.event.traceparent).toMatch(/^00-/);
    }
  });
});

describe('createEvent', () => {
  it('rejects data that does not fit the schema with ERR_EVENT_INVALID', () => {
    expect(() => createEvent(EventTypes.SyncCheckDue, { timestamp: 'yesterday' })).toThrow(/data.timestamp/);
  });
});

describe('timestamps', () => {
  const base = { specversion: '1.0', id: 'e1', source: '/t', type: EventTypes.SyncCheckDue };
  it('accepts any RFC 3339 time with an offset', () => {
    for (const timestamp of ['2026-11-30T09:15:00Z', '2026-11-30T09:15:00.123456Z', '2026-11-30T10:15:00+01:00', '2026-11-30T04:15:00-05:00']) {
      expect(parseEvent({ ...base, data: { timestamp } }).ok, timestamp).toBe(true);
    }
  });
  it('rejects times without an offset, impossible dates and non-strings', () => {
    for (const timestamp of ['2026-11-30T09:15:00', '2026-13-30T09:15:00Z', 'next tuesday', 1764494100000, null]) {
      const result = parseEvent({ ...base, data: { timestamp } });
      expect(result.ok, String(timestamp)).toBe(false);
      if (!result.ok) expect(result.issues[0]?.path).toBe('data.timestamp');
    }
  });
  it('createEvent stamps time with toISOString and the JSON content type', () => {
    const event = createEvent(EventTypes.SyncCheckDue, { timestamp: '2026-11-30T09:15:00.000Z' }, { time: new Date(0) });
    expect(event.time).toBe('1970-01-01T00:00:00.000Z');
    expect(event.datacontenttype).toBe('application/json');
    expect(event.specversion).toBe('1.0');
  });
});

describe('parseEvent on hostile input', () => {
  it('drops __proto__ keys without polluting prototypes', () => {
    const text = '{"specversion":"1.0","id":"x","source":"/s","type":"integration.sync.check-due","data":{"timestamp":"2026-11-30T09:15:00Z","__proto__":{"polluted":true}},"__proto__":{"polluted":true}}';
    const result = parseEvent(text);
    expect(result.ok).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (result.ok) expect(Object.getPrototypeOf(result.event.data)).toBe(Object.prototype);
  });
  it('rejects payloads over the size limit without parsing them', () => {
    const result = parseEvent('x'.repeat(1000), { maxPayloadBytes: 100 });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]?.message).toMatch(/limit is 100/);
  });
  it('rejects text that is not JSON without echoing it', () => {
    const result = parseEvent('{"secret-canary-123": ');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(JSON.stringify(result.issues)).not.toContain('secret-canary-123');
  });
});

describe('safeJsonParse', () => {
  it('drops forbidden keys hidden behind unicode escapes too', async () => {
    const { safeJsonParse } = await import('../../src/index.js');
    const value = safeJsonParse('{"a":1,"__proto\\u005f_":{"polluted":true},"constructor":{"x":1},"nested":{"prototype":2,"b":3}}') as Record<string, unknown>;
    expect(Object.keys(value).sort()).toEqual(['a', 'nested']);
    expect(value.nested).toEqual({ b: 3 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
  it('parses plain JSON on the fast path unchanged', async () => {
    const { safeJsonParse } = await import('../../src/index.js');
    expect(safeJsonParse('{"a":[1,{"b":"c"}],"d":null}')).toEqual({ a: [1, { b: 'c' }], d: null });
  });
});

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

import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { AUDIT_CHANNEL, createEvent, createMemoryBus, EventTypes, type AuditRecord } from '../../src/index.js';

describe('audit records on node:diagnostics_channel', () => {
  it('publishes every record on integration-sync:audit even with no sink configured', async () => {
    const seen: AuditRecord[] = [];
    const listener = (message: unknown): void => {
      seen.push(message as AuditRecord);
    };
    diagnosticsChannel.subscribe(AUDIT_CHANNEL, listener);
    const bus = createMemoryBus();
    try {
      let handled = 0;
      await bus.subscribe({ group: 'diag', types: [EventTypes.SyncCheckDue], handler: async () => void (handled += 1) });
      const event = createEvent(EventTypes.SyncCheckDue, { timestamp: new Date().toISOString() });
      await bus.publish(event);
      for (let i = 0; i < 100 && handled === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 10));
      const kinds = seen.filter((r) => r.eventId === event.id).map((r) => r.kind);
      expect(kinds).toContain('event.published');
      expect(kinds).toContain('event.consumed');
    } finally {
      diagnosticsChannel.unsubscribe(AUDIT_CHANNEL, listener);
      await bus.close();
    }
  });
});

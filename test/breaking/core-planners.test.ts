import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/types.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import type { EventBus } from '../../src/bus/types.js';
import { createEvent, type CloudEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createRefreshPlanner } from '../../src/planners/refresh-planner.js';
import { createSyncPlanner } from '../../src/planners/sync-planner.js';
import { failOnUnhandledRejections } from '../support/unhandled.js';

failOnUnhandledRejections();

function recordingBus(): { bus: EventBus; published: CloudEvent[] } {
  const published: CloudEvent[] = [];
  return {
    published,
    bus: {
      publish: async (e) => void published.push(e),
      subscribe: () => Promise.reject(new Error('unused')),
      close: async () => {},
    },
  };
}

const checkDue = () => createEvent(EventTypes.SyncCheckDue, { timestamp: new Date().toISOString() });
const checkExpiring = () => createEvent(EventTypes.TokenCheckExpiring, { timestamp: new Date().toISOString(), thresholdTime: new Date(Date.now() + 3_600_000).toISOString() });

describe('sync planner with hostile host functions', () => {
  const hosts: Record<string, () => unknown> = {
    'throws synchronously': () => {
      throw new Error('db');
    },
    'returns null': () => null,
    'returns a number': () => 42,
    'returns a string': () => 'not a list',
    'returns an iterator that throws midway': () =>
      (function* () {
        yield { integrationId: 'a', tenantId: 't' };
        throw new Error('cursor broke');
      })(),
  };
  for (const [name, findDue] of Object.entries(hosts)) {
    it(`findDue that ${name}: plan rejects (the check is retried), nothing crashes`, async () => {
      const { bus } = recordingBus();
      const planner = createSyncPlanner({ bus, findDue: findDue as never });
      await expect(planner.plan(checkDue())).rejects.toBeDefined();
    });
  }

  it('items of the wrong types are skipped and audited, the good ones published once', async () => {
    const { bus, published } = recordingBus();
    const audit: AuditRecord[] = [];
    const getter = {
      get integrationId(): string {
        throw new Error('getter');
      },
      tenantId: 't',
    };
    const planner = createSyncPlanner({
      bus,
      audit: { record: (r) => void audit.push(r) },
      findDue: () => [null, 5, 'x', { integrationId: 5, tenantId: 't' }, { integrationId: '', tenantId: 't' }, { integrationId: 'ok', tenantId: 't' }, { integrationId: 'ok', tenantId: 't' }, { integrationId: 'a', tenantId: 't', trigger: {} }, getter] as never,
    });
    const result = await planner.plan(checkDue());
    expect(result.published).toBe(1);
    expect(result.invalid).toBeGreaterThanOrEqual(6);
    expect(published).toHaveLength(1);
    expect(audit.filter((r) => r.kind === 'planner.skipped').length).toBe(result.invalid);
  });

  it('a findDue that ignores the signal: plan rejects with the reason once it aborts', async () => {
    const { bus } = recordingBus();
    const planner = createSyncPlanner({ bus, findDue: () => new Promise(() => {}) });
    const controller = new AbortController();
    const pending = planner.plan(checkDue(), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 20);
    await expect(pending).rejects.toThrow('shutdown');
  });
});

describe('sync planner: an async cursor that hangs', () => {
  it('plan rejects with the abort reason instead of waiting on the cursor forever', async () => {
    const { bus, published } = recordingBus();
    const planner = createSyncPlanner({
      bus,
      findDue: () =>
        (async function* () {
          yield { integrationId: 'a', tenantId: 't' };
          await new Promise(() => {});
        })(),
    });
    const controller = new AbortController();
    const pending = planner.plan(checkDue(), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 30);
    await expect(pending).rejects.toThrow('shutdown');
    expect(published).toHaveLength(1);
  });
});

describe('refresh planner with hostile host functions', () => {
  const pages: Record<string, () => unknown> = {
    'throws synchronously': () => {
      throw new Error('db');
    },
    'resolves to null': async () => null,
    'resolves to items that are not an array': async () => ({ items: 'x' }),
    'returns a numeric cursor': async () => ({ items: [], nextCursor: 5 }),
  };
  for (const [name, findExpiring] of Object.entries(pages)) {
    it(`findExpiring that ${name}: plan rejects, nothing crashes`, async () => {
      const { bus } = recordingBus();
      const planner = createRefreshPlanner({ bus, findExpiring: findExpiring as never });
      await expect(planner.plan(checkExpiring())).rejects.toBeDefined();
    });
  }

  it('an endless or repeating cursor stops (truncated), each connection requested once', async () => {
    const { bus, published } = recordingBus();
    let n = 0;
    const planner = createRefreshPlanner({
      bus,
      maxPages: 50,
      findExpiring: async () => ({ items: [{ connectionId: 'c1', integrationId: 'i', tenantId: 't', expiresAt: new Date(Number.NaN) }, { connectionId: 'c2', integrationId: 'i', tenantId: 't', expiresAt: new Date() }], nextCursor: `p${(n += 1)}` }),
    });
    const result = await planner.plan(checkExpiring());
    expect(result.truncated).toBe('max_pages');
    expect(published).toHaveLength(1);
    const repeating = createRefreshPlanner({ bus, findExpiring: async () => ({ items: [], nextCursor: 'same' }) });
    expect((await repeating.plan(checkExpiring())).truncated).toBe('cursor_repeated');
  });

  it('a findExpiring that ignores the signal: plan rejects with the reason once it aborts', async () => {
    const { bus } = recordingBus();
    const planner = createRefreshPlanner({ bus, findExpiring: () => new Promise(() => {}) });
    const controller = new AbortController();
    const pending = planner.plan(checkExpiring(), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 20);
    await expect(pending).rejects.toThrow('shutdown');
  });

  it('on a memory bus, a planner whose host hangs does not hold close() past its deadline', async () => {
    const bus = createMemoryBus();
    const planner = createSyncPlanner({ bus, findDue: () => new Promise(() => {}) });
    await planner.subscribe(bus, { group: 'p' });
    await bus.publish(checkDue());
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await bus.close({ timeoutMs: 50 });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

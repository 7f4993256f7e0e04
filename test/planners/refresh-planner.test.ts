import { describe, expect, it } from 'vitest';
import { createMemoryAuditStore } from '../../src/audit/index.js';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createEvent, type CloudEvent } from '../../src/events/envelope.js';
import { EventRouter } from '../../src/events/router.js';
import type { TokenRefreshRequestedData } from '../../src/events/schemas.js';
import { createRefreshPlanner, refreshRequestedEventId, type ExpiringConnection, type FindExpiring } from '../../src/planners/index.js';
import { fixedClock, RecordingBus, recordingLogger } from './fakes.js';

const NOW = '2026-12-03T10:00:00.000Z';
const THRESHOLD = '2026-12-03T11:05:00.000Z';
const check = (id = 'check-1') => createEvent('integration.token.check-expiring', { timestamp: NOW, thresholdTime: THRESHOLD }, { id });

function connections(n: number): ExpiringConnection[] {
  return Array.from({ length: n }, (_, i) => ({
    connectionId: `conn-${i}`,
    integrationId: `int-${i % 3}`,
    tenantId: `t-${i % 5}`,
    expiresAt: new Date(Date.parse(NOW) + i * 1000).toISOString(),
  }));
}

/** A host table paged by a keyset cursor (the last connection id of the page). */
function pagedHost(rows: ExpiringConnection[]): { find: FindExpiring; calls: Array<{ cursor: string | undefined; limit: number }> } {
  const calls: Array<{ cursor: string | undefined; limit: number }> = [];
  const find: FindExpiring = async (threshold, { cursor, limit }) => {
    calls.push({ cursor, limit });
    expect(threshold.toISOString()).toBe(THRESHOLD);
    const start = cursor === undefined ? 0 : rows.findIndex((r) => r.connectionId === cursor) + 1;
    const items = rows.slice(start, start + limit);
    const more = start + limit < rows.length;
    return { items, ...(more ? { nextCursor: items.at(-1)?.connectionId } : {}) };
  };
  return { find, calls };
}

const ids = (events: CloudEvent[]) => events.map((e) => (e.data as TokenRefreshRequestedData).connectionId);

describe('createRefreshPlanner', () => {
  it('pages through every expiring connection once, publishing one refresh request each', async () => {
    const bus = new RecordingBus();
    const rows = connections(25);
    const host = pagedHost(rows);
    const planner = createRefreshPlanner({ bus, findExpiring: host.find, pageSize: 10, clock: fixedClock('2026-12-03T10:00:01.000Z') });
    const result = await planner.plan(check());
    expect(result).toEqual({ published: 25, invalid: 0, failed: 0, pages: 3 });
    expect(host.calls).toEqual([
      { cursor: undefined, limit: 10 },
      { cursor: 'conn-9', limit: 10 },
      { cursor: 'conn-19', limit: 10 },
    ]);
    expect(ids(bus.published).sort()).toEqual(rows.map((r) => r.connectionId).sort());
    expect(bus.published[0]).toMatchObject({
      type: 'integration.token.refresh-requested',
      id: refreshRequestedEventId('conn-0', 'check-1'),
      data: { connectionId: 'conn-0', integrationId: 'int-0', tenantId: 't-0', expiresAt: rows[0]?.expiresAt, requestedAt: '2026-12-03T10:00:01.000Z' },
    });
  });

  it('uses 100 as the default page size and accepts Date expiries', async () => {
    const bus = new RecordingBus();
    const host = pagedHost(connections(150).map((c) => ({ ...c, expiresAt: new Date(c.expiresAt) })));
    const planner = createRefreshPlanner({ bus, findExpiring: host.find });
    expect((await planner.plan(check())).published).toBe(150);
    expect(host.calls.map((c) => c.limit)).toEqual([100, 100]);
    expect((bus.published[0]?.data as TokenRefreshRequestedData).expiresAt).toBe(connections(1)[0]?.expiresAt);
  });

  it('derives ids from connection and check: a redelivered check repeats them, the next check does not', async () => {
    const bus = new RecordingBus();
    const planner = createRefreshPlanner({ bus, findExpiring: pagedHost(connections(3)).find });
    await planner.plan(check('check-1'));
    await planner.plan(check('check-1'));
    await planner.plan(check('check-2'));
    const all = bus.published.map((e) => e.id);
    expect(all.slice(0, 3)).toEqual(all.slice(3, 6));
    expect(all.slice(6).filter((id) => all.slice(0, 3).includes(id))).toEqual([]);
    expect(all.every((id) => /^refresh-[0-9a-f]{64}$/.test(id))).toBe(true);
  });

  it('keeps going past connections whose publish fails, then rejects with all of them so the check is retried', async () => {
    const bus = new RecordingBus();
    const failing = new Set(['conn-2', 'conn-13', 'conn-14']);
    bus.failWhen = (event) => failing.has((event.data as TokenRefreshRequestedData).connectionId);
    const audit = createMemoryAuditStore();
    const { logger, lines } = recordingLogger();
    const planner = createRefreshPlanner({ bus, audit, logger, findExpiring: pagedHost(connections(20)).find, pageSize: 5, concurrency: 3 });
    const error = await planner.plan(check()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED')).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(AggregateError);
    expect(((error as Error).cause as AggregateError).errors).toHaveLength(3);
    expect(ids(bus.published)).toHaveLength(17);
    expect(ids(bus.published)).toContain('conn-19');
    const skipped = await audit.query({ kind: 'planner.skipped' });
    expect(skipped.map((r) => r.connectionId).sort()).toEqual(['conn-13', 'conn-14', 'conn-2']);
    expect(skipped.every((r) => r.outcome === 'publish_failed')).toBe(true);
    expect(lines.filter((l) => l.level === 'error' && l.msg === 'planner publish failed')).toHaveLength(3);

    // The retry (same check event) publishes the same ids: the ones that went through are duplicates downstream.
    bus.failWhen = () => false;
    const before = new Set(bus.published.map((e) => e.id));
    await planner.plan(check());
    const retried = bus.published.slice(17);
    expect(retried).toHaveLength(20);
    expect(retried.filter((e) => !before.has(e.id)).map((e) => (e.data as TokenRefreshRequestedData).connectionId).sort()).toEqual(['conn-13', 'conn-14', 'conn-2']);
  });

  it('a host that never stops paging is cut off at maxPages', async () => {
    const bus = new RecordingBus();
    let page = 0;
    const { logger, lines } = recordingLogger();
    const planner = createRefreshPlanner({
      bus,
      logger,
      maxPages: 7,
      findExpiring: async () => {
        page += 1;
        return { items: connections(1).map((c) => ({ ...c, connectionId: `conn-p${page}` })), nextCursor: `page-${page}` };
      },
    });
    const result = await planner.plan(check());
    expect(result).toMatchObject({ pages: 7, published: 7, truncated: 'max_pages' });
    expect(page).toBe(7);
    expect(lines.some((l) => l.level === 'error' && /maxPages/.test(l.msg ?? ''))).toBe(true);
  });

  it('a cursor that comes back is stopped, and connections seen on two pages are requested once', async () => {
    const bus = new RecordingBus();
    const rows = connections(4);
    let calls = 0;
    const planner = createRefreshPlanner({
      bus,
      findExpiring: async (_t, { cursor }) => {
        calls += 1;
        // A -> B -> A -> B ...; page B repeats a row of page A.
        return cursor === 'B' ? { items: [rows[0], rows[1]] as ExpiringConnection[], nextCursor: 'A' } : { items: [rows[1], rows[2], rows[3]] as ExpiringConnection[], nextCursor: 'B' };
      },
    });
    const result = await planner.plan(check());
    expect(result).toMatchObject({ truncated: 'cursor_repeated', published: 4, pages: 3 });
    expect(calls).toBe(3);
    expect(ids(bus.published).sort()).toEqual(['conn-0', 'conn-1', 'conn-2', 'conn-3']);
  });

  it('skips invalid items with a log line and an audit record and publishes the rest of the page', async () => {
    const bus = new RecordingBus();
    const audit = createMemoryAuditStore();
    const { logger, lines } = recordingLogger();
    const good = connections(2);
    const planner = createRefreshPlanner({
      bus,
      audit,
      logger,
      findExpiring: async () => ({
        items: [
          good[0],
          { connectionId: 'bad-date', integrationId: 'i', tenantId: 't', expiresAt: 'tomorrow' },
          { connectionId: 'bad-date-obj', integrationId: 'i', tenantId: 't', expiresAt: new Date(Number.NaN) },
          { connectionId: 'no-tenant', integrationId: 'i', expiresAt: NOW },
          null,
          good[1],
        ] as unknown as ExpiringConnection[],
      }),
    });
    expect(await planner.plan(check())).toEqual({ published: 2, invalid: 4, failed: 0, pages: 1 });
    expect(ids(bus.published)).toEqual(['conn-0', 'conn-1']);
    const skipped = await audit.query({ kind: 'planner.skipped', eventType: 'integration.token.refresh-requested' });
    expect(skipped.map((r) => r.connectionId ?? '(none)').sort()).toEqual(['(none)', 'bad-date', 'bad-date-obj', 'no-tenant']);
    expect(skipped.find((r) => r.connectionId === 'bad-date')?.reason).toMatch(/data\.expiresAt/);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(4);
  });

  it('rejects when a page cannot be read, and on a page of the wrong shape', async () => {
    const bus = new RecordingBus();
    const down = createRefreshPlanner({ bus, findExpiring: async () => Promise.reject(new Error('db down')) });
    await expect(down.plan(check())).rejects.toThrow('db down');
    const wrong = createRefreshPlanner({ bus, findExpiring: async () => ({ rows: [] }) as never });
    await expect(wrong.plan(check())).rejects.toThrow(/items/);
    const badCursor = createRefreshPlanner({ bus, findExpiring: async () => ({ items: [], nextCursor: 5 as never }) });
    await expect(badCursor.plan(check())).rejects.toThrow(/nextCursor/);
  });

  it('stops paging on abort with the signal reason', async () => {
    const bus = new RecordingBus();
    const controller = new AbortController();
    let pages = 0;
    const planner = createRefreshPlanner({
      bus,
      findExpiring: async (_t, { signal }) => {
        expect(signal).toBe(controller.signal);
        pages += 1;
        if (pages === 2) controller.abort(new Error('shutting down'));
        return { items: connections(1), nextCursor: `c${pages}` };
      },
    });
    await expect(planner.plan(check(), { signal: controller.signal })).rejects.toThrow('shutting down');
    expect(pages).toBe(2);
  });

  it('runs end to end on the memory bus through an EventRouter subscription', async () => {
    const bus = createMemoryBus();
    const requested: string[] = [];
    await bus.subscribe({
      group: 'refreshers',
      types: ['integration.token.refresh-requested'],
      handler: async (event) => {
        requested.push((event.data as TokenRefreshRequestedData).connectionId);
      },
    });
    const planner = createRefreshPlanner({ bus, findExpiring: pagedHost(connections(12)).find, pageSize: 5 });
    const router = new EventRouter().on(planner.type, planner.schema, planner.handle);
    const sub = await router.subscribe(bus, { group: 'planners' });
    await bus.publish(check());
    const deadline = Date.now() + 10_000;
    while (requested.length < 12 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(requested.sort()).toEqual(connections(12).map((c) => c.connectionId).sort());
    await sub.close();
    await bus.close();
  });

  it('rejects bad options at construction', () => {
    const bus = new RecordingBus();
    const find: FindExpiring = async () => ({ items: [] });
    expect(() => createRefreshPlanner({ bus, findExpiring: 'nope' as never })).toThrow(/findExpiring/);
    expect(() => createRefreshPlanner({ bus, findExpiring: find, pageSize: 0 })).toThrow(/pageSize/);
    expect(() => createRefreshPlanner({ bus, findExpiring: find, maxPages: 1.5 })).toThrow(/maxPages/);
  });
});

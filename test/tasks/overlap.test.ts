import { describe, expect, it } from 'vitest';
import { SyncOverlapRunner, type OverlapOutcome, type SyncTask } from '../../src/index.js';
import { sameScope } from '../../src/tasks/overlap.js';

let n = 0;
function task(integrationId = 'int', tenantId = 't', scope: Partial<SyncTask> = {}): SyncTask {
  n += 1;
  const at = new Date(0).toISOString();
  return { id: `task-${n}`, integrationId, tenantId, trigger: 'webhook', status: 'pending', createdAt: at, updatedAt: at, ...scope };
}

/** A run function whose calls stay open until the test releases them. */
function gatedRun() {
  const calls: { task: SyncTask; release(): void; fail(e: unknown): void; signal: AbortSignal }[] = [];
  const run = (t: SyncTask, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ task: t, release: resolve, fail: reject, signal });
    });
  return { calls, run };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('SyncOverlapRunner', () => {
  it('coalesce: 1000 arrivals during a run cost one follow-up run', async () => {
    const { calls, run } = gatedRun();
    const runner = new SyncOverlapRunner({ run });
    const first = runner.submit(task());
    const followUp = task();
    const followUpDone = runner.submit(followUp);
    const merged: OverlapOutcome[] = [];
    for (let i = 0; i < 998; i += 1) merged.push(await runner.submit(task()));
    expect(merged.every((o) => o.outcome === 'coalesced' && o.into.id === followUp.id)).toBe(true);
    expect(calls).toHaveLength(1);
    calls[0]?.release();
    await expect(first).resolves.toMatchObject({ outcome: 'ran' });
    await tick();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.task.id).toBe(followUp.id);
    calls[1]?.release();
    await expect(followUpDone).resolves.toMatchObject({ outcome: 'ran' });
    expect(runner.activeKeys).toBe(0);
  });

  it('coalesce: widens the follow-up to a full sync when scopes differ, and says so once', async () => {
    const { calls, run } = gatedRun();
    const runner = new SyncOverlapRunner({ run });
    void runner.submit(task('i', 't', { entityType: 'ticket' }));
    const followUp = runner.submit(task('i', 't', { entityType: 'ticket', filters: { ids: ['1'] } }));
    const same = await runner.submit(task('i', 't', { entityType: 'ticket', filters: { ids: ['1'] } }));
    expect(same).toMatchObject({ outcome: 'coalesced', widened: false });
    const other = await runner.submit(task('i', 't', { entityType: 'contact' }));
    expect(other).toMatchObject({ outcome: 'coalesced', widened: true });
    const again = await runner.submit(task('i', 't', { entityType: 'deal' }));
    expect(again).toMatchObject({ outcome: 'coalesced', widened: false });
    calls[0]?.release();
    await tick();
    expect(calls[1]?.task.entityType).toBeUndefined();
    expect(calls[1]?.task.filters).toBeUndefined();
    calls[1]?.release();
    await followUp;
  });

  it('queue: runs every arrival, one at a time, in order', async () => {
    const order: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const runner = new SyncOverlapRunner({
      policy: 'queue',
      run: async (t) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        order.push(t.id);
        await tick();
        running -= 1;
      },
    });
    const tasks = Array.from({ length: 5 }, () => task());
    const outcomes = await Promise.all(tasks.map((t) => runner.submit(t)));
    expect(outcomes.every((o) => o.outcome === 'ran')).toBe(true);
    expect(order).toEqual(tasks.map((t) => t.id));
    expect(maxRunning).toBe(1);
  });

  it('skip: drops arrivals while a run is going, then runs again once free', async () => {
    const { calls, run } = gatedRun();
    const runner = new SyncOverlapRunner({ policy: 'skip', run });
    const first = task();
    const done = runner.submit(first);
    await expect(runner.submit(task())).resolves.toEqual({ outcome: 'skipped', runningTaskId: first.id });
    calls[0]?.release();
    await done;
    const later = runner.submit(task());
    expect(calls).toHaveLength(2);
    calls[1]?.release();
    await expect(later).resolves.toMatchObject({ outcome: 'ran' });
  });

  it('runs different integrations and tenants in parallel', async () => {
    const { calls, run } = gatedRun();
    const runner = new SyncOverlapRunner({ run });
    const all = [runner.submit(task('a', 't1')), runner.submit(task('a', 't2')), runner.submit(task('b', 't1'))];
    expect(calls).toHaveLength(3);
    expect(runner.isRunning('a', 't2')).toBe(true);
    for (const c of calls) c.release();
    await Promise.all(all);
    expect(runner.activeKeys).toBe(0);
  });

  it('rejects the run that failed, and still starts the follow-up', async () => {
    const { calls, run } = gatedRun();
    const runner = new SyncOverlapRunner({ run });
    const first = runner.submit(task());
    const second = runner.submit(task());
    calls[0]?.fail(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    await tick();
    expect(calls).toHaveLength(2);
    calls[1]?.release();
    await expect(second).resolves.toMatchObject({ outcome: 'ran' });
  });

  it('a waiter whose signal aborts leaves the line and never runs', async () => {
    const { calls, run } = gatedRun();
    const runner = new SyncOverlapRunner({ policy: 'queue', run });
    void runner.submit(task());
    const controller = new AbortController();
    const waiting = runner.submit(task(), controller.signal);
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
    calls[0]?.release();
    await tick();
    expect(calls).toHaveLength(1);
    expect(runner.activeKeys).toBe(0);
    await expect(runner.submit(task(), controller.signal)).rejects.toThrow('shutting down');
  });

  it('rejects an unknown policy with ERR_INVALID_OPTION', () => {
    expect(() => new SyncOverlapRunner({ policy: 'drop' as never, run: async () => {} })).toThrow(/overlap must be one of/);
  });

  it('sameScope ignores key order and compares nested filters', () => {
    expect(sameScope({ filters: { a: 1, b: { c: [1, 2] } } }, { filters: { b: { c: [1, 2] }, a: 1 } })).toBe(true);
    expect(sameScope({ filters: { a: 1 } }, { filters: { a: 2 } })).toBe(false);
    expect(sameScope({ entityType: 'x' }, {})).toBe(false);
    expect(sameScope({}, {})).toBe(true);
  });
});

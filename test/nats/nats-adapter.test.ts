import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetterRecord, DeliveryContext } from '../../src/bus/types.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createNatsBus } from '../../src/nats/index.js';
import {
  connectNats,
  createTestBus,
  delay,
  deleteStream,
  prefixFor,
  publishRaw,
  scheduledEvent,
  streamFor,
  uniqueNamespace,
  waitFor,
  withManager,
  type TestBus,
} from './nats-helpers.js';

const open: TestBus[] = [];
const namespaces: string[] = [];

async function member(namespace: string, options: Parameters<typeof createTestBus>[1] = {}): Promise<TestBus> {
  const made = await createTestBus(namespace, options);
  open.push(made);
  return made;
}

function namespace(label: string): string {
  const ns = uniqueNamespace(label);
  namespaces.push(ns);
  return ns;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map(({ bus }) => bus.close({ timeoutMs: 1000 })));
  await Promise.all(namespaces.splice(0).map((ns) => deleteStream(ns)));
});

describe('NATS bus: options', () => {
  it('rejects bad settings at construction with ERR_INVALID_OPTION', async () => {
    const nc = await connectNats();
    try {
      const js = jetstream(nc);
      const bad = [
        { stream: 'has.dot' },
        { stream: 'has space' },
        { subjectPrefix: 'a.*.b' },
        { subjectPrefix: 'a..b' },
        { ackWaitMs: 10 },
        { backoffMs: [] },
        { deliverPolicy: 'last' as 'all' },
        { progressIntervalMs: 60_000 },
      ];
      for (const extra of bad) {
        let caught: unknown;
        try {
          createNatsBus({ connection: nc, jetstream: js, ...extra });
        } catch (error) {
          caught = error;
        }
        expect(isIntegrationSyncError(caught, 'ERR_INVALID_OPTION'), JSON.stringify(extra)).toBe(true);
      }
      expect(() => createNatsBus({ connection: {} as never, jetstream: js })).toThrow(/connection/);
    } finally {
      await nc.close();
    }
  });

  it('refuses event types that cannot be subjects, on publish and on subscribe', async () => {
    const ns = namespace('subj');
    const { bus } = await member(ns);
    const event = { ...scheduledEvent(), type: 'has space' };
    await expect(bus.publish(event)).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    await expect(bus.publish({ ...scheduledEvent(), type: 'dead-letter.x' })).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    await expect(bus.subscribe({ group: 'g', types: ['a.>'], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});

describe('NATS bus: publish', () => {
  it('creates the stream, publishes to <prefix>.<type> and stores a re-published id once', async () => {
    const ns = namespace('dedupe');
    const { bus } = await member(ns);
    const event = scheduledEvent();
    await bus.publish(event);
    await bus.publish(event);
    await bus.publish({ ...scheduledEvent(), data: event.data });
    await withManager(async (jsm) => {
      const info = await jsm.streams.info(streamFor(ns));
      expect(info.config.subjects).toEqual([`${prefixFor(ns)}.>`]);
      expect(info.config.storage).toBe('file');
      expect(info.state.messages).toBe(2);
      const stored = await jsm.streams.getMessage(streamFor(ns), { seq: 1 });
      expect(stored?.subject).toBe(`${prefixFor(ns)}.${EventTypes.SyncScheduled}`);
      expect(stored?.json<{ id: string }>().id).toBe(event.id);
    });
  });

  it('rejects with ERR_PUBLISH_FAILED when no stream captures the subject and createStream is false', async () => {
    const ns = namespace('nostream');
    const { bus } = await member(ns, { createStream: false });
    const error = await bus.publish(scheduledEvent()).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED')).toBe(true);
    expect((error as Error).message).toContain(streamFor(ns));
  });

  it('rejects with the signal reason when the publish is aborted', async () => {
    const ns = namespace('abort');
    const { bus } = await member(ns);
    const reason = new Error('shutting down');
    await expect(bus.publish(scheduledEvent(), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('rejects with ERR_CLOSED after close, and close is idempotent', async () => {
    const ns = namespace('closed');
    const { bus, nc } = await member(ns);
    await Promise.all([bus.close(), bus.close()]);
    await bus.close();
    expect(nc.isClosed()).toBe(true);
    await expect(bus.publish(scheduledEvent())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(bus.subscribe({ group: 'g', types: [EventTypes.SyncScheduled], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});

describe('NATS bus: long handlers', () => {
  const group = 'long-work';

  /** Two members; the first delivery runs `runMs`; returns the attempts each member saw. */
  async function runLongHandler(ns: string, options: { progressIntervalMs?: number; callProgress: boolean }): Promise<number[]> {
    const seen: number[] = [];
    const handler = async (_e: unknown, ctx: DeliveryContext): Promise<void> => {
      seen.push(ctx.attempt);
      if (ctx.attempt > 1) return;
      for (let i = 0; i < 14; i += 1) {
        await delay(250);
        if (options.callProgress) ctx.progress();
      }
    };
    const busOptions = { ackWaitMs: 1000, ...(options.progressIntervalMs !== undefined ? { progressIntervalMs: options.progressIntervalMs } : {}) };
    const a = await member(ns, busOptions);
    const b = await member(ns, busOptions);
    await a.bus.subscribe({ group, types: [EventTypes.SyncScheduled], handler });
    await b.bus.subscribe({ group, types: [EventTypes.SyncScheduled], handler });
    await a.bus.publish(scheduledEvent());
    await waitFor(() => seen.length >= 1, 'first delivery');
    // 3.5 s of work against a 1 s ack wait, then a little longer for any redelivery to show.
    await delay(4500);
    return seen;
  }

  it('keeps the event with automatic working() while the handler runs past ack wait', async () => {
    const seen = await runLongHandler(namespace('auto'), { callProgress: false });
    expect(seen).toEqual([1]);
  });

  it('keeps the event when the handler calls progress() itself', async () => {
    const seen = await runLongHandler(namespace('manual'), { progressIntervalMs: 0, callProgress: true });
    expect(seen).toEqual([1]);
  });

  it('without progress, JetStream hands a slow event to another member after ack wait', async () => {
    const seen = await runLongHandler(namespace('silent'), { progressIntervalMs: 0, callProgress: false });
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen[1]).toBe(2);
  });
});

describe('NATS bus: failures and dead letters', () => {
  it('redelivers a failing handler with growing delivery counts, then dead-letters it to <prefix>.dead-letter.<group>', async () => {
    const ns = namespace('fail');
    const hooked: DeadLetterRecord[] = [];
    const { bus } = await member(ns, { maxAttempts: 3, retryBaseMs: 20, retryMaxMs: 100, onDeadLetter: (r) => void hooked.push(r) });
    const attempts: number[] = [];
    await bus.subscribe({
      group: 'fails',
      types: [EventTypes.SyncScheduled],
      handler: async (_e, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error('integration manager said no');
      },
    });
    const event = scheduledEvent();
    await bus.publish(event);
    await waitFor(() => hooked.length === 1, 'dead-letter');
    expect(attempts).toEqual([1, 2, 3]);

    const subject = bus.deadLetterSubject('fails');
    expect(subject).toBe(`${prefixFor(ns)}.dead-letter.fails`);
    await withManager(async (jsm) => {
      await waitFor(async () => (await jsm.streams.info(streamFor(ns))).state.messages === 2, 'dead letter stored');
      const stored = await jsm.streams.getMessage(streamFor(ns), { last_by_subj: subject });
      const record = stored?.json<DeadLetterRecord>();
      expect(record).toMatchObject({ reason: 'max_attempts', group: 'fails', eventId: event.id, attempts: 3, error: { message: 'integration manager said no' } });
      // Acked: nothing left pending on the group's consumer, and no fourth delivery after the ack wait.
      await delay(2500);
      expect(attempts).toEqual([1, 2, 3]);
      const consumers = await jsm.consumers.list(streamFor(ns)).next();
      expect(consumers).toHaveLength(1);
      expect(consumers[0]?.config.max_deliver).toBe(4);
      expect(consumers[0]?.num_ack_pending).toBe(0);
      expect(consumers[0]?.num_pending).toBe(0);
    });
  });

  it('dead-letters unparsable bytes at once, without calling the handler', async () => {
    const ns = namespace('garbage');
    const hooked: DeadLetterRecord[] = [];
    const { bus } = await member(ns, { onDeadLetter: (r) => void hooked.push(r) });
    let calls = 0;
    await bus.subscribe({ group: 'strict', types: [EventTypes.SyncScheduled], handler: async () => void (calls += 1) });
    await publishRaw(ns, EventTypes.SyncScheduled, new Uint8Array([0x7b, 0xff, 0x00]));
    await waitFor(() => hooked.length === 1, 'dead-letter of garbage');
    expect(hooked[0]).toMatchObject({ reason: 'unparsable', attempts: 1 });
    await withManager(async (jsm) => {
      await waitFor(async () => (await jsm.streams.info(streamFor(ns))).state.messages === 2, 'dead letter stored');
    });
    expect(calls).toBe(0);
  });
});

describe('NATS bus: exhausted deliveries', () => {
  it('dead-letters an event whose deliveries ran out without any outcome (max-deliveries advisory)', async () => {
    const ns = namespace('exhaust');
    const hooked: DeadLetterRecord[] = [];
    // One attempt, so max_deliver is 2; no progress, so the hanging first delivery times out.
    const { bus } = await member(ns, { maxAttempts: 1, ackWaitMs: 1000, progressIntervalMs: 0, onDeadLetter: (r) => void hooked.push(r) });
    const event = scheduledEvent();
    await bus.subscribe({
      group: 'stuck',
      types: [EventTypes.SyncScheduled],
      concurrency: 2,
      handler: (_e, ctx) => new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    });
    await bus.publish(event);
    await waitFor(() => hooked.length >= 1, 'dead letter from the advisory', 15_000);
    expect(hooked[0]).toMatchObject({ reason: 'max_attempts', group: 'stuck', eventId: event.id, type: EventTypes.SyncScheduled, attempts: 2, error: { name: 'MaxDeliveries' } });
    await withManager(async (jsm) => {
      const stored = await jsm.streams.getMessage(streamFor(ns), { last_by_subj: bus.deadLetterSubject('stuck') });
      expect(stored?.json<DeadLetterRecord>()).toMatchObject({ reason: 'max_attempts', eventId: event.id });
      expect(JSON.parse(stored?.json<DeadLetterRecord>().payload ?? '{}')).toMatchObject({ id: event.id });
    });
  });
});

describe('NATS bus: exhausted deliveries of a large event', () => {
  it('stores the advisory dead letter within maxPayloadBytes even when JSON escaping doubles the payload', async () => {
    const ns = namespace('exhaust-big');
    const hooked: DeadLetterRecord[] = [];
    // 900 000 is under the server's 1 MiB max_payload; the record of an 800 kB payload of quotes
    // is 1.6 MB as plain JSON.stringify would write it, which the server refused.
    const { bus } = await member(ns, { maxAttempts: 1, ackWaitMs: 1000, progressIntervalMs: 0, maxPayloadBytes: 900_000, onDeadLetter: (r) => void hooked.push(r) });
    const base = scheduledEvent();
    const event = { ...base, data: { ...(base.data as Record<string, unknown>), note: '"'.repeat(400_000) } };
    await bus.subscribe({
      group: 'stuck',
      types: [EventTypes.SyncScheduled],
      concurrency: 2,
      handler: (_e, ctx) => new Promise<void>((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    });
    await bus.publish(event);
    await waitFor(() => hooked.length >= 1, 'dead letter from the advisory', 20_000);
    await withManager(async (jsm) => {
      const stored = await jsm.streams.getMessage(streamFor(ns), { last_by_subj: bus.deadLetterSubject('stuck') });
      const record = stored?.json<DeadLetterRecord>();
      expect(record).toMatchObject({ reason: 'max_attempts', eventId: event.id, error: { name: 'MaxDeliveries' } });
      expect(stored?.data.length).toBeLessThanOrEqual(900_000);
      expect(record?.payload?.startsWith('{')).toBe(true);
    });
  }, 40_000);
});

describe('NATS bus: close', () => {
  it('hands an unfinished event back at the close deadline, so another member gets it before the ack wait', async () => {
    const ns = namespace('handback');
    const a = await member(ns, { ackWaitMs: 30_000 });
    const b = await member(ns, { ackWaitMs: 30_000 });
    let aborted = false;
    const byB: number[] = [];
    await a.bus.subscribe({
      group: 'hb',
      types: [EventTypes.SyncScheduled],
      handler: (_e, ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
    });
    await a.bus.publish(scheduledEvent());
    await delay(300);
    await b.bus.subscribe({ group: 'hb', types: [EventTypes.SyncScheduled], handler: async (_e, ctx) => void byB.push(ctx.attempt) });
    await delay(300);
    expect(byB).toEqual([]);
    await a.bus.close({ timeoutMs: 200 });
    expect(aborted).toBe(true);
    await waitFor(() => byB.length === 1, 'redelivery to member b', 10_000);
    expect(byB).toEqual([2]);
  });

  it('ends its pull requests on close(): the connection stays open, nothing more is taken', async () => {
    const ns = namespace('stop');
    const { bus, nc } = await member(ns, { closeConnection: false });
    let calls = 0;
    await bus.subscribe({ group: 'stopper', types: [EventTypes.SyncScheduled], concurrency: 3, handler: async () => void (calls += 1) });
    await withManager(async (jsm) => {
      const waiting = async (): Promise<number> => ((await jsm.consumers.list(streamFor(ns)).next())[0]?.num_waiting ?? -1);
      await waitFor(async () => (await waiting()) === 3, 'three open pull requests');
      await bus.close();
      expect(nc.isClosed()).toBe(false);
      const other = await member(ns);
      await other.bus.publish(scheduledEvent());
      await delay(1000);
      expect(calls).toBe(0);
      const [info] = await jsm.consumers.list(streamFor(ns)).next();
      expect(info?.num_pending).toBe(1);
      expect(info?.num_ack_pending).toBe(0);
    });
    await nc.close();
  });

  it('survives its connection closing underneath and still closes cleanly', async () => {
    const ns = namespace('underneath');
    const { bus, nc } = await member(ns);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = 0;
    await bus.subscribe({
      group: 'g',
      types: [EventTypes.SyncScheduled],
      handler: async () => {
        started += 1;
        await gate;
      },
    });
    await bus.publish(scheduledEvent());
    await waitFor(() => started === 1, 'handler started');
    await nc.close();
    // The handler finishes after the connection is gone: its ack fails, quietly (no unhandled rejection).
    release();
    await delay(300);
    await expect(bus.subscribe({ group: 'late', types: [EventTypes.SyncScheduled], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(bus.publish(scheduledEvent())).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    const closing = bus.close({ timeoutMs: 20_000 });
    await expect(Promise.race([closing.then(() => 'closed'), delay(5000).then(() => 'hung')])).resolves.toBe('closed');
    await expect(bus.publish(scheduledEvent())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('lets the process exit by itself after close() (no dangling pull loop, timer or socket)', async () => {
    const ns = namespace('exit');
    const script = fileURLToPath(new URL('./fixtures/close-exit.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
    const child = spawn(tsx, [script, streamFor(ns), prefixFor(ns)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const killer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(-1);
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(killer);
        resolve(c);
      });
    });
    expect(err).toBe('');
    expect(out).toContain('handled 1');
    expect(out).toContain('closed');
    expect(code).toBe(0);
  }, 30_000);
});

describe('NATS bus: concurrency', () => {
  it('runs up to `concurrency` handlers at once across the types of a subscription, never more', async () => {
    const ns = namespace('conc');
    const { bus } = await member(ns);
    let running = 0;
    let peak = 0;
    const handled = new Set<string>();
    await bus.subscribe({
      group: 'parallel',
      types: [EventTypes.SyncScheduled, EventTypes.SyncCheckDue],
      concurrency: 3,
      handler: async (event) => {
        running += 1;
        peak = Math.max(peak, running);
        await delay(300);
        running -= 1;
        handled.add(event.id);
      },
    });
    const events = [
      ...Array.from({ length: 5 }, () => scheduledEvent()),
      ...Array.from({ length: 5 }, () => ({ ...scheduledEvent(), type: EventTypes.SyncCheckDue, data: { timestamp: new Date().toISOString() } })),
    ];
    for (const event of events) await bus.publish(event);
    await waitFor(() => handled.size === events.length, 'all ten events', 20_000);
    expect(peak).toBe(3);
  });
});

describe('NATS bus: recovery', () => {
  it('brings back a deleted stream and its consumers, and the live subscription goes on', async () => {
    const ns = namespace('recreate');
    const warnings: string[] = [];
    const logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (_o: Record<string, unknown>, m?: string) => void warnings.push(m ?? '') };
    const { bus } = await member(ns, { logger });
    const handled: string[] = [];
    await bus.subscribe({ group: 'phoenix', types: [EventTypes.SyncScheduled], handler: async (e) => void handled.push(e.id) });
    await withManager((jsm) => jsm.streams.delete(streamFor(ns)));
    const event = scheduledEvent();
    await waitFor(() => bus.publish(event).then(() => true, () => false), 'a publish that recreates the stream', 15_000);
    await waitFor(() => handled.includes(event.id), 'the event on the recovered subscription', 20_000);
    expect(warnings).toContain('nats pull failed; retrying');
  }, 40_000);
});

describe('NATS bus: durable consumers', () => {
  it('shares one durable consumer per group and type across members, and a redeploy updates its settings', async () => {
    const ns = namespace('redeploy');
    const first = await member(ns, { ackWaitMs: 2000, maxAttempts: 5 });
    const second = await member(ns, { ackWaitMs: 3000, maxAttempts: 7 });
    const types = [EventTypes.SyncScheduled, EventTypes.WebhookReceived];
    await first.bus.subscribe({ group: 'shared group/1', types, handler: async () => {} });
    await withManager(async (jsm) => {
      const before = await jsm.consumers.list(streamFor(ns)).next();
      expect(before).toHaveLength(2);
      expect(before.map((c) => c.config.filter_subject).sort()).toEqual(types.map((t) => `${prefixFor(ns)}.${t}`).sort());
      expect(before.every((c) => c.config.ack_wait === 2000 * 1e6 && c.config.max_deliver === 6 && c.config.ack_policy === 'explicit')).toBe(true);
      await second.bus.subscribe({ group: 'shared group/1', types, handler: async () => {} });
      const after = await jsm.consumers.list(streamFor(ns)).next();
      expect(after.map((c) => c.name).sort()).toEqual(before.map((c) => c.name).sort());
      expect(after.every((c) => c.config.ack_wait === 3000 * 1e6 && c.config.max_deliver === 8)).toBe(true);
    });
  });
});

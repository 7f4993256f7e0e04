/**
 * Adversarial tests of the NATS JetStream bus on the real server: bad names and payloads, the
 * consumer or stream deleted under a running handler, the connection closed mid-handler, close()
 * in every phase, 2 members x 2000 events with random failures, secrets in logs.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusOptions } from '../../src/bus/delivery.js';
import type { DeadLetterRecord } from '../../src/bus/types.js';
import { isIntegrationSyncError, NonRetryableError } from '../../src/core/errors.js';
import { createNatsBus, type NatsBusOptions, type NatsEventBus } from '../../src/nats/index.js';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import { CHECK_DUE, checkDue, checkDueWithSecret, delay, recordingAudit, recordingLogger, runExitChild, suffix, trapUnhandled, waitFor, deleteKeysAndDisconnect, expectHandledOnceOrDeadLettered } from './adapter-helpers.js';

const unhandled = trapUnhandled();
const connections = new Set<NatsConnection>();
const streams = new Set<string>();
const buses = new Set<NatsEventBus>();
let admin: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  admin = await connect({ servers: '127.0.0.1:4222' });
  jsm = await jetstreamManager(admin);
});

afterAll(async () => {
  await Promise.all([...buses].map((bus) => bus.close({ timeoutMs: 0 })));
  for (const stream of streams) await jsm.streams.delete(stream).catch(() => {});
  for (const nc of connections) await nc.close().catch(() => {});
  await admin.close();
  unhandled.dispose();
  expect(unhandled.list).toEqual([]);
});

function names(label: string): { stream: string; subjectPrefix: string } {
  const id = `${label}_${suffix()}`;
  streams.add(`BRK_${id}`);
  return { stream: `BRK_${id}`, subjectPrefix: `brk.${id}` };
}

async function bus(ns: { stream: string; subjectPrefix: string }, options: Partial<NatsBusOptions> & BusOptions = {}): Promise<{ bus: NatsEventBus; nc: NatsConnection }> {
  const nc = await connect({ servers: '127.0.0.1:4222' });
  connections.add(nc);
  const made = createNatsBus({ connection: nc, jetstream: jetstream(nc), manager: await jetstreamManager(nc), ackWaitMs: 2_000, duplicateWindowMs: 60_000, ...ns, ...options });
  buses.add(made);
  return { bus: made, nc };
}

async function deadLetters(ns: { stream: string; subjectPrefix: string }): Promise<DeadLetterRecord[]> {
  const records: DeadLetterRecord[] = [];
  const info = await jsm.streams.info(ns.stream).catch(() => undefined);
  if (!info) return records;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq += 1) {
    const msg = await jsm.streams.getMessage(ns.stream, { seq }).catch(() => null);
    if (msg && msg.subject.startsWith(`${ns.subjectPrefix}.dead-letter.`)) records.push(JSON.parse(new TextDecoder().decode(msg.data)) as DeadLetterRecord);
  }
  return records;
}

describe('NATS bus: bad options and names', () => {
  it('rejects malformed subscribe options with ERR_INVALID_OPTION, not a bare TypeError', async () => {
    const { bus: b } = await bus(names('opts'));
    const handler = async () => {};
    for (const bad of [
      { group: '   ', types: [CHECK_DUE], handler },
      { group: 'g', types: [], handler },
      { group: 'g', types: [CHECK_DUE], handler: 42 },
      { group: 'g', types: ['a.*'], handler },
      { group: 'g', types: ['a.>'], handler },
      { group: 'g', types: ['with space'], handler },
      { group: 'g', types: ['dead-letter.g'], handler },
    ]) {
      const error = await b.subscribe(bad as never).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION'), String(error)).toBe(true);
    }
    for (const bad of [{ stream: 'a.b' }, { stream: 'a b' }, { stream: 'x'.repeat(1000) }, { subjectPrefix: 'a.*' }, { subjectPrefix: 'a.>' }, { subjectPrefix: 'a b' }, { subjectPrefix: 'a..b' }]) {
      expect(() => createNatsBus({ connection: admin, jetstream: jetstream(admin), manager: jsm, ...bad })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    }
  });

  it('works end to end with groups made of spaces, dots, wildcards, unicode and 1000 characters, kept apart', async () => {
    const ns = names('names');
    const { bus: b } = await bus(ns);
    const groups = ['with space', 'a.b', '*', '>', '#', 'ünïcødé-☃', 'x'.repeat(1000), 'x'.repeat(999) + 'y'];
    const seen = new Map<string, string[]>();
    for (const group of groups) {
      seen.set(group, []);
      await b.subscribe({ group, types: [CHECK_DUE], handler: async (e) => void seen.get(group)!.push(e.id) });
    }
    // Dead letters carry the group in their Nats-Msg-Id header, which cannot hold CR/LF or 64 KiB.
    const dlGroups = ['dl *>', 'dl\r\nX-Injected: 1', 'd'.repeat(70_000)];
    for (const group of dlGroups) await b.subscribe({ group, types: [CHECK_DUE], handler: async () => { throw new NonRetryableError('no'); } });
    const event = checkDue();
    await b.publish(event);
    await waitFor('every group got it once', () => groups.every((g) => seen.get(g)!.length === 1));
    await waitFor('dead letters of oddly named groups', async () => {
      const records = await deadLetters(ns);
      return dlGroups.every((g) => records.some((r) => r.group === g && r.eventId === event.id));
    });
    await delay(300);
    for (const group of groups) expect(seen.get(group)).toEqual([event.id]);
  });
});

describe('NATS bus: hostile messages', () => {
  it('dead-letters non-UTF-8, empty, oversized, non-event JSON and wrong-type messages, and keeps consuming', async () => {
    const ns = names('raw');
    const { bus: b } = await bus(ns, { retryBaseMs: 10, retryMaxMs: 20 });
    const seen: string[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    const js = jetstream(admin);
    const subject = `${ns.subjectPrefix}.${CHECK_DUE}`;
    await js.publish(subject, new Uint8Array([0xff, 0xfe, 0x00, 0xc3, 0x28]));
    await js.publish(subject, new Uint8Array(0));
    await js.publish(subject, new Uint8Array(900 * 1024).fill(1));
    await js.publish(subject, JSON.stringify({ hello: 'world' }));
    await js.publish(subject, 'null');
    await js.publish(subject, JSON.stringify({ ...checkDue(), type: 'integration.token.refreshed' }));
    const good = checkDue();
    await b.publish(good);
    await waitFor('the good event', () => seen.includes(good.id));
    await waitFor('6 dead letters', async () => (await deadLetters(ns)).length === 6);
    expect(seen).toEqual([good.id]);
  });
});

describe('NATS bus: things deleted or closed underneath', () => {
  it('a consumer deleted while its handler runs: the event is still handled, exactly once, and later ones too', async () => {
    const ns = names('delcons');
    const { bus: b } = await bus(ns, { retryBaseMs: 10, retryMaxMs: 50 });
    const handled = new Map<string, number>();
    let gate: (() => void) | undefined;
    await b.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async (e) => {
        if (gate === undefined && handled.size === 0) await new Promise<void>((resolve) => (gate = resolve));
        handled.set(e.id, (handled.get(e.id) ?? 0) + 1);
      },
    });
    const first = checkDue();
    await b.publish(first);
    await waitFor('handler running', () => gate !== undefined);
    for await (const c of jsm.consumers.list(ns.stream)) await jsm.consumers.delete(ns.stream, c.name);
    gate!();
    const later = Array.from({ length: 5 }, () => checkDue());
    for (const e of later) await b.publish(e);
    // Well inside the 30 s pull expiry: the lost ack makes the loop check its consumer at once.
    await waitFor('later events after the consumer came back', () => later.every((e) => handled.has(e.id)), 15_000);
    await delay(500);
    for (const [id, n] of handled) expect(n, id).toBe(1);
    expect(handled.get(first.id)).toBe(1);
  }, 45_000);

  it('the stream deleted while a handler runs: the subscription recreates it and takes new events', async () => {
    const ns = names('delstream');
    const { bus: b } = await bus(ns);
    const seen: string[] = [];
    let release: (() => void) | undefined;
    await b.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async (e) => {
        if (seen.length === 0) await new Promise<void>((resolve) => (release = resolve));
        seen.push(e.id);
      },
    });
    await b.publish(checkDue());
    await waitFor('handler running', () => release !== undefined);
    await jsm.streams.delete(ns.stream);
    release!();
    const after = checkDue();
    await waitFor('publish after the stream came back', () => b.publish(after).then(() => true, () => false), 15_000);
    await waitFor('event after the stream was recreated', () => seen.includes(after.id), 15_000);
  }, 45_000);

  it('the connection closed mid-handler: close() resolves promptly, nothing unhandled, publish says ERR_PUBLISH_FAILED or ERR_CLOSED', async () => {
    const ns = names('connclose');
    const { bus: b, nc } = await bus(ns);
    let running = false;
    await b.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async (_e, ctx) => {
        running = true;
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        ctx.progress();
      },
    });
    await b.publish(checkDue());
    await waitFor('handler running', () => running);
    await nc.close();
    const error = await b.publish(checkDue()).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED') || isIntegrationSyncError(error, 'ERR_CLOSED')).toBe(true);
    const started = Date.now();
    await b.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    await delay(3_200);
  });
});

describe('NATS bus: connection dropped and re-established under load', () => {
  it('loses nothing when its connection reconnects mid-publish, mid-handler and mid-ack', async () => {
    const ns = names('reconnect');
    const nc = await connect({ servers: '127.0.0.1:4222', reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    connections.add(nc);
    const b = createNatsBus({ connection: nc, jetstream: jetstream(nc), manager: await jetstreamManager(nc), ackWaitMs: 2_000, retryBaseMs: 20, retryMaxMs: 100, maxAttempts: 50, pullExpiresMs: 2_000, ...ns });
    buses.add(b);
    const handled = new Map<string, number>();
    await b.subscribe({ group: 'g', types: [CHECK_DUE], concurrency: 8, handler: async (e) => { await delay(Math.random() * 5); handled.set(e.id, (handled.get(e.id) ?? 0) + 1); } });
    let dropping = true;
    let drops = 0;
    const dropper = (async () => {
      while (dropping || drops < 3) {
        await delay(150 + Math.random() * 150);
        await nc.reconnect().then(() => (drops += 1), () => {});
      }
    })();
    const ids: string[] = [];
    for (let i = 0; i < 300; i += 1) {
      const event = checkDue();
      for (let tries = 0; ; tries += 1) {
        try {
          await b.publish(event);
          break;
        } catch (error) {
          if (tries > 50) throw error;
          await delay(30);
        }
      }
      ids.push(event.id);
    }
    const more = checkDue();
    await b.publish(more);
    ids.push(more.id);
    dropping = false;
    await dropper;
    expect(drops).toBeGreaterThan(2);
    await waitFor('every event handled', () => ids.every((id) => handled.has(id)), 40_000);
    // At-least-once: an ack lost in a reconnect may repeat one; the in-memory store skips most.
    expect([...handled.values()].filter((n) => n > 1).length).toBeLessThan(ids.length / 10);
  }, 60_000);
});

describe('NATS bus: close in every phase', () => {
  it('close while subscribe is pending, twice at once, with naks pending and a burst in flight: no hang, ERR_CLOSED after', async () => {
    const ns = names('close');
    const { bus: b, nc } = await bus(ns, { retryBaseMs: 60_000, retryMaxMs: 60_000 });
    const attempts: number[] = [];
    await b.subscribe({ group: 'fail', types: [CHECK_DUE], concurrency: 4, handler: async (_e, ctx) => { attempts.push(ctx.attempt); throw new Error('boom'); } });
    await Promise.all(Array.from({ length: 10 }, () => b.publish(checkDue())));
    await waitFor('failures', () => attempts.length >= 4);
    const pending = b.subscribe({ group: 'late', types: [CHECK_DUE, 'integration.token.refreshed'], handler: async () => {} });
    const burst = Array.from({ length: 50 }, () => b.publish(checkDue()).then(() => 'ok', (e: { code?: string }) => e.code));
    const started = Date.now();
    await Promise.all([b.close(), b.close({ timeoutMs: 0 })]);
    expect(Date.now() - started).toBeLessThan(15_000);
    const late = await pending.then((s) => s.close().then(() => 'subscribed'), (e: { code?: string }) => e.code);
    expect(['subscribed', 'ERR_CLOSED']).toContain(late);
    for (const outcome of await Promise.all(burst)) expect(['ok', 'ERR_CLOSED']).toContain(outcome);
    await expect(b.publish(checkDue())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(b.subscribe({ group: 'x', types: [CHECK_DUE], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(nc.isClosed()).toBe(false);
  });

  it('a child process that used the bus in every phase exits by itself after close()', async () => {
    const stream = `BRK_exit_${suffix()}`;
    streams.add(stream);
    const { code, out } = await runExitChild('nats', [stream]);
    expect(out).toContain('closed');
    expect(out).not.toContain('UNHANDLED');
    expect(code).toBe(0);
  }, 40_000);
});

describe('NATS bus: two members, 2000 events, random failures', () => {
  it('ends every event handled exactly once or dead-lettered, none lost (shared Redis idempotency store)', async () => {
    const ns = names('load');
    const redis = new Redis('redis://127.0.0.1:6379');
    const idPrefix = `brk:nats:load:${suffix()}`;
    const store = createRedisIdempotencyStore({ client: redis, prefix: idPrefix });
    try {
      const members = [await bus(ns, { idempotency: store, retryBaseMs: 10, retryMaxMs: 100, maxAttempts: 3 }), await bus(ns, { idempotency: store, retryBaseMs: 10, retryMaxMs: 100, maxAttempts: 3 })];
      const successes = new Map<string, number>();
      for (const { bus: b } of members) {
        await b.subscribe({
          group: 'g',
          types: [CHECK_DUE],
          concurrency: 16,
          handler: async (e) => {
            await delay(Math.random() * 4);
            if (Math.random() < 0.1) throw new Error('random failure');
            successes.set(e.id, (successes.get(e.id) ?? 0) + 1);
          },
        });
      }
      const ids: string[] = [];
      for (let i = 0; i < 2000; i += 100) {
        const batch = Array.from({ length: 100 }, () => checkDue());
        ids.push(...batch.map((e) => e.id));
        await Promise.all(batch.map((e, j) => members[j % 2]!.bus.publish(e)));
      }
      let dead = new Set<string | undefined>();
      await waitFor(
        'every event handled or dead-lettered',
        async () => {
          if (!ids.every((id) => successes.has(id) || dead.has(id))) dead = new Set((await deadLetters(ns)).map((r) => r.eventId));
          return ids.every((id) => successes.has(id) || dead.has(id));
        },
        50_000,
      );
      expectHandledOnceOrDeadLettered(ids, successes, dead);
    } finally {
      await deleteKeysAndDisconnect(redis, idPrefix);
    }
  }, 60_000);
});

describe('NATS bus: secrets', () => {
  it('never echoes event data into logs or audit records of a dead-lettered event', async () => {
    const ns = names('secret');
    const logger = recordingLogger();
    const audit = recordingAudit();
    const { bus: b } = await bus(ns, { logger, audit, retryBaseMs: 5, retryMaxMs: 10, maxAttempts: 2 });
    const canary = `canary-${suffix()}`;
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => { throw new Error('downstream refused'); } });
    const event = checkDueWithSecret(canary);
    await b.publish(event);
    await waitFor('dead letter', async () => (await deadLetters(ns)).some((r) => r.eventId === event.id));
    expect(JSON.stringify(await deadLetters(ns))).toContain(canary);
    expect(JSON.stringify(logger.lines)).not.toContain(canary);
    expect(JSON.stringify(audit.records)).not.toContain(canary);
  });
});

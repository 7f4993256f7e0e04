/**
 * Adversarial tests of the RabbitMQ bus on the real broker: names at and past AMQP's limits and
 * topic wildcards, a hostile message whose dead-letter record would exceed the broker's message
 * size, publishes amqplib cannot encode, the socket destroyed under load, close() in every phase,
 * 2 members x 2000 events with random failures, secrets in logs and errors.
 */
import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAmqpBus, type AmqpBus, type AmqpBusOptions } from '../../src/amqp/index.js';
import type { DeadLetterRecord } from '../../src/bus/types.js';
import { isIntegrationSyncError, NonRetryableError } from '../../src/core/errors.js';
import { createRedisIdempotencyStore } from '../../src/redis/index.js';
import { CHECK_DUE, checkDue, checkDueWithSecret, delay, recordingAudit, recordingLogger, runExitChild, suffix, trapUnhandled, waitFor, deleteKeysAndDisconnect, expectHandledOnceOrDeadLettered } from './adapter-helpers.js';

const URL = 'amqp://guest:guest@127.0.0.1:5672';
type Connection = Awaited<ReturnType<typeof amqplib.connect>>;
const unhandled = trapUnhandled();
const created: Array<{ bus: AmqpBus; groups: Set<string> }> = [];
const connections = new Set<Connection>();
let admin: Connection;

beforeAll(async () => {
  admin = await amqplib.connect(URL);
  admin.on('error', () => {});
});

afterAll(async () => {
  for (const { bus } of created) await bus.close({ timeoutMs: 0 });
  for (const { bus, groups } of created) {
    const channel = await admin.createChannel();
    channel.on('error', () => {});
    for (const group of groups) {
      const t = bus.topology(group);
      for (const q of [t.queue, t.retryQueue, t.deadLetterQueue]) await channel.deleteQueue(q).catch(() => {});
    }
    await channel.deleteExchange(bus.exchange).catch(() => {});
    await channel.deleteExchange(`${bus.exchange}.dlx`).catch(() => {});
    await channel.close().catch(() => {});
  }
  for (const c of connections) await c.close().catch(() => {});
  await admin.close();
  unhandled.dispose();
  expect(unhandled.list).toEqual([]);
});

async function connection(): Promise<Connection> {
  const c = await amqplib.connect(URL);
  c.on('error', () => {});
  connections.add(c);
  return c;
}

function bus(options: Partial<AmqpBusOptions>, groups: string[]): AmqpBus {
  const b = createAmqpBus({ exchange: `brk-amqp-${suffix()}`, ...options } as AmqpBusOptions);
  created.push({ bus: b, groups: new Set(groups) });
  return b;
}

/**
 * Takes every record from a dead-letter queue; none while the queue does not exist. On a
 * connection of its own: a basic.get racing a quorum queue being re-declared can make RabbitMQ
 * close the whole connection (541 noproc).
 */
async function drain(queue: string): Promise<DeadLetterRecord[]> {
  const records: DeadLetterRecord[] = [];
  const c = await amqplib.connect(URL);
  c.on('error', () => {});
  try {
    const channel = await c.createChannel();
    channel.on('error', () => {});
    for (;;) {
      const msg = await channel.get(queue, { noAck: true });
      if (msg === false) break;
      records.push(JSON.parse(msg.content.toString()) as DeadLetterRecord);
    }
  } catch {
    // Missing queue (or the race above): whatever was taken so far.
  } finally {
    await c.close().catch(() => {});
  }
  return records;
}

function openChannels(c: Connection): number {
  // amqplib keeps one slot per open channel (slot 0 is the connection's own).
  return (c as unknown as { connection: { channels: unknown[] } }).connection.channels.filter(Boolean).length;
}

describe('AMQP bus: names and wildcards', () => {
  it('refuses names past 255 bytes and wildcard event types with ERR_INVALID_OPTION instead of a broker error', async () => {
    const c = await connection();
    expect(() => createAmqpBus({ connection: c, exchange: 'e'.repeat(300) })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createAmqpBus({ connection: c, exchange: 'ok', queuePrefix: 'q'.repeat(250) })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    const b = bus({ connection: c }, ['g']);
    const handler = async () => {};
    for (const bad of [
      { group: 'g'.repeat(300), types: [CHECK_DUE], handler },
      { group: 'g', types: ['t'.repeat(300)], handler },
      { group: 'g', types: ['#'], handler },
      { group: 'g', types: ['integration.*.check-due'], handler },
      { group: 'g', types: ['integration.#'], handler },
      { group: '  ', types: [CHECK_DUE], handler },
    ]) {
      const error = await b.subscribe(bad).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION'), String(error)).toBe(true);
    }
    const long = { ...checkDue(), type: 't'.repeat(300) };
    await expect(b.publish(long)).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    // The bus still works after all that.
    const seen: string[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    const event = checkDue();
    await b.publish(event);
    await waitFor('delivery', () => seen.includes(event.id));
  });

  it('does not leave a channel behind for each publish amqplib cannot encode', async () => {
    const c = await connection();
    const b = bus({ connection: c }, ['g']);
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => {} });
    await b.publish(checkDue());
    const before = openChannels(c);
    for (let i = 0; i < 10; i += 1) {
      // A message id over 255 bytes cannot be encoded: amqplib throws while the channel is open.
      await expect(b.publish(checkDue('i'.repeat(300)))).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    }
    await b.publish(checkDue());
    await waitFor('leaked channels closed', () => openChannels(c) <= before);
    await b.close();
    await waitFor('all bus channels closed', () => openChannels(c) === 1);
  });

  it('works end to end with groups made of spaces, dots, wildcard characters and unicode', async () => {
    const c = await connection();
    const groups = ['with space', 'a.b.c', '*', '#', 'ünïcødé-☃', 'x'.repeat(200)];
    const b = bus({ connection: c }, [...groups, 'dl #']);
    const seen = new Map<string, string[]>();
    for (const group of groups) {
      seen.set(group, []);
      await b.subscribe({ group, types: [CHECK_DUE], handler: async (e) => void seen.get(group)!.push(e.id) });
    }
    await b.subscribe({ group: 'dl #', types: [CHECK_DUE], handler: async () => { throw new NonRetryableError('no'); } });
    const event = checkDue();
    await b.publish(event);
    await waitFor('every group once', () => groups.every((g) => seen.get(g)!.length === 1));
    const records = await waitFor('dead letter', async () => {
      const r = await drain(b.topology('dl #').deadLetterQueue);
      return r.length > 0 ? r : undefined;
    });
    expect(records[0]).toMatchObject({ group: 'dl #', eventId: event.id, reason: 'non_retryable' });
  });
});

describe('AMQP bus: hostile messages', () => {
  it('dead-letters a message whose record would exceed the broker message size once, instead of requeueing it forever', async () => {
    const c = await connection();
    const b = bus({ connection: c }, ['g']);
    const seen: string[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    const channel = await admin.createConfirmChannel();
    // 22 MB of control bytes: under RabbitMQ's 128 MB limit, but JSON-escaped into a record it is 132 MB.
    channel.publish(b.exchange, CHECK_DUE, Buffer.alloc(22 * 1024 * 1024, 1));
    for (const body of [
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.alloc(0),
      Buffer.from('{"hello":"world"}'),
      Buffer.from('null'),
      Buffer.from(JSON.stringify({ ...checkDue(), type: 'integration.token.refreshed' })),
      // Ids and types past AMQP's 255-byte properties: the record must still be stored.
      Buffer.from(JSON.stringify({ ...checkDue(), id: 'i'.repeat(300), data: 'not an object' })),
      Buffer.from(JSON.stringify({ ...checkDue(), type: 't'.repeat(300) })),
    ]) {
      channel.publish(b.exchange, CHECK_DUE, body);
    }
    await channel.waitForConfirms();
    await channel.close();
    const good = checkDue();
    await b.publish(good);
    await waitFor('the good event behind the junk', () => seen.includes(good.id), 30_000);
    const records: DeadLetterRecord[] = [];
    await waitFor('8 dead letters', async () => {
      records.push(...(await drain(b.topology('g').deadLetterQueue)));
      return records.length >= 8;
    });
    await delay(300);
    records.push(...(await drain(b.topology('g').deadLetterQueue)));
    expect(records).toHaveLength(8);
    const big = records.find((r) => r.issues?.some((i) => i.message.includes('23068672 bytes')));
    expect(big?.payload?.length).toBeLessThan(10_000);
  }, 60_000);
});

describe('AMQP bus: its own queues deleted underneath', () => {
  for (const queueType of ['classic', 'quorum'] as const) {
    it(`does not spin the handler when the retry queue is gone, and heals the topology (${queueType})`, async () => {
      const c = await connection();
      const b = bus({ connection: c, queueType, retryBaseMs: 50, retryMaxMs: 100, maxAttempts: 3 }, ['g']);
      let calls = 0;
      await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => { calls += 1; throw new Error('fail'); } });
      const channel = await admin.createChannel();
      await channel.deleteQueue(b.topology('g').retryQueue);
      await channel.close();
      const event = checkDue();
      await b.publish(event);
      const records = await waitFor('dead letter after maxAttempts', async () => {
        const r = await drain(b.topology('g').deadLetterQueue);
        return r.length > 0 ? r : undefined;
      });
      expect(records[0]).toMatchObject({ eventId: event.id, reason: 'max_attempts' });
      await delay(500);
      // Before, a classic queue requeued it at full speed: thousands of calls a second, never dead-lettered.
      expect(calls).toBeLessThanOrEqual(4);
    });
  }

  it('stores the dead letter once the dead-letter exchange and queue it deleted are back', async () => {
    const c = await connection();
    const b = bus({ connection: c, retryBaseMs: 50, retryMaxMs: 100 }, ['g']);
    let calls = 0;
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => { calls += 1; throw new NonRetryableError('never'); } });
    const channel = await admin.createChannel();
    await channel.deleteQueue(b.topology('g').deadLetterQueue);
    await channel.deleteExchange(b.topology('g').deadLetterExchange);
    await channel.close();
    const event = checkDue();
    await b.publish(event);
    const records = await waitFor('dead letter stored', async () => {
      const r = await drain(b.topology('g').deadLetterQueue);
      return r.length > 0 ? r : undefined;
    });
    expect(records[0]).toMatchObject({ eventId: event.id, reason: 'non_retryable' });
    expect(calls).toBeLessThanOrEqual(3);
  });
});

describe('AMQP bus: close in every phase', () => {
  it('close while subscribe is pending, twice at once, with retries pending and a burst in flight: no hang, ERR_CLOSED after', async () => {
    const c = await connection();
    const b = bus({ connection: c, retryBaseMs: 60_000, retryMaxMs: 60_000 }, ['fail', 'late']);
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
    for (const outcome of await Promise.all(burst)) expect(['ok', 'ERR_CLOSED', 'ERR_PUBLISH_FAILED']).toContain(outcome);
    await expect(b.publish(checkDue())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(b.subscribe({ group: 'x', types: [CHECK_DUE], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await waitFor('the host connection keeps only its own channel', () => openChannels(c) === 1);
  });

  it('close() while connect() has not settled: pending publish and subscribe reject ERR_CLOSED, a late connection is closed', async () => {
    // A broker host that drops packets: the TCP connect hangs for minutes.
    const never = createAmqpBus({ connect: () => new Promise<never>(() => {}), exchange: `brk-amqp-never-${suffix()}` });
    const publishing = never.publish(checkDue()).then(() => 'published', (e: { code?: string }) => e.code);
    const subscribing = never.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => {} }).then(() => 'subscribed', (e: { code?: string }) => e.code);
    await delay(50);
    const closed = await Promise.race([never.close().then(() => 'closed'), delay(12_000).then(() => 'hung')]);
    expect(closed).toBe('closed');
    expect(await Promise.race([publishing, delay(2_000).then(() => 'pending')])).toBe('ERR_CLOSED');
    expect(await Promise.race([subscribing, delay(2_000).then(() => 'pending')])).toBe('ERR_CLOSED');

    let arrive!: (c: Connection) => void;
    const late = createAmqpBus({ connect: () => new Promise<Connection>((resolve) => (arrive = resolve)), exchange: `brk-amqp-late-${suffix()}` });
    const latePublish = late.publish(checkDue()).then(() => 'published', (e: { code?: string }) => e.code);
    await delay(50);
    const closing = late.close();
    const c = await amqplib.connect(URL);
    c.on('error', () => {});
    const gone = new Promise<void>((resolve) => c.once('close', () => resolve()));
    arrive(c);
    await closing;
    expect(await latePublish).toBe('ERR_CLOSED');
    await Promise.race([gone, delay(5_000).then(() => { throw new Error('late connection left open'); })]);
  });

  it('a child process that used the bus in every phase exits by itself after close()', async () => {
    const { code, out } = await runExitChild('amqp', [`brk-amqp-exit-${suffix()}`]);
    expect(out).toContain('closed');
    expect(out).not.toContain('UNHANDLED');
    expect(code).toBe(0);
  }, 40_000);
});

describe('AMQP bus: the socket destroyed under load', () => {
  it('with connect, loses nothing when its connection dies mid-publish, mid-handler and mid-ack', async () => {
    const opened: Connection[] = [];
    const b = bus(
      {
        connect: async () => {
          const c = await amqplib.connect(URL);
          opened.push(c);
          return c;
        },
        reopenBaseMs: 50,
        reopenMaxMs: 200,
        retryBaseMs: 20,
        retryMaxMs: 100,
        maxAttempts: 50,
      },
      ['g'],
    );
    const handled = new Map<string, number>();
    await b.subscribe({ group: 'g', types: [CHECK_DUE], concurrency: 8, handler: async (e) => { await delay(Math.random() * 5); handled.set(e.id, (handled.get(e.id) ?? 0) + 1); } });
    let killing = true;
    let kills = 0;
    const killer = (async () => {
      while (killing || kills < 3) {
        await delay(150 + Math.random() * 150);
        const current = opened.at(-1) as unknown as { connection?: { stream?: { destroy(e: Error): void; destroyed?: boolean } } } | undefined;
        const stream = current?.connection?.stream;
        if (stream && !stream.destroyed) {
          stream.destroy(new Error('simulated network failure'));
          kills += 1;
        }
      }
    })();
    const ids: string[] = [];
    for (let i = 0; i < 200; i += 1) {
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
    killing = false;
    await killer;
    // One more after the last kill, so the reconnect after it is exercised too.
    const more = checkDue();
    await waitFor('publish after the last kill', () => b.publish(more).then(() => true, () => false));
    ids.push(more.id);
    expect(kills).toBeGreaterThan(2);
    await waitFor('every event handled', () => ids.every((id) => handled.has(id)), 40_000);
  }, 60_000);
});

describe('AMQP bus: the broker closes the connection (rabbitmqctl close_connection)', () => {
  it('with connect, reconnects after CONNECTION_FORCED and handles the in-flight event and later ones', async () => {
    const opened: Connection[] = [];
    const b = bus({ connect: async () => { const c = await amqplib.connect(URL); opened.push(c); return c; }, reopenBaseMs: 50, reopenMaxMs: 200 }, ['g']);
    const handled = new Map<string, number>();
    let hold: (() => void) | undefined;
    await b.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async (e) => {
        if (handled.size === 0 && hold === undefined) await new Promise<void>((resolve) => (hold = resolve));
        handled.set(e.id, (handled.get(e.id) ?? 0) + 1);
      },
    });
    const first = checkDue();
    await b.publish(first);
    await waitFor('handler running', () => hold !== undefined);
    const port = (opened[0] as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
    const { execFile } = await import('node:child_process');
    const listing = await new Promise<string>((resolve, reject) => execFile('rabbitmqctl', ['list_connections', '-q', 'pid', 'name'], (e, out) => (e ? reject(e) : resolve(out))));
    // Lines are "<pid>\t<name>"; ours is the one from this connection's local port.
    const pid = listing.split('\n').find((line) => line.includes(`127.0.0.1:${port} -> `))?.split('\t')[0];
    expect(pid).toBeDefined();
    await new Promise<void>((resolve, reject) => execFile('rabbitmqctl', ['close_connection', pid!, 'breaking test'], (e) => (e ? reject(e) : resolve())));
    hold!();
    const later = checkDue();
    await waitFor('publish on the new connection', () => b.publish(later).then(() => true, () => false));
    await waitFor('the in-flight and the later event handled', () => handled.has(first.id) && handled.has(later.id), 30_000);
    expect(opened.length).toBeGreaterThan(1);
  }, 45_000);
});

describe('AMQP bus: two members, 2000 events, random failures', () => {
  it('ends every event handled exactly once or dead-lettered, none lost (shared Redis idempotency store)', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    const idPrefix = `brk:amqp:load:${suffix()}`;
    const store = createRedisIdempotencyStore({ client: redis, prefix: idPrefix });
    const exchange = `brk-amqp-load-${suffix()}`;
    try {
      const members = [bus({ connection: await connection(), exchange, idempotency: store, retryBaseMs: 10, retryMaxMs: 100, maxAttempts: 3 }, ['g']), bus({ connection: await connection(), exchange, idempotency: store, retryBaseMs: 10, retryMaxMs: 100, maxAttempts: 3 }, ['g'])];
      const successes = new Map<string, number>();
      for (const b of members) {
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
        await Promise.all(batch.map((e, j) => members[j % 2]!.publish(e)));
      }
      const dead = new Set<string | undefined>();
      await waitFor(
        'every event handled or dead-lettered',
        async () => {
          for (const r of await drain(members[0]!.topology('g').deadLetterQueue)) dead.add(r.eventId);
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

describe('AMQP bus: secrets', () => {
  it('never echoes event data into logs or audit records of a dead-lettered event', async () => {
    const logger = recordingLogger();
    const audit = recordingAudit();
    const b = bus({ connection: await connection(), logger, audit, retryBaseMs: 5, retryMaxMs: 10, maxAttempts: 2 }, ['g']);
    const canary = `canary-${suffix()}`;
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => { throw new Error('downstream refused'); } });
    const event = checkDueWithSecret(canary);
    await b.publish(event);
    const records = await waitFor('dead letter', async () => {
      const r = await drain(b.topology('g').deadLetterQueue);
      return r.length > 0 ? r : undefined;
    });
    expect(JSON.stringify(records)).toContain(canary);
    expect(JSON.stringify(logger.lines)).not.toContain(canary);
    expect(JSON.stringify(audit.records)).not.toContain(canary);
  });

  it('does not put the password of the connection URL into its errors or logs', async () => {
    for (const url of ['amqp://guest:hunter2-secret@127.0.0.1:1', 'amqp://guest:hunter2-secret@127.0.0.1:5672']) {
      const logger = recordingLogger();
      const b = bus({ connect: () => amqplib.connect(url), logger }, ['g']);
      const publishError = (await b.publish(checkDue()).catch((e: unknown) => e)) as Error & { details?: unknown };
      const subscribeError = (await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => {} }).catch((e: unknown) => e)) as Error & { details?: unknown };
      expect(isIntegrationSyncError(publishError)).toBe(true);
      expect(isIntegrationSyncError(subscribeError)).toBe(true);
      const text = [publishError.message, subscribeError.message, JSON.stringify(publishError.details), JSON.stringify(subscribeError.details), JSON.stringify(logger.lines)].join(' ');
      expect(text).not.toContain('hunter2');
      await b.close();
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { createEvent } from '../../src/events/envelope.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { attemptOf, createAmqpBus, type AmqpBus, type AmqpChannel, type AmqpConnection, type AmqpMessage } from '../../src/amqp/index.js';
import { connect, deleteTopology, destroySocket, drainQueue, queueDepth, testBus, unique, until, withChannel, type Connection } from './helpers.js';

const TYPE = 'integration.sync.check-due';

function checkDue(): CloudEvent {
  return createEvent(TYPE, { timestamp: new Date().toISOString() });
}

interface Opened {
  connection: Connection;
  bus: AmqpBus;
  groups: Set<string>;
}

const opened: Opened[] = [];

async function open(namespace: string, options: Parameters<typeof testBus>[2] = {}, wrap?: (c: Connection) => AmqpConnection): Promise<Opened> {
  const connection = await connect();
  const bus = testBus(wrap ? (wrap(connection) as unknown as Connection) : connection, namespace, options);
  const entry = { connection, bus, groups: new Set<string>() };
  opened.push(entry);
  return entry;
}

afterEach(async () => {
  const cleaner = await connect();
  try {
    for (const { bus, connection, groups } of opened.splice(0)) {
      await bus.close({ timeoutMs: 1000 });
      await deleteTopology(cleaner, bus, groups);
      await connection.close().catch(() => {});
    }
  } finally {
    await cleaner.close();
  }
});

/** Wraps a connection so a test can reach the channels the bus opens (to make the broker close one). */
function spyChannels(connection: Connection, channels: AmqpChannel[]): AmqpConnection {
  return {
    createChannel: async () => {
      const channel = (await connection.createChannel()) as unknown as AmqpChannel;
      channels.push(channel);
      return channel;
    },
    createConfirmChannel: () => connection.createConfirmChannel() as never,
    on: (event: string, listener: never) => connection.on(event, listener),
    off: (event: string, listener: never) => connection.off(event, listener),
  } as AmqpConnection;
}

describe('AMQP bus: publish and consume', () => {
  it('publishes persistent JSON with the event id and type, and delivers it to the group', async () => {
    const ns = unique('pub');
    const { bus, groups, connection } = await open(ns);
    groups.add('g');
    const seen: { event: CloudEvent; attempt: number }[] = [];
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async (event, ctx) => void seen.push({ event, attempt: ctx.attempt }) });
    // A raw tap bound to the same exchange shows the message as the broker has it.
    const tap = unique('tap');
    await withChannel(connection, async (channel) => {
      await channel.assertQueue(tap, { durable: false });
      await channel.bindQueue(tap, bus.exchange, TYPE);
    });
    const event = checkDue();
    await bus.publish(event);
    await until(() => seen.length === 1, 15_000, 'delivery');
    expect(seen[0]?.event).toEqual(event);
    expect(seen[0]?.attempt).toBe(1);
    const message = await until(() => withChannel(connection, (channel) => channel.get(tap, { noAck: true })), 5000, 'tap message');
    expect(message.properties).toMatchObject({ messageId: event.id, type: TYPE, contentType: 'application/json', deliveryMode: 2 });
    expect(message.fields.routingKey).toBe(TYPE);
    await withChannel(connection, (channel) => channel.deleteQueue(tap));
  });

  it('retries a failing handler through the retry queue with increasing attempts, then acks', async () => {
    const { bus, groups } = await open(unique('retry'));
    groups.add('g');
    const attempts: number[] = [];
    await bus.subscribe({
      group: 'g',
      types: [TYPE],
      handler: async (_event, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error('transient');
      },
    });
    await bus.publish(checkDue());
    await until(() => attempts.length === 3, 15_000, 'three attempts');
    expect(attempts).toEqual([1, 2, 3]);
    const { connection } = opened[0]!;
    await until(async () => (await queueDepth(connection, bus.topology('g').retryQueue)) === 0, 5000, 'empty retry queue');
  });

  it('keeps the dead-letter record (reason, attempts, error) in the group dead-letter queue', async () => {
    const { bus, groups, connection } = await open(unique('dlq'));
    groups.add('g');
    const records: unknown[] = [];
    const busWithHook = createAmqpBus({ connection, exchange: bus.exchange, retryBaseMs: 10, retryMaxMs: 20, onDeadLetter: (r) => void records.push(r) });
    opened.push({ connection, bus: busWithHook, groups: new Set() });
    await busWithHook.subscribe({ group: 'g', types: [TYPE], maxAttempts: 2, handler: async () => Promise.reject(new Error('always fails')) });
    const event = checkDue();
    await busWithHook.publish(event);
    const dlq = bus.topology('g').deadLetterQueue;
    await until(async () => (await queueDepth(connection, dlq)) === 1, 15_000, 'dead-letter record');
    const [stored] = await drainQueue(connection, dlq);
    expect(stored?.body).toMatchObject({ reason: 'max_attempts', group: 'g', eventId: event.id, type: TYPE, attempts: 2, error: { message: 'always fails' } });
    expect(stored?.headers['x-dead-letter-reason']).toBe('max_attempts');
    expect(records).toHaveLength(1);
    expect(await queueDepth(connection, bus.topology('g').queue)).toBe(0);
  });

  it('dead-letters a payload that is not JSON with its issues, never calling the handler', async () => {
    const { bus, groups, connection } = await open(unique('raw'));
    groups.add('g');
    let calls = 0;
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async () => void calls++ });
    const channel = await connection.createConfirmChannel();
    channel.publish(bus.exchange, TYPE, Buffer.from('{not json'), { persistent: true });
    await channel.waitForConfirms();
    await channel.close();
    const dlq = bus.topology('g').deadLetterQueue;
    await until(async () => (await queueDepth(connection, dlq)) === 1, 15_000, 'dead-letter record');
    const [stored] = await drainQueue(connection, dlq);
    expect(stored?.body).toMatchObject({ reason: 'unparsable', payload: '{not json', attempts: 1 });
    expect((stored?.body as { issues: unknown[] }).issues.length).toBeGreaterThan(0);
    expect(calls).toBe(0);
  });

  it('rejects an unroutable publish with ERR_PUBLISH_FAILED when mandatory is set', async () => {
    const { bus, groups } = await open(unique('mand'), { mandatory: true });
    groups.add('g');
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async () => {} });
    const other = createEvent('integration.token.check-expiring', { timestamp: new Date().toISOString(), thresholdTime: new Date().toISOString() });
    await expect(bus.publish(other)).rejects.toSatisfy((e) => isIntegrationSyncError(e, 'ERR_PUBLISH_FAILED'));
    await expect(bus.publish(checkDue())).resolves.toBeUndefined();
  });

  it('rejects a publish with the reason of an aborted signal, and with ERR_PUBLISH_FAILED for an event without an id', async () => {
    const { bus, groups } = await open(unique('abort'));
    groups.add('g');
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async () => {} });
    const reason = new Error('caller gave up');
    await expect(bus.publish(checkDue(), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(bus.publish({ ...checkDue(), id: '' })).rejects.toSatisfy((e) => isIntegrationSyncError(e, 'ERR_PUBLISH_FAILED'));
  });

  it('confirms a burst of publishes without losing one (back-pressure)', async () => {
    const { bus, groups, connection } = await open(unique('burst'));
    groups.add('g');
    const seen = new Set<string>();
    await bus.subscribe({ group: 'g', types: [TYPE], concurrency: 20, handler: async (event) => void seen.add(event.id) });
    const events = Array.from({ length: 1500 }, () => checkDue());
    await Promise.all(events.map((event) => bus.publish(event)));
    await until(() => seen.size === events.length, 30_000, 'every event');
    expect(await queueDepth(connection, bus.topology('g').queue)).toBe(0);
  });
});

describe('AMQP bus: classic queues', () => {
  it('counts attempts through the x-attempt header and dead-letters after maxAttempts', async () => {
    const { bus, groups, connection } = await open(unique('classic'), { queueType: 'classic' });
    groups.add('g');
    const attempts: number[] = [];
    await bus.subscribe({ group: 'g', types: [TYPE], maxAttempts: 3, handler: async (_e, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error('fails');
      },
    });
    await bus.publish(checkDue());
    const dlq = bus.topology('g').deadLetterQueue;
    await until(async () => (await queueDepth(connection, dlq)) === 1, 15_000, 'dead-letter record');
    expect(attempts).toEqual([1, 2, 3]);
    const [stored] = await drainQueue(connection, dlq);
    expect(stored?.body).toMatchObject({ reason: 'max_attempts', attempts: 3 });
    const info = await withChannel(connection, (channel) => channel.checkQueue(bus.topology('g').queue));
    expect(info.messageCount).toBe(0);
  });

  it('refuses to subscribe when the group queue exists with other arguments (ERR_INVALID_OPTION), and the bus stays usable', async () => {
    const ns = unique('mismatch');
    const quorum = await open(ns);
    quorum.groups.add('g');
    await quorum.bus.subscribe({ group: 'g', types: [TYPE], handler: async () => {} });
    const classic = await open(ns, { queueType: 'classic' });
    await expect(classic.bus.subscribe({ group: 'g', types: [TYPE], handler: async () => {} })).rejects.toSatisfy((e) => isIntegrationSyncError(e, 'ERR_INVALID_OPTION'));
    classic.groups.add('other');
    const seen: string[] = [];
    await classic.bus.subscribe({ group: 'other', types: [TYPE], handler: async (event) => void seen.push(event.id) });
    const event = checkDue();
    await classic.bus.publish(event);
    await until(() => seen.includes(event.id), 15_000, 'delivery on the same bus');
  });
});

describe('AMQP bus: resilience', () => {
  it('survives a channel error: a publish to a missing exchange fails alone, the connection and bus keep working', async () => {
    const ns = unique('chan');
    const { bus, groups, connection } = await open(ns);
    groups.add('g');
    let closed = false;
    connection.on('close', () => (closed = true));
    // No subscribe yet, so the exchange does not exist: RabbitMQ closes the publish channel with 404.
    await expect(bus.publish(checkDue())).rejects.toSatisfy((e) => isIntegrationSyncError(e, 'ERR_PUBLISH_FAILED'));
    const seen: string[] = [];
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async (event) => void seen.push(event.id) });
    const event = checkDue();
    await bus.publish(event);
    await until(() => seen.includes(event.id), 15_000, 'delivery after the channel error');
    expect(closed).toBe(false);
  });

  it('reopens a consumer channel the broker closed and consumes again', async () => {
    const channels: AmqpChannel[] = [];
    const { bus, groups } = await open(unique('reopen'), {}, (c) => spyChannels(c, channels));
    groups.add('g');
    const seen: string[] = [];
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async (event) => void seen.push(event.id) });
    const consumer = channels.at(-1)!;
    const closedOnce = new Promise<void>((resolve) => consumer.on('close', resolve));
    // Acking an unknown delivery tag is a protocol error: RabbitMQ closes the channel (406).
    consumer.ack({ fields: { deliveryTag: 99_999 } } as AmqpMessage);
    await closedOnce;
    await until(() => channels.length >= 2, 15_000, 'a new consumer channel');
    const event = checkDue();
    await bus.publish(event);
    await until(() => seen.includes(event.id), 15_000, 'delivery after the reopen');
  });

  it('reports a consumer the broker cancelled (queue deleted) and resumes once the queue is declared again', async () => {
    const ns = unique('cancel');
    const cancelled: { group: string; queue: string }[] = [];
    const { bus, groups, connection } = await open(ns, { onConsumerCancelled: (info) => void cancelled.push(info) });
    groups.add('g');
    const seen: string[] = [];
    await bus.subscribe({ group: 'g', types: [TYPE], handler: async (event) => void seen.push(`a:${event.id}`) });
    const names = bus.topology('g');
    await withChannel(connection, (channel) => channel.deleteQueue(names.queue));
    await until(() => cancelled.length === 1, 15_000, 'cancellation report');
    expect(cancelled[0]).toEqual({ group: 'g', queue: names.queue });
    // Another member re-declares the queue; once it leaves, only the first can take the event.
    const second = await open(ns);
    const sub = await second.bus.subscribe({ group: 'g', types: [TYPE], handler: async (event) => void seen.push(`b:${event.id}`) });
    await sub.close();
    await until(async () => {
      const info = await withChannel(connection, (channel) => channel.checkQueue(names.queue)).catch(() => undefined);
      return info?.consumerCount === 1;
    }, 15_000, 'the first member consuming again');
    const event = checkDue();
    await bus.publish(event);
    await until(() => seen.includes(`a:${event.id}`), 15_000, 'delivery to the resumed consumer');
  });

  it('acks a handler that finishes during close: the message is not redelivered', async () => {
    const ns = unique('closeack');
    const { bus, groups, connection } = await open(ns);
    groups.add('g');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    await bus.subscribe({
      group: 'g',
      types: [TYPE],
      handler: async () => {
        started = true;
        await gate;
      },
    });
    await bus.publish(checkDue());
    await until(() => started, 15_000, 'handler start');
    const closing = bus.close({ timeoutMs: 10_000 });
    setTimeout(release, 100);
    await closing;
    const names = bus.topology('g');
    const info = await withChannel(connection, (channel) => channel.checkQueue(names.queue));
    expect(info.messageCount).toBe(0);
    expect(info.consumerCount).toBe(0);
  });

  it('leaves a handler that outlives the close deadline unacked: another member gets it, attempt 2', async () => {
    const ns = unique('closenack');
    const first = await open(ns);
    first.groups.add('g');
    let aborted = false;
    await first.bus.subscribe({
      group: 'g',
      types: [TYPE],
      handler: (_event, ctx) =>
        new Promise<void>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
    });
    const event = checkDue();
    await first.bus.publish(event);
    await until(async () => (await withChannel(first.connection, (c) => c.checkQueue(first.bus.topology('g').queue))).messageCount === 0, 10_000, 'delivery');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.bus.close({ timeoutMs: 50 });
    expect(aborted).toBe(true);
    const second = await open(ns);
    const got: { id: string; attempt: number }[] = [];
    await second.bus.subscribe({ group: 'g', types: [TYPE], handler: async (e, ctx) => void got.push({ id: e.id, attempt: ctx.attempt }) });
    await until(() => got.length === 1, 15_000, 'redelivery');
    expect(got[0]).toEqual({ id: event.id, attempt: 2 });
    // The abandoned handler's rejection must not have sent a retry copy.
    expect(await queueDepth(second.connection, second.bus.topology('g').retryQueue)).toBe(0);
  });

  it.each(['quorum', 'classic'] as const)('redelivers to another member, as attempt 2, when a consumer dies mid-handler (%s)', async (queueType) => {
    const ns = unique('crash');
    const a = await open(ns, { queueType });
    a.groups.add('g');
    let startedA = false;
    await a.bus.subscribe({ group: 'g', types: [TYPE], handler: () => ((startedA = true), new Promise<void>(() => {})) });
    const event = checkDue();
    await a.bus.publish(event);
    await until(() => startedA, 15_000, 'handler start on A');
    const b = await open(ns, { queueType });
    const got: number[] = [];
    await b.bus.subscribe({ group: 'g', types: [TYPE], handler: async (_e, ctx) => void got.push(ctx.attempt) });
    destroySocket(a.connection);
    await until(() => got.length === 1, 15_000, 'redelivery to B');
    expect(got[0]).toBe(2);
    // A's bus notices its connection is gone: publishing fails fast and cleanly.
    await until(async () => {
      try {
        await a.bus.publish(checkDue());
        return false;
      } catch (error) {
        return isIntegrationSyncError(error);
      }
    }, 5000, 'publish on a dead connection to fail');
  });

  it('with connect, reconnects after the connection drops: consumers resume, the in-flight event comes back, close closes what it opened', async () => {
    const ns = unique('reconnect');
    const made: Connection[] = [];
    const bus = testBus(undefined as never, ns, {
      connection: undefined,
      connect: async () => {
        const connection = await connect();
        made.push(connection);
        return connection;
      },
    });
    const cleaner = await connect();
    opened.push({ connection: cleaner, bus, groups: new Set(['g']) });
    const first = checkDue();
    const seen: { id: string; attempt: number }[] = [];
    let release!: () => void;
    const dropped = new Promise<void>((resolve) => (release = resolve));
    await bus.subscribe({
      group: 'g',
      types: [TYPE],
      handler: async (event, ctx) => {
        seen.push({ id: event.id, attempt: ctx.attempt });
        // The first delivery outlives its connection, then fails: nothing may be acked or retried on the dead channel.
        if (ctx.attempt === 1 && event.id === first.id) {
          await dropped;
          throw new Error('lost the connection');
        }
      },
    });
    await bus.publish(first);
    await until(() => seen.length === 1, 15_000, 'first delivery');
    expect(made).toHaveLength(1);
    destroySocket(made[0]!);
    release();
    await until(() => seen.some((s) => s.id === first.id && s.attempt === 2), 15_000, 'redelivery after the reconnect');
    expect(made.length).toBeGreaterThanOrEqual(2);
    const second = checkDue();
    await bus.publish(second);
    await until(() => seen.some((s) => s.id === second.id), 15_000, 'a new event after the reconnect');
    const current = made.at(-1)!;
    const closed = new Promise<void>((resolve) => current.once('close', () => resolve()));
    await bus.close();
    await closed;
    // Redelivered by the broker once, not also copied to the retry queue by the dead channel's handler.
    expect(seen.filter((s) => s.id === first.id).map((s) => s.attempt)).toEqual([1, 2]);
  });

  it('close is idempotent, and publish or subscribe after it reject with ERR_CLOSED', async () => {
    const { bus } = await open(unique('idem'));
    await Promise.all([bus.close(), bus.close()]);
    await bus.close();
    await expect(bus.publish(checkDue())).rejects.toSatisfy((e) => isIntegrationSyncError(e, 'ERR_CLOSED'));
    await expect(bus.subscribe({ group: 'g', types: [TYPE], handler: async () => {} })).rejects.toSatisfy((e) => isIntegrationSyncError(e, 'ERR_CLOSED'));
  });

  it('rejects bad options at construction with ERR_INVALID_OPTION', async () => {
    const connection = await connect();
    try {
      const bad = [{ connection: {} }, {}, { connection, connect: async () => connection }, { connection, exchange: '' }, { connection, queueType: 'stream' }, { connection, reopenBaseMs: -1 }, { connection, deliveryLimit: 0 }];
      for (const options of bad) {
        expect(() => createAmqpBus(options as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
      }
    } finally {
      await connection.close();
    }
  });
});

describe('attemptOf', () => {
  const message = (headers: Record<string, unknown> | undefined, redelivered = false): AmqpMessage => ({
    content: Buffer.alloc(0),
    fields: { deliveryTag: 1, redelivered, exchange: '', routingKey: '' },
    properties: { headers },
  });

  it('adds the x-attempt header of a retry copy to the broker return count', () => {
    expect(attemptOf(message(undefined))).toBe(1);
    expect(attemptOf(message(undefined, true))).toBe(2);
    expect(attemptOf(message({ 'x-delivery-count': 2 }, true))).toBe(3);
    expect(attemptOf(message({ 'x-attempt': 4 }))).toBe(4);
    expect(attemptOf(message({ 'x-attempt': 4, 'x-delivery-count': 1 }, true))).toBe(5);
  });

  it('ignores garbage headers', () => {
    expect(attemptOf(message({ 'x-attempt': 'NaN', 'x-delivery-count': -3 }))).toBe(1);
    expect(attemptOf(message({ 'x-attempt': { a: 1 } }, true))).toBe(2);
  });
});

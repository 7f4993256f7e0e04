import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import { createAmqpBus, type AmqpBus, type AmqpBusOptions } from '../../src/amqp/index.js';

export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

export type Connection = Awaited<ReturnType<typeof amqplib.connect>>;

/** A short unique suffix, so parallel files never share a queue or exchange. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs`. */
export async function until<T>(check: () => T | Promise<T>, timeoutMs = 15_000, what = 'condition'): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | null | undefined | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Opens a connection with a no-op error listener (a test that kills it must not crash the worker). */
export async function connect(): Promise<Connection> {
  const connection = await amqplib.connect(AMQP_URL);
  connection.on('error', () => {});
  return connection;
}

/** Drops the TCP socket at once: the broker sees a dead client, no close handshake, no acks. */
export function destroySocket(connection: Connection): void {
  (connection as unknown as { connection: { stream: { destroy(error?: Error): void } } }).connection.stream.destroy(new Error('simulated crash'));
}

/** Runs `fn` on a throwaway channel (a failing operation only closes that channel). */
export async function withChannel<T>(connection: Connection, fn: (channel: amqplib.Channel) => Promise<T>): Promise<T> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    return await fn(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

/** Deletes a group's queues and the exchanges of a bus. */
export async function deleteTopology(connection: Connection, bus: Pick<AmqpBus, 'topology'>, groups: Iterable<string>): Promise<void> {
  let exchanges: { exchange: string; deadLetterExchange: string } | undefined;
  for (const group of groups) {
    const names = bus.topology(group);
    exchanges = names;
    for (const queue of [names.queue, names.retryQueue, names.deadLetterQueue]) {
      await withChannel(connection, (channel) => channel.deleteQueue(queue)).catch(() => {});
    }
  }
  if (exchanges) {
    const { exchange, deadLetterExchange } = exchanges;
    await withChannel(connection, (channel) => channel.deleteExchange(exchange)).catch(() => {});
    await withChannel(connection, (channel) => channel.deleteExchange(deadLetterExchange)).catch(() => {});
  }
}

/** Gets every message currently in `queue` (basic.get, acked), decoded as JSON. */
export async function drainQueue(connection: Connection, queue: string): Promise<{ body: unknown; headers: Record<string, unknown> }[]> {
  return withChannel(connection, async (channel) => {
    const out: { body: unknown; headers: Record<string, unknown> }[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) return out;
      out.push({ body: JSON.parse(message.content.toString('utf8')), headers: message.properties.headers ?? {} });
    }
  });
}

/** Message count of a queue, or undefined when it does not exist. */
export async function queueDepth(connection: Connection, queue: string): Promise<number | undefined> {
  return withChannel(connection, async (channel) => (await channel.checkQueue(queue)).messageCount).catch(() => undefined);
}

/** A bus on `connection` with unique names and fast test backoffs. */
export function testBus(connection: Connection, namespace: string, options: Partial<AmqpBusOptions> = {}): AmqpBus {
  return createAmqpBus({
    connection,
    exchange: `isync-test.${namespace}`,
    queuePrefix: `isync-test.${namespace}`,
    retryBaseMs: 20,
    retryMaxMs: 200,
    reopenBaseMs: 50,
    reopenMaxMs: 500,
    ...options,
  });
}

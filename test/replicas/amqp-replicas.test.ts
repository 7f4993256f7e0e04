import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAmqpBus, type AmqpBus } from '../../src/amqp/index.js';
import { expectAtLeastOnceAcrossKill } from './assertions.js';
import { AMQP_URL, deleteKeys, describeReport, killAll, REDIS_URL, runKillScenario, uniqueNamespace } from './harness.js';

const namespace = uniqueNamespace('isyncrep');
let redis: Redis;
let connection: Awaited<ReturnType<typeof amqplib.connect>>;
let publisher: AmqpBus;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  connection = await amqplib.connect(AMQP_URL);
  connection.on('error', () => {});
  // Same names as the workers' bus (replica-worker.ts).
  publisher = createAmqpBus({ connection, exchange: `isync-test.${namespace}`, queuePrefix: `isync-test.${namespace}` });
});

/** Runs one operation on a throwaway channel: a 404 closes only that channel. */
async function onChannel<T>(fn: (channel: amqplib.Channel) => Promise<T>): Promise<T> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    return await fn(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

afterAll(async () => {
  await killAll();
  await publisher?.close();
  if (connection) {
    const names = publisher.topology('replicas');
    for (const queue of [names.queue, names.retryQueue, names.deadLetterQueue]) await onChannel((c) => c.deleteQueue(queue)).catch(() => {});
    for (const exchange of [names.exchange, names.deadLetterExchange]) await onChannel((c) => c.deleteExchange(exchange)).catch(() => {});
    await connection.close();
  }
  await deleteKeys(redis, `${namespace}*`);
  await redis.quit();
});

/** Ready messages in the group's work and retry queues (unacked ones are not counted by RabbitMQ here). */
async function ready(): Promise<number> {
  const names = publisher.topology('replicas');
  let total = 0;
  for (const queue of [names.queue, names.retryQueue]) total += (await onChannel((c) => c.checkQueue(queue))).messageCount;
  return total;
}

describe('three replica processes on one RabbitMQ consumer group', () => {
  it('loses nothing and repeats only the killed replica’s in-flight work when one is SIGKILLed mid-handler', { timeout: 90_000 }, async () => {
    const concurrency = 3;
    const report = await runKillScenario({ broker: 'amqp', namespace, publisher, redis, concurrency, drained: async () => (await ready()) === 0 });
    console.info(describeReport('amqp', report));
    expectAtLeastOnceAcrossKill(report, concurrency);
    // Every replica is gone, so nothing is unacked any more: a message left would be ready now.
    expect(await ready()).toBe(0);
    expect((await onChannel((c) => c.checkQueue(publisher.topology('replicas').deadLetterQueue))).messageCount).toBe(0);
  });
});

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventTypes } from '../../src/events/schemas.js';
import { createRedisBus, redisStreamKey, type RedisEventBus } from '../../src/redis/index.js';
import { expectAtLeastOnceAcrossKill } from './assertions.js';
import { deleteKeys, describeReport, killAll, REDIS_URL, runKillScenario, uniqueNamespace } from './harness.js';

const namespace = uniqueNamespace('isyncrep');
let redis: Redis;
let publisher: RedisEventBus;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
  publisher = createRedisBus({ client: redis, prefix: namespace });
});

afterAll(async () => {
  await killAll();
  await publisher?.close();
  await deleteKeys(redis, `${namespace}*`);
  await redis.quit();
});

describe('three replica processes on one Redis Streams consumer group', () => {
  it('loses nothing and repeats only the killed replica’s in-flight work when one is SIGKILLed mid-handler', { timeout: 90_000 }, async () => {
    const stream = redisStreamKey(namespace, EventTypes.SyncScheduled);
    const pending = async (): Promise<number> => Number(((await redis.xpending(stream, 'replicas')) as [number])[0]);
    const concurrency = 3;
    const report = await runKillScenario({ broker: 'redis', namespace, publisher, redis, concurrency, drained: async () => (await pending()) === 0 });
    console.info(describeReport('redis', report));
    expectAtLeastOnceAcrossKill(report, concurrency);
    // After every replica is gone, nothing is left pending in the group.
    expect(await pending()).toBe(0);
  });
});

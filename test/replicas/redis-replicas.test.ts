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
    /** Entries of the group not yet delivered (lag) or delivered and not acked (pending). */
    const pending = async (): Promise<number> => {
      const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      const group = groups.map((fields) => Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]))).find((g) => g.name === 'replicas');
      if (group === undefined) throw new Error('consumer group replicas is missing');
      // lag is null when Redis cannot tell (after a trim); count that as not drained.
      return Number(group.pending) + (group.lag === null ? 1 : Number(group.lag));
    };
    const concurrency = 3;
    const report = await runKillScenario({ broker: 'redis', namespace, publisher, redis, concurrency, drained: async () => (await pending()) === 0 });
    console.info(describeReport('redis', report));
    expectAtLeastOnceAcrossKill(report, concurrency);
    // After every replica is gone, nothing is left pending in the group.
    expect(await pending()).toBe(0);
    // The re-published ids really went through the stream (and were skipped by the handlers).
    expect(await redis.xlen(stream)).toBe(report.published + report.republished);
  });
});

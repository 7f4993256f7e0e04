import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsBus, type NatsEventBus } from '../../src/nats/index.js';
import { expectAtLeastOnceAcrossKill } from './assertions.js';
import { deleteKeys, describeReport, killAll, NATS_URL, REDIS_URL, runKillScenario, uniqueNamespace } from './harness.js';

const namespace = uniqueNamespace('isyncrep');
const stream = `ISYNC_REPLICAS_${namespace}`;
const subjectPrefix = `isync-replicas.${namespace}`;
let redis: Redis;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: NatsEventBus;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  nc = await connect({ servers: NATS_URL, name: 'replica-test-publisher' });
  jsm = await jetstreamManager(nc);
  publisher = createNatsBus({
    connection: nc,
    jetstream: jetstream(nc),
    manager: jsm,
    stream,
    subjectPrefix,
    // Must match the workers' (replica-worker.ts): the first to create the stream sets it.
    duplicateWindowMs: 1_000,
    streamMaxAgeMs: 600_000,
  });
});

afterAll(async () => {
  await killAll();
  await publisher?.close();
  await jsm?.streams.delete(stream).catch(() => {});
  await nc?.close();
  await deleteKeys(redis, `${namespace}*`);
  await redis.quit();
});

/** Events the group's durable consumers still hold: not yet delivered, or delivered and unacked. */
async function outstanding(): Promise<number> {
  let total = 0;
  for await (const info of jsm.consumers.list(stream)) total += info.num_pending + info.num_ack_pending;
  return total;
}

describe('three replica processes on one NATS JetStream consumer group', () => {
  it('loses nothing and repeats only the killed replica’s in-flight work when one is SIGKILLed mid-handler', { timeout: 90_000 }, async () => {
    const concurrency = 3;
    const report = await runKillScenario({
      broker: 'nats',
      namespace,
      publisher,
      redis,
      concurrency,
      stream,
      subjectPrefix,
      drained: async () => (await outstanding()) === 0,
    });
    console.info(describeReport('nats', report));
    expectAtLeastOnceAcrossKill(report, concurrency);
    expect(await outstanding()).toBe(0);
    // The re-published ids were stored, not dropped by JetStream's duplicate window (so the handlers skipped them).
    expect((await jsm.streams.info(stream)).state.messages).toBe(report.published + report.republished);
  });
});

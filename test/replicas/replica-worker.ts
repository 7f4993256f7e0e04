/**
 * One replica of a host, run as its own process by the replica tests:
 * `node --import tsx test/replicas/replica-worker.ts '<WorkerConfig JSON>'`.
 *
 * It subscribes to one consumer group on the broker named in the config, with a Redis
 * idempotency store shared by every replica, and its handler writes `start` and `done` records
 * (event id, pid, time) to a Redis list, so what each replica did survives a SIGKILL. On SIGTERM
 * it closes gracefully and lets the process exit on its own: if anything still holds the event
 * loop, the test sees a replica that did not exit.
 *
 * Talks to the parent through stdout, one JSON line per state: `ready`, `closed`, `error`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { EventBus, Subscription } from '../../src/bus/types.js';
import { createRedisBus, createRedisIdempotencyStore } from '../../src/redis/index.js';

/** What the parent passes as the first argument (JSON). */
export interface WorkerConfig {
  broker: 'redis' | 'nats' | 'amqp';
  /** Unique per test run: Redis prefix, NATS stream/subject suffix, RabbitMQ exchange/queue prefix. */
  namespace: string;
  group: string;
  types: string[];
  /** Redis list the handler appends `start|<id>|<pid>|<ms>` and `done|<id>|<pid>|<ms>` to. */
  logKey: string;
  concurrency: number;
  handlerMs: number;
  redisUrl: string;
  natsUrl: string;
  amqpUrl: string;
  /** NATS only. */
  stream: string;
  subjectPrefix: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const pid = process.pid;

// If the test process itself dies (no afterAll), do not linger: the parent's pid changes to a reaper.
// Unref'd, so it never keeps a gracefully closed replica alive.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 500).unref();

function say(state: 'ready' | 'closed' | 'error', extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ state, pid, ...extra })}\n`);
}

/** A bus on the configured broker, and how to close the connection the bus does not own. */
async function openBus(redis: Redis): Promise<{ bus: EventBus; closeConnection: () => Promise<void> }> {
  const idempotency = createRedisIdempotencyStore({ client: redis, prefix: `${config.namespace}:handled` });
  const common = { idempotency, retryBaseMs: 50, retryMaxMs: 500, closeTimeoutMs: 5_000 };
  if (config.broker === 'redis') {
    // Short claim settings: a dead member's entries are taken over within about two seconds,
    // while a live member's keep-alive (every claimIdleMs / 3) survives a stalled event loop on a busy machine.
    const bus = createRedisBus({ ...common, client: redis, prefix: config.namespace, claimIdleMs: 2_000, claimIntervalMs: 200, blockMs: 1_000 });
    return { bus, closeConnection: async () => {} };
  }
  if (config.broker === 'nats') {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: config.natsUrl, name: `replica-${pid}` });
    const { createNatsBus } = await import('../../src/nats/index.js');
    const bus = createNatsBus({
      ...common,
      connection: nc,
      jetstream: jetstream(nc),
      manager: await jetstreamManager(nc),
      stream: config.stream,
      subjectPrefix: config.subjectPrefix,
      // A dead member's deliveries go to another after two seconds without an ack or working().
      ackWaitMs: 2_000,
      pullExpiresMs: 2_000,
      // JetStream's own de-duplication by event id is kept short, so the re-publish step reaches the idempotency store.
      duplicateWindowMs: 1_000,
      streamMaxAgeMs: 600_000,
      closeConnection: true,
    });
    return { bus, closeConnection: async () => {} };
  }
  const amqplib = (await import('amqplib')).default;
  const connection = await amqplib.connect(config.amqpUrl);
  connection.on('error', () => {});
  const { createAmqpBus } = await import('../../src/amqp/index.js');
  const bus = createAmqpBus({ ...common, connection, exchange: `isync-test.${config.namespace}`, queuePrefix: `isync-test.${config.namespace}` });
  return { bus, closeConnection: () => connection.close() };
}

async function main(): Promise<void> {
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on('error', () => {});
  await redis.connect();
  const { bus, closeConnection } = await openBus(redis);
  const record = (phase: 'start' | 'done', id: string): Promise<number> => redis.rpush(config.logKey, `${phase}|${id}|${pid}|${Date.now()}`);

  const subscription: Subscription = await bus.subscribe({
    group: config.group,
    types: config.types,
    concurrency: config.concurrency,
    handler: async (event, { signal }) => {
      await record('start', event.id);
      // Takes a while, so a SIGKILL finds handlers in flight.
      await sleep(config.handlerMs, undefined, { signal });
      await record('done', event.id);
    },
  });

  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    void (async () => {
      await subscription.close({ timeoutMs: 5_000 });
      await bus.close({ timeoutMs: 5_000 });
      await closeConnection();
      await redis.quit();
      say('closed');
    })().catch((error: unknown) => {
      say('error', { message: error instanceof Error ? error.message : String(error) });
      process.exitCode = 1;
    });
  });
  say('ready');
}

main().catch((error: unknown) => {
  say('error', { message: error instanceof Error ? error.stack : String(error) });
  process.exit(1);
});

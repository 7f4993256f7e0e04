/**
 * Child process of the adapter-breaking tests: uses one adapter in every phase at once (a
 * subscribe not yet resolved, a publish burst, handlers failing with retry timers pending),
 * closes it twice concurrently, closes the host's client, and must then exit by itself.
 * argv: <redis|nats|amqp> <namespace>
 */
import { createEvent } from '../../src/events/envelope.js';
import type { EventBus } from '../../src/bus/types.js';

const [kind, ns] = process.argv.slice(2) as [string, string];
process.on('unhandledRejection', (reason) => {
  console.error('UNHANDLED', reason);
  process.exitCode = 3;
});
const type = 'integration.sync.check-due';
const event = () => createEvent(type, { timestamp: new Date().toISOString() });
const failing = async () => {
  throw new Error('always fails, so a retry timer is pending at close');
};

async function exercise(bus: EventBus): Promise<void> {
  await bus.subscribe({ group: 'g-failing', types: [type], handler: failing });
  const burst = Array.from({ length: 30 }, () => bus.publish(event()).catch(() => 'rejected'));
  await Promise.all(burst.slice(0, 10));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // A subscribe still in flight and more publishes while close() runs twice at once.
  const late = bus.subscribe({ group: 'g-late', types: [type], handler: async () => {} }).then(
    (s) => s.close(),
    () => 'rejected',
  );
  const more = Array.from({ length: 30 }, () => bus.publish(event()).catch(() => 'rejected'));
  await Promise.all([bus.close({ timeoutMs: 500 }), bus.close(), late, ...burst, ...more]);
  const after = await bus.publish(event()).then(
    () => 'published',
    (e: { code?: string }) => e.code,
  );
  console.log(`after-close publish: ${after}`);
}

if (kind === 'redis') {
  const { Redis } = await import('ioredis');
  const { createRedisBus } = await import('../../src/redis/index.js');
  const client = new Redis('redis://127.0.0.1:6379');
  const bus = createRedisBus({ client, prefix: ns, retryBaseMs: 5_000, retryMaxMs: 5_000, blockMs: 2_000 });
  await exercise(bus);
  const keys = await client.keys(`${ns}*`);
  if (keys.length > 0) await client.del(...keys);
  await client.quit();
} else if (kind === 'nats') {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
  const { createNatsBus } = await import('../../src/nats/index.js');
  const nc = await connect({ servers: '127.0.0.1:4222' });
  const jsm = await jetstreamManager(nc);
  const bus = createNatsBus({ connection: nc, jetstream: jetstream(nc), manager: jsm, stream: ns, subjectPrefix: ns, retryBaseMs: 5_000, retryMaxMs: 5_000 });
  await exercise(bus);
  await jsm.streams.delete(ns).catch(() => {});
  await nc.drain();
} else if (kind === 'amqp') {
  const amqplib = (await import('amqplib')).default;
  const { createAmqpBus } = await import('../../src/amqp/index.js');
  const bus = createAmqpBus({ connect: () => amqplib.connect('amqp://guest:guest@127.0.0.1:5672'), exchange: ns, retryBaseMs: 5_000, retryMaxMs: 5_000 });
  await exercise(bus);
  const connection = await amqplib.connect('amqp://guest:guest@127.0.0.1:5672');
  const channel = await connection.createChannel();
  for (const group of ['g-failing', 'g-late']) {
    for (const suffix of ['', '.retry', '.dead-letter']) await channel.deleteQueue(`${ns}.${group}${suffix}`);
  }
  await channel.deleteExchange(ns);
  await channel.deleteExchange(`${ns}.dlx`);
  await connection.close();
} else {
  throw new Error(`unknown kind ${kind}`);
}
console.log('closed');

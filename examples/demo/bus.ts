/**
 * Builds the demo's EventBus from `--bus`: the embedded memory bus by default, or a real broker
 * (`redis://`, `nats://`, `amqp://`) through the library's adapters, with the clients a host
 * would build itself.
 */
import { createMemoryBus, type BusOptions, type EventBus } from '../../src/index.js';

export interface DemoBus {
  bus: EventBus;
  /** Human name for the banner. */
  name: string;
  /** Closes the bus and the clients the demo built for it. */
  close(): Promise<void>;
}

export async function createDemoBus(url: string | undefined, options: BusOptions, namespace: string): Promise<DemoBus> {
  if (url === undefined || url === 'memory') {
    const bus = createMemoryBus(options);
    return { bus, name: 'memory (embedded)', close: () => bus.close() };
  }
  const scheme = new URL(url).protocol;
  if (scheme === 'redis:') {
    const { Redis } = await import('ioredis');
    const { createRedisBus } = await import('../../src/redis/index.js');
    // Give up on a server that is not there at start, but ride out blips once connected.
    let connected = false;
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 3,
      connectTimeout: 3000,
      retryStrategy: (times) => (!connected && times > 2 ? null : Math.min(times * 200, 2000)),
    });
    let lastError = '';
    client.on('error', (error: Error) => {
      if (error.message !== lastError) console.error(`[redis] ${error.message}`);
      lastError = error.message;
    });
    try {
      await client.connect();
      connected = true;
    } catch (error) {
      client.disconnect();
      throw new Error(`cannot reach Redis at ${url}: ${lastError || (error as Error).message}`);
    }
    const bus = createRedisBus({ ...options, client, prefix: `demo:${namespace}`, claimIdleMs: 5_000, claimIntervalMs: 1_000 });
    return {
      bus,
      name: `Redis Streams at ${url}`,
      close: async () => {
        await bus.close();
        // The demo made these streams; leave the server as it found it.
        const keys = await client.keys(`demo:${namespace}*`);
        if (keys.length > 0) await client.del(...keys);
        await client.quit();
      },
    };
  }
  if (scheme === 'nats:') {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const connection = await connect({ servers: url.replace(/^nats:\/\//, ''), timeout: 3000 }).catch((error: Error) => {
      throw new Error(`cannot reach NATS at ${url}: ${error.message}`);
    });
    const manager = await jetstreamManager(connection);
    const stream = `DEMO_${namespace.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
    const bus = createNatsBus(
      await import('../../src/nats/index.js'),
      { ...options, connection, jetstream: jetstream(connection), manager, stream, subjectPrefix: `demo.${namespace.replace(/[^A-Za-z0-9]/g, '')}`, ackWaitMs: 10_000 },
    );
    return {
      bus,
      name: `NATS JetStream at ${url}`,
      close: async () => {
        await bus.close();
        await manager.streams.delete(stream).catch(() => false);
        await connection.close();
      },
    };
  }
  if (scheme === 'amqp:' || scheme === 'amqps:') {
    const amqplib = await import('amqplib');
    const { createAmqpBus } = await import('../../src/amqp/index.js');
    const safeUrl = url.replace(/\/\/[^@]*@/, '//');
    const connection = await amqplib.connect(url, { timeout: 3000 }).catch((error: Error) => {
      throw new Error(`cannot reach RabbitMQ at ${safeUrl}: ${error.message}`);
    });
    const exchange = `demo.${namespace}`;
    const queuePrefix = `demo.${namespace}`;
    const bus = createAmqpBus({ ...options, connection, exchange, queuePrefix });
    return {
      bus,
      name: `RabbitMQ at ${safeUrl}`,
      close: async () => {
        await bus.close();
        const channel = await connection.createChannel();
        for (const group of ['integration-sync', 'sync-planner', 'refresh-planner']) {
          for (const suffix of ['', '.dead-letter', '.retry']) await channel.deleteQueue(`${queuePrefix}.${group}${suffix}`).catch(() => undefined);
        }
        await channel.deleteExchange(exchange).catch(() => undefined);
        await channel.deleteExchange(`${exchange}.dlx`).catch(() => undefined);
        await channel.close().catch(() => undefined);
        await connection.close();
      },
    };
  }
  throw new Error(`--bus must be memory, redis://, nats:// or amqp://; got ${scheme}`);
}

function createNatsBus(mod: typeof import('../../src/nats/index.js'), options: Parameters<typeof import('../../src/nats/index.js').createNatsBus>[0]): EventBus {
  return mod.createNatsBus(options);
}

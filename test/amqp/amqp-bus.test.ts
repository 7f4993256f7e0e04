import { afterAll } from 'vitest';
import type { EventBus } from '../../src/bus/types.js';
import { testEventBus } from '../../src/testing/bus-conformance.js';
import { createAmqpBus, type AmqpBus } from '../../src/amqp/index.js';
import { connect, deleteTopology, destroySocket, type Connection } from './helpers.js';

/** Namespace → exchange and queue prefix, unique per suite test. */
const exchangeOf = (namespace: string): string => `isync-conf.${namespace}`;

/** What each namespace made, so cleanup can delete it: its buses, connections and groups. */
const made = new Map<string, { buses: AmqpBus[]; connections: Connection[]; groups: Set<string> }>();
const connectionOf = new WeakMap<EventBus, Connection>();
let admin: Connection | undefined;

async function adminConnection(): Promise<Connection> {
  admin ??= await connect();
  return admin;
}

afterAll(async () => {
  await admin?.close().catch(() => {});
});

testEventBus({
  name: 'RabbitMQ (amqplib)',
  async createBus(namespace, options) {
    // One connection per bus, so a crash drops exactly one member.
    const connection = await connect();
    const bus = createAmqpBus({ ...options, connection, exchange: exchangeOf(namespace), reopenBaseMs: 50, reopenMaxMs: 500 });
    const entry = made.get(namespace) ?? { buses: [], connections: [], groups: new Set<string>() };
    made.set(namespace, entry);
    entry.buses.push(bus);
    entry.connections.push(connection);
    connectionOf.set(bus, connection);
    const subscribe = bus.subscribe.bind(bus);
    // Remember the groups the suite uses, for cleanup.
    bus.subscribe = (subscribeOptions) => {
      entry.groups.add(subscribeOptions.group);
      return subscribe(subscribeOptions);
    };
    return bus;
  },
  async publishRaw(namespace, type, payload) {
    const channel = await (await adminConnection()).createConfirmChannel();
    try {
      channel.publish(exchangeOf(namespace), type, Buffer.from(payload), { persistent: true });
      await channel.waitForConfirms();
    } finally {
      await channel.close();
    }
  },
  async crash(bus) {
    const connection = connectionOf.get(bus);
    if (!connection) throw new Error('crash: not a bus of this harness');
    // RabbitMQ requeues a dead client's unacked messages at once.
    destroySocket(connection);
  },
  redeliveryTimeoutMs: 15_000,
  // RabbitMQ keeps order per queue, but a retry goes through the retry queue and comes back later.
  ordered: false,
  async cleanup(namespace) {
    const entry = made.get(namespace);
    made.delete(namespace);
    if (!entry?.buses[0]) return;
    await deleteTopology(await adminConnection(), entry.buses[0], entry.groups);
    for (const connection of entry.connections) await connection.close().catch(() => {});
  },
});

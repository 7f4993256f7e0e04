/**
 * The shared EventBus conformance suite against the Redis Streams bus on the real Redis.
 * Short claim times make crash redelivery (XAUTOCLAIM by another member) take about a second.
 */
import type { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import type { EventBus } from '../../src/bus/types.js';
import { createRedisBus, redisStreamKey } from '../../src/redis/index.js';
import { testEventBus } from '../../src/testing/bus-conformance.js';
import { closeClients, deleteKeys, newClient } from './helpers.js';

const admin: Redis = newClient();
const clientsByBus = new Map<EventBus, Redis>();
const busesByNamespace = new Map<string, Set<EventBus>>();
const prefixOf = (namespace: string): string => `itest:conf:${namespace}`;

async function dispose(bus: EventBus): Promise<void> {
  await bus.close({ timeoutMs: 0 }).catch(() => {});
  const client = clientsByBus.get(bus);
  clientsByBus.delete(bus);
  if (client) await closeClients([client]);
}

afterAll(async () => {
  await Promise.all([...clientsByBus.keys()].map(dispose));
  await closeClients([admin]);
});

testEventBus({
  name: 'redis',
  async createBus(namespace, options) {
    const client = newClient();
    const bus = createRedisBus({ ...options, client, prefix: prefixOf(namespace), claimIdleMs: 1_000, claimIntervalMs: 200, blockMs: 1_000 });
    clientsByBus.set(bus, client);
    const set = busesByNamespace.get(namespace) ?? new Set<EventBus>();
    set.add(bus);
    busesByNamespace.set(namespace, set);
    return bus;
  },
  async publishRaw(namespace, type, payload) {
    await admin.xadd(redisStreamKey(prefixOf(namespace), type), '*', 'event', typeof payload === 'string' ? payload : Buffer.from(payload));
  },
  async crash(bus) {
    // The process "dies": its connection drops with nothing acked; close() then only stops its
    // timers and blocking connection (its acks fail on the dead client). Others claim its entries.
    clientsByBus.get(bus)?.disconnect();
    await bus.close({ timeoutMs: 0 });
  },
  redeliveryTimeoutMs: 15_000,
  ordered: true,
  async cleanup(namespace) {
    for (const bus of busesByNamespace.get(namespace) ?? []) await dispose(bus);
    busesByNamespace.delete(namespace);
    await deleteKeys(admin, prefixOf(namespace));
  },
});

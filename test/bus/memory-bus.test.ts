import { describe, expect, it } from 'vitest';
import { createMemoryBroker, createMemoryBus, type MemoryBroker } from '../../src/bus/memory-bus.js';
import { crashMemoryBus } from '../../src/bus/memory-bus.js';
import { testEventBus } from '../../src/testing/index.js';

const brokers = new Map<string, MemoryBroker>();
const brokerFor = (namespace: string): MemoryBroker => {
  let broker = brokers.get(namespace);
  if (broker === undefined) {
    broker = createMemoryBroker();
    brokers.set(namespace, broker);
  }
  return broker;
};

testEventBus({
  name: 'memory',
  createBus: async (namespace, options) => createMemoryBus({ ...options, broker: brokerFor(namespace) }),
  publishRaw: async (namespace, type, payload) => brokerFor(namespace).publishRaw(type, payload),
  crash: (bus) => crashMemoryBus(bus),
  redeliveryTimeoutMs: 5000,
  ordered: true,
  cleanup: async (namespace) => {
    brokers.delete(namespace);
  },
});

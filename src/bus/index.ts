export * from './types.js';
export * from './idempotency.js';
export * from './delivery.js';
export { createMemoryBroker, createMemoryBus } from './memory-bus.js';
export type { MemoryBroker, MemoryBrokerOptions, MemoryBusOptions, MemoryEventBus } from './memory-bus.js';

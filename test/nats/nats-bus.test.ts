/**
 * The shared EventBus conformance suite against the NATS JetStream bus on the real server.
 * Each namespace is its own stream and subject prefix; each bus its own connection, so a crash
 * drops exactly one member. A 2 s ack wait keeps crash redelivery quick.
 */
import { testEventBus } from '../../src/testing/index.js';
import { crashBus, createTestBus, deleteStream, publishRaw } from './nats-helpers.js';

testEventBus({
  name: 'nats-jetstream',
  createBus: async (namespace, options) => (await createTestBus(namespace, { ...options, ackWaitMs: 2000 })).bus,
  publishRaw,
  crash: crashBus,
  redeliveryTimeoutMs: 10_000,
  // One durable consumer per group and type, pulled one message at a time.
  ordered: true,
  cleanup: deleteStream,
});

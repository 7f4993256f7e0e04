/**
 * NATS JetStream transport for the `EventBus`: durable pull consumers per consumer group,
 * ack wait, max deliver, `working()` for long handlers, dead letters in the same stream.
 * The host passes its own connection and JetStream clients; `@nats-io/*` is never imported here.
 *
 * @module integration-sync/nats
 */
export { createNatsBus, type NatsBusOptions, type NatsEventBus } from './nats-bus.js';
export type {
  NatsConnectionLike,
  NatsConsumerConfigLike,
  NatsConsumerLike,
  NatsConsumerMessagesLike,
  NatsDeliveryInfoLike,
  NatsJetStreamLike,
  NatsJetStreamManagerLike,
  NatsJsMsgLike,
  NatsPubAckLike,
  NatsStreamConfigLike,
} from './types.js';

/**
 * RabbitMQ `EventBus` adapter ({@link createAmqpBus}): a durable topic exchange, a durable queue per consumer
 * group, manual acks, confirmed publishes, retry through a per-group TTL queue and a
 * dead-letter exchange. Takes the host's amqplib connection; `amqplib` is an optional peer
 * dependency that this entry never imports.
 *
 * @module integration-sync/amqp
 */
export { createAmqpBus, type AmqpBus, type AmqpBusOptions } from './amqp-bus.js';
export { ATTEMPT_HEADER, attemptOf, type ConsumerCancelledInfo } from './amqp-subscription.js';
export { groupTopology, type AmqpQueueType, type GroupTopology } from './topology.js';
export type { AmqpChannel, AmqpConfirmChannel, AmqpConnection, AmqpMessage, AmqpPublishOptions } from './types.js';

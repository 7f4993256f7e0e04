import type { AmqpChannel } from './types.js';

/** Queue type of the group, retry and dead-letter queues. */
export type AmqpQueueType = 'quorum' | 'classic';

/** The names of everything one consumer group uses on the broker. */
export interface GroupTopology {
  /** Topic exchange events are published to (routing key = event type). */
  exchange: string;
  /** Direct exchange dead-letter records (and broker-side rejects) go to. */
  deadLetterExchange: string;
  /** `<queuePrefix>.<group>`: the work queue the group's members share. */
  queue: string;
  /** `<queue>.retry`: holds failed events for their backoff, then dead-letters them back to `queue`. */
  retryQueue: string;
  /** `<queue>.dead-letter`: keeps the group's dead-letter records. */
  deadLetterQueue: string;
}

/** Builds the names for `group`. */
export function groupTopology(exchange: string, queuePrefix: string, group: string): GroupTopology {
  const queue = `${queuePrefix}.${group}`;
  return {
    exchange,
    deadLetterExchange: `${exchange}.dlx`,
    queue,
    retryQueue: `${queue}.retry`,
    deadLetterQueue: `${queue}.dead-letter`,
  };
}

/** Settings that shape the declared queues. */
export interface TopologySettings {
  queueType: AmqpQueueType;
  /** Quorum only: returns (crashes, channel closes) before the broker dead-letters a message itself. */
  deliveryLimit: number;
}

/**
 * Declares (idempotently) the exchanges and the group's three queues and binds `types`.
 * Arguments are fixed at first declaration: a queue that already exists with other arguments
 * makes RabbitMQ close the channel with 406 PRECONDITION_FAILED.
 */
export async function declareGroupTopology(channel: AmqpChannel, names: GroupTopology, types: readonly string[], settings: TopologySettings): Promise<void> {
  const quorum = settings.queueType === 'quorum';
  await channel.assertExchange(names.exchange, 'topic', { durable: true });
  await channel.assertExchange(names.deadLetterExchange, 'direct', { durable: true });
  await channel.assertQueue(names.deadLetterQueue, {
    durable: true,
    arguments: quorum ? { 'x-queue-type': 'quorum' } : {},
  });
  await channel.bindQueue(names.deadLetterQueue, names.deadLetterExchange, names.queue);
  await channel.assertQueue(names.queue, {
    durable: true,
    arguments: {
      // Broker-side rejects (quorum delivery limit, a nack without requeue) keep the raw message here.
      'x-dead-letter-exchange': names.deadLetterExchange,
      'x-dead-letter-routing-key': names.queue,
      ...(quorum ? { 'x-queue-type': 'quorum', 'x-delivery-limit': settings.deliveryLimit } : {}),
    },
  });
  await channel.assertQueue(names.retryQueue, {
    durable: true,
    arguments: {
      // An expired retry goes back to the work queue through the default exchange.
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': names.queue,
      // at-least-once dead-lettering needs reject-publish overflow; without it a quorum queue
      // may drop a message whose move back to the work queue fails.
      ...(quorum ? { 'x-queue-type': 'quorum', 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } : {}),
    },
  });
  for (const type of types) await channel.bindQueue(names.queue, names.exchange, type);
}

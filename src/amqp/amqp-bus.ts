import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { throwIfAborted } from '../core/abort.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import { childLogger, silentLogger, type Logger } from '../core/logger.js';
import { assertMs, assertNonEmptyString, assertPositiveInt } from '../core/options.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, type CloudEvent } from '../events/envelope.js';
import { DeliveryPipeline, encodeForPublish, recordPublished, type BusOptions } from '../bus/delivery.js';
import { createMemoryIdempotencyStore } from '../bus/idempotency.js';
import type { CloseOptions, EventBus, PublishOptions, SubscribeOptions, Subscription } from '../bus/types.js';
import { AmqpSubscription, type ConsumerCancelledInfo } from './amqp-subscription.js';
import { ConfirmPublisher } from './confirm-publisher.js';
import { groupTopology, type AmqpQueueType, type GroupTopology } from './topology.js';
import type { AmqpConnection } from './types.js';

/** Options of {@link createAmqpBus}. */
export interface AmqpBusOptions extends BusOptions {
  /**
   * The host's amqplib connection (`await amqplib.connect(url)`). The bus opens its own channels
   * on it and closes them on `close()`, but never closes the connection itself.
   */
  connection: AmqpConnection;
  /** Durable topic exchange events are published to, with the event type as routing key. @default 'integration-sync' */
  exchange?: string;
  /** Group queues are named `<queuePrefix>.<group>`. @default the exchange name */
  queuePrefix?: string;
  /**
   * Type of the queues the bus declares. Quorum queues are replicated and count redeliveries
   * (`x-delivery-count`); classic queues only flag them. Fixed once a queue exists. @default 'quorum'
   */
  queueType?: AmqpQueueType;
  /**
   * Quorum only: how many times a message may come back unacked (consumer crashes, channel
   * closes) before RabbitMQ dead-letters it itself, so a message that kills its consumer does not loop forever. @default 20
   */
  deliveryLimit?: number;
  /**
   * Reject `publish` with `ERR_PUBLISH_FAILED` when no queue is bound for the event type. Off by
   * default: a topic exchange drops events no group subscribes to, which is usually intended.
   * @default false
   */
  mandatory?: boolean;
  /** First delay before a closed consumer channel is reopened (exponential, jittered, at least this). @default 500 */
  reopenBaseMs?: number;
  /** Longest delay between reopen attempts. @default 30000 */
  reopenMaxMs?: number;
  /** Called (besides an error log line) when RabbitMQ cancels a consumer, e.g. because its queue was deleted. */
  onConsumerCancelled?: (info: ConsumerCancelledInfo) => void;
}

/** The RabbitMQ {@link EventBus}, with `[Symbol.asyncDispose]`. */
export interface AmqpBus extends EventBus {
  /** The topic exchange events go to. */
  readonly exchange: string;
  /** Names of the queues a group uses: `{ queue, retryQueue, deadLetterQueue, exchange, deadLetterExchange }`. */
  topology(group: string): GroupTopology;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * An {@link EventBus} on RabbitMQ, through the host's amqplib connection.
 *
 * - publish: JSON on a confirm channel to a durable topic exchange, routing key = event type,
 *   persistent; resolves once the broker confirms.
 * - subscribe: a durable queue per group, bound to each type, consumed with manual ack and
 *   prefetch = concurrency on a channel of its own. A failed handler's message is copied, with
 *   `x-attempt` + 1, to the group's retry queue with a per-message TTL (the backoff) that
 *   dead-letters it back to the group queue; the original is acked only once the copy is
 *   confirmed, so a crash at any point duplicates at worst (and the idempotency store skips
 *   the duplicate). Dead-letter records go, confirmed, to the dead-letter exchange and the
 *   group's `<queue>.dead-letter` queue before the original is acked.
 * - A channel the broker closes is replaced (publishing) or reopened with backoff (consuming);
 *   the connection stays up.
 *
 * @example
 * import amqplib from 'amqplib';
 * import { createAmqpBus } from 'integration-sync/amqp';
 *
 * const connection = await amqplib.connect('amqp://localhost');
 * const bus = createAmqpBus({ connection, exchange: 'integration-sync' });
 * // ... on shutdown:
 * await bus.close();
 * await connection.close(); // the connection stays the host's to close
 */
export function createAmqpBus(options: AmqpBusOptions): AmqpBus {
  return new AmqpEventBus(options);
}

class AmqpEventBus implements AmqpBus {
  readonly exchange: string;
  private readonly queuePrefix: string;
  private readonly options: AmqpBusOptions;
  private readonly connection: AmqpConnection;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly publisher: ConfirmPublisher;
  private readonly busOptions: BusOptions;
  private readonly subscriptions = new Set<AmqpSubscription>();
  private readonly settings: { queueType: AmqpQueueType; deliveryLimit: number };
  private readonly closeTimeoutMs: number;
  private readonly maxPayloadBytes: number;
  private closed = false;
  private closing: Promise<void> | undefined;
  private connectionAlive = true;
  private readonly onConnectionClose = (): void => this.connectionLost();
  private readonly onConnectionError = (error: Error): void => {
    this.logger.error({ err: summarizeError(error) }, 'AMQP connection error');
  };

  constructor(options: AmqpBusOptions) {
    const connection = options?.connection as Partial<AmqpConnection> | undefined;
    if (!connection || typeof connection.createConfirmChannel !== 'function' || typeof connection.createChannel !== 'function' || typeof connection.on !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createAmqpBus: connection must be an amqplib promise-API connection (await amqplib.connect(url))');
    }
    this.options = options;
    this.connection = options.connection;
    this.exchange = assertNonEmptyString('exchange', options.exchange ?? 'integration-sync');
    this.queuePrefix = assertNonEmptyString('queuePrefix', options.queuePrefix ?? this.exchange);
    const queueType = options.queueType ?? 'quorum';
    if (queueType !== 'quorum' && queueType !== 'classic') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `queueType must be 'quorum' or 'classic'; got ${String(queueType)}`);
    }
    this.settings = { queueType, deliveryLimit: assertPositiveInt('deliveryLimit', options.deliveryLimit ?? 20, 10_000) };
    assertMs('reopenBaseMs', options.reopenBaseMs ?? 500);
    assertMs('reopenMaxMs', options.reopenMaxMs ?? 30_000);
    this.closeTimeoutMs = assertMs('closeTimeoutMs', options.closeTimeoutMs ?? 10_000, 0);
    this.maxPayloadBytes = assertPositiveInt('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
    this.logger = childLogger(options.logger ?? silentLogger, { component: 'amqp-bus' });
    this.clock = options.clock ?? systemClock;
    // One idempotency store for all the bus's subscriptions, as BusOptions promises.
    this.busOptions = { ...options, logger: this.logger, idempotency: options.idempotency ?? createMemoryIdempotencyStore() };
    this.publisher = new ConfirmPublisher(this.connection, this.logger);
    this.connection.on('close', this.onConnectionClose);
    this.connection.on('error', this.onConnectionError);
  }

  topology(group: string): GroupTopology {
    return groupTopology(this.exchange, this.queuePrefix, group);
  }

  async publish(event: CloudEvent, options: PublishOptions = {}): Promise<void> {
    if (this.closed) throw new IntegrationSyncError('ERR_CLOSED', 'publish: the AMQP bus is closed; create a new bus');
    throwIfAborted(options.signal);
    if (!this.connectionAlive) throw new IntegrationSyncError('ERR_PUBLISH_FAILED', 'publish: the AMQP connection is closed; reconnect and create a new bus');
    const body = encodeForPublish(event, this.maxPayloadBytes);
    await this.publisher.publish(
      this.exchange,
      event.type,
      Buffer.from(body),
      {
        persistent: true,
        messageId: event.id,
        contentType: 'application/json',
        type: event.type,
        timestamp: Math.floor(this.clock.now() / 1000),
        mandatory: this.options.mandatory === true,
      },
      options.signal,
    );
    recordPublished(event, this.busOptions);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new IntegrationSyncError('ERR_CLOSED', 'subscribe: the AMQP bus is closed; create a new bus');
    if (!this.connectionAlive) throw new IntegrationSyncError('ERR_CLOSED', 'subscribe: the AMQP connection is closed; reconnect and create a new bus');
    let pipeline: DeliveryPipeline;
    try {
      pipeline = new DeliveryPipeline(options, this.busOptions);
    } catch (cause) {
      if (cause instanceof IntegrationSyncError) throw cause;
      throw new IntegrationSyncError('ERR_INVALID_OPTION', (cause as Error).message, { cause });
    }
    const concurrency = assertPositiveInt('concurrency', options.concurrency ?? 1, 65_535);
    const subscription = new AmqpSubscription({
      connection: this.connection,
      publisher: this.publisher,
      pipeline,
      names: this.topology(pipeline.group),
      settings: this.settings,
      concurrency,
      logger: childLogger(this.logger, { group: pipeline.group }),
      clock: this.clock,
      closeTimeoutMs: this.closeTimeoutMs,
      reopenBaseMs: this.options.reopenBaseMs ?? 500,
      reopenMaxMs: this.options.reopenMaxMs ?? 30_000,
      connectionAlive: () => this.connectionAlive,
      onConsumerCancelled: this.options.onConsumerCancelled,
      onClosed: (closed) => this.subscriptions.delete(closed),
    });
    this.subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      this.subscriptions.delete(subscription);
      throw error;
    }
    if (this.closed) {
      await subscription.close();
      throw new IntegrationSyncError('ERR_CLOSED', 'subscribe: the AMQP bus closed while subscribing');
    }
    return subscription;
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(options);
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async doClose(options: CloseOptions): Promise<void> {
    this.closed = true;
    // Subscriptions first: their last retries and dead-letters still need the publish channel.
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close(options)));
    await this.publisher.close();
    this.connection.off('close', this.onConnectionClose);
    this.connection.off('error', this.onConnectionError);
  }

  private connectionLost(): void {
    if (!this.connectionAlive) return;
    this.connectionAlive = false;
    if (!this.closed) this.logger.error({ exchange: this.exchange }, 'AMQP connection closed; this bus can no longer publish or consume; reconnect and create a new bus');
    for (const subscription of this.subscriptions) subscription.connectionLost();
  }
}

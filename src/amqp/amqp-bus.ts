import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { DEFAULT_STOP_TIMEOUT_MS, raceSignal, settleWithin, throwIfAborted } from '../core/abort.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import { childLogger, silentLogger, type Logger } from '../core/logger.js';
import { assertMs, assertNonEmptyString, assertPositiveInt } from '../core/options.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, type CloudEvent } from '../events/envelope.js';
import { DeliveryPipeline, encodeForPublish, recordPublished, type BusOptions } from '../bus/delivery.js';
import { createMemoryIdempotencyStore } from '../bus/idempotency.js';
import type { CloseOptions, EventBus, PublishOptions, SubscribeOptions, Subscription } from '../bus/types.js';
import { AmqpSubscription, type ConsumerCancelledInfo } from './amqp-subscription.js';
import { ConfirmPublisher } from './confirm-publisher.js';
import { CHANNEL_CLOSE_TIMEOUT_MS } from './close-channel.js';
import { groupTopology, type AmqpQueueType, type GroupTopology, type TopologySettings } from './topology.js';
import type { AmqpConnection } from './types.js';

/** Options of {@link createAmqpBus}. */
export interface AmqpBusOptions extends BusOptions {
  /**
   * The host's amqplib connection (`await amqplib.connect(url)`). The bus opens its own channels
   * on it and closes them on `close()`, but never closes the connection itself. When this
   * connection drops, the bus cannot go on (publish rejects, consumers stop): pass `connect`
   * instead to have it reconnect. Give exactly one of `connection` and `connect`.
   */
  connection?: AmqpConnection;
  /**
   * Opens a connection (e.g. `() => amqplib.connect(url)`). The bus calls it lazily, again after
   * the connection drops (broker restart, network), reopens its consumers on the new one, and
   * closes the connections it got from it on `close()`.
   */
  connect?: () => Promise<AmqpConnection>;
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
  /** Same as `close()` with its defaults, for `await using`. */
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
 *   RabbitMQ expires per-message TTLs at the head of a queue only, so a retry waits at least
 *   its backoff and at most the longest backoff pending in its group (bounded by `retryMaxMs`).
 * - A channel the broker closes is replaced (publishing) or reopened with backoff (consuming);
 *   the connection stays up. A consumer the broker cancels (queue deleted) is reported through
 *   `onConsumerCancelled` and resumes once the queue is declared again.
 * - With `connect` instead of `connection`, a dropped connection is replaced and the consumers
 *   re-established on the new one.
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
  private readonly connect: (() => Promise<AmqpConnection>) | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly publisher: ConfirmPublisher;
  private readonly busOptions: BusOptions;
  private readonly subscriptions = new Set<AmqpSubscription>();
  private readonly settings: TopologySettings;
  private readonly closeTimeoutMs: number;
  private readonly maxPayloadBytes: number;
  private readonly reopenBaseMs: number;
  private readonly reopenMaxMs: number;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** The live connection, if any. */
  private connection: AmqpConnection | undefined;
  private connecting: Promise<AmqpConnection> | undefined;
  /** Every connection `connect` gave us that is not known closed: the bus closes them. */
  private readonly owned = new Set<AmqpConnection>();
  private readonly detachers = new Map<AmqpConnection, () => void>();
  /** Aborted by close(): publishes and subscribes waiting for a connection give up then. */
  private readonly closeSignal = new AbortController();

  constructor(options: AmqpBusOptions) {
    const given = options?.connection as Partial<AmqpConnection> | undefined;
    const connect = options?.connect;
    if ((given === undefined) === (connect === undefined)) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createAmqpBus: give exactly one of connection (an amqplib connection) and connect (a function returning one)');
    }
    if (connect !== undefined && typeof connect !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createAmqpBus: connect must be a function returning an amqplib connection');
    }
    if (given !== undefined && !isConnection(given)) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createAmqpBus: connection must be an amqplib promise-API connection (await amqplib.connect(url))');
    }
    this.options = options;
    this.connect = connect;
    this.exchange = assertAmqpName('exchange', assertNonEmptyString('exchange', options.exchange ?? 'integration-sync'), '.dlx');
    this.queuePrefix = assertAmqpName('queuePrefix', assertNonEmptyString('queuePrefix', options.queuePrefix ?? this.exchange), '.x.dead-letter');
    const queueType = options.queueType ?? 'quorum';
    if (queueType !== 'quorum' && queueType !== 'classic') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `queueType must be 'quorum' or 'classic'; got ${String(queueType)}`);
    }
    this.settings = { queueType, deliveryLimit: assertPositiveInt('deliveryLimit', options.deliveryLimit ?? 20, 10_000) };
    this.reopenBaseMs = assertMs('reopenBaseMs', options.reopenBaseMs ?? 500);
    this.reopenMaxMs = assertMs('reopenMaxMs', options.reopenMaxMs ?? 30_000);
    this.closeTimeoutMs = assertMs('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, 0);
    this.maxPayloadBytes = assertPositiveInt('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
    this.logger = childLogger(options.logger ?? silentLogger, { component: 'amqp-bus' });
    this.clock = options.clock ?? systemClock;
    // One idempotency store for all the bus's subscriptions, as BusOptions promises.
    this.busOptions = { ...options, logger: this.logger, idempotency: options.idempotency ?? createMemoryIdempotencyStore() };
    this.publisher = new ConfirmPublisher(async () => (await this.currentConnection()).createConfirmChannel(), this.logger);
    if (options.connection) this.adopt(options.connection, false);
  }

  topology(group: string): GroupTopology {
    return groupTopology(this.exchange, this.queuePrefix, group);
  }

  /**
   * Publishes `event` to the exchange with its type as routing key and resolves once RabbitMQ
   * confirms it. Aborting `signal` rejects the call, but a message already written may still
   * be delivered: publish again with the same id, consumers de-duplicate.
   */
  async publish(event: CloudEvent, options: PublishOptions = {}): Promise<void> {
    if (this.closed) throw new IntegrationSyncError('ERR_CLOSED', 'publish: the AMQP bus is closed; create a new bus');
    throwIfAborted(options.signal);
    const body = encodeForPublish(event, this.maxPayloadBytes);
    if (Buffer.byteLength(event.type) > AMQP_NAME_MAX_BYTES) {
      throw new IntegrationSyncError('ERR_PUBLISH_FAILED', `publish: event type ${JSON.stringify(event.type.slice(0, 100))}… is longer than the 255 bytes of an AMQP routing key`);
    }
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

  /** Declares the group's queues and bindings, then consumes; resolves once the consumer is registered. */
  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new IntegrationSyncError('ERR_CLOSED', 'subscribe: the AMQP bus is closed; create a new bus');
    // Reports bad subscribe options as ERR_INVALID_OPTION.
    const pipeline = new DeliveryPipeline(options, this.busOptions);
    const concurrency = assertPositiveInt('concurrency', options.concurrency ?? 1, 65_535);
    assertAmqpName('group', `${this.queuePrefix}.${pipeline.group}`, '.dead-letter');
    for (const type of pipeline.types) {
      assertAmqpName('event type', type);
      // A topic binding treats these words as wildcards: the group would receive every event type.
      if (type.split('.').some((word) => word === '*' || word === '#')) {
        throw new IntegrationSyncError('ERR_INVALID_OPTION', `subscribe: event type ${JSON.stringify(type.slice(0, 100))} has a '*' or '#' word, which RabbitMQ would bind as a wildcard; subscribe to each type by name`);
      }
    }
    const subscription = new AmqpSubscription({
      openChannel: async () => (await this.currentConnection()).createChannel(),
      publisher: this.publisher,
      pipeline,
      names: this.topology(pipeline.group),
      settings: this.settings,
      concurrency,
      logger: childLogger(this.logger, { group: pipeline.group }),
      clock: this.clock,
      closeTimeoutMs: this.closeTimeoutMs,
      reopenBaseMs: this.reopenBaseMs,
      reopenMaxMs: this.reopenMaxMs,
      canReopen: () => !this.closed && (this.connection !== undefined || this.connect !== undefined),
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
    this.closeSignal.abort(new IntegrationSyncError('ERR_CLOSED', 'the AMQP bus closed while connecting; create a new bus'));
    // Subscriptions first: their last retries and dead-letters still need the publish channel.
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close(options)));
    await this.publisher.close();
    // A connect() that never settles (a broker host that drops packets) must not hold close();
    // should it resolve later, the connection is closed as soon as it arrives.
    if (this.connecting) await settleWithin([this.connecting], CHANNEL_CLOSE_TIMEOUT_MS);
    for (const detach of this.detachers.values()) detach();
    this.detachers.clear();
    // Only what `connect` gave us is ours to close; a host's `connection` stays open.
    await Promise.all([...this.owned].map((connection) => settleWithin([Promise.resolve().then(() => connection.close?.())], CHANNEL_CLOSE_TIMEOUT_MS)));
    this.owned.clear();
    this.connection = undefined;
  }

  /** The live connection; with `connect`, (re)connects when there is none. */
  private currentConnection(): Promise<AmqpConnection> {
    if (this.closed) return Promise.reject(new IntegrationSyncError('ERR_CLOSED', 'the AMQP bus is closed; create a new bus'));
    if (this.connection) return Promise.resolve(this.connection);
    const connect = this.connect;
    if (!connect) {
      return Promise.reject(new IntegrationSyncError('ERR_CLOSED', 'the AMQP connection is closed; reconnect and create a new bus (or pass connect to let the bus reconnect)'));
    }
    this.connecting ??= (async () => {
      try {
        const connection = await connect();
        if (!isConnection(connection)) {
          throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createAmqpBus: connect() must resolve to an amqplib promise-API connection');
        }
        if (this.closed) {
          await settleWithin([Promise.resolve().then(() => connection.close?.())], CHANNEL_CLOSE_TIMEOUT_MS);
          throw new IntegrationSyncError('ERR_CLOSED', 'the AMQP bus is closed; create a new bus');
        }
        this.adopt(connection, true);
        this.logger.info({ exchange: this.exchange }, 'AMQP connection open');
        return connection;
      } finally {
        this.connecting = undefined;
      }
    })();
    return raceSignal(this.connecting, this.closeSignal.signal);
  }

  private adopt(connection: AmqpConnection, owned: boolean): void {
    const onClose = (): void => this.connectionLost(connection);
    const onError = (error: Error): void => {
      this.logger.error({ err: summarizeError(error) }, 'AMQP connection error');
    };
    connection.on('close', onClose);
    connection.on('error', onError);
    this.detachers.set(connection, () => {
      connection.off('close', onClose);
      connection.off('error', onError);
    });
    if (owned) this.owned.add(connection);
    this.connection = connection;
  }

  private connectionLost(connection: AmqpConnection): void {
    this.detachers.get(connection)?.();
    this.detachers.delete(connection);
    this.owned.delete(connection);
    if (this.connection !== connection) return;
    this.connection = undefined;
    if (this.closed) return;
    if (this.connect) {
      this.logger.warn({ exchange: this.exchange }, 'AMQP connection closed; reconnecting');
      return;
    }
    this.logger.error({ exchange: this.exchange }, 'AMQP connection closed; this bus can no longer publish or consume; reconnect and create a new bus');
    for (const subscription of this.subscriptions) subscription.connectionLost();
  }
}

/** Exchange and queue names and routing keys are AMQP short strings. */
const AMQP_NAME_MAX_BYTES = 255;

/** Checks that `value`, plus the longest `suffix` the bus appends to it, fits an AMQP name. */
function assertAmqpName(name: string, value: string, suffix = ''): string {
  const bytes = Buffer.byteLength(value) + Buffer.byteLength(suffix);
  if (bytes > AMQP_NAME_MAX_BYTES) {
    throw new IntegrationSyncError(
      'ERR_INVALID_OPTION',
      `${name} makes an AMQP name of ${bytes} bytes${suffix ? ` (with "${suffix}")` : ''}; RabbitMQ allows ${AMQP_NAME_MAX_BYTES}: use a shorter one`,
    );
  }
  return value;
}

function isConnection(value: unknown): value is AmqpConnection {
  const candidate = value as Partial<AmqpConnection> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.createChannel === 'function' &&
    typeof candidate.createConfirmChannel === 'function' &&
    typeof candidate.on === 'function' &&
    typeof candidate.off === 'function'
  );
}

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { abortReason, DEFAULT_STOP_TIMEOUT_MS, raceSignal, throwIfAborted } from '../core/abort.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import { childLogger, silentLogger } from '../core/logger.js';
import { assertMs, assertNonEmptyString, assertPositiveInt } from '../core/options.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, type CloudEvent } from '../events/envelope.js';
import { DeliveryPipeline, encodeForPublish, recordPublished, type BusOptions } from '../bus/delivery.js';
import { createMemoryIdempotencyStore } from '../bus/idempotency.js';
import type { CloseOptions, EventBus, PublishOptions, SubscribeOptions, Subscription } from '../bus/types.js';
import type { RedisBlockingClientLike, RedisClientLike } from './redis-client.js';
import { EVENT_FIELD, RedisSubscription } from './redis-subscription.js';

/** Options of {@link createRedisBus}. */
export interface RedisBusOptions extends BusOptions {
  /**
   * The host's Redis client (an ioredis 5 `Redis` fits). Publishing, acks and claims go through
   * it; the bus never quits it. Use `prefix` for namespacing rather than an ioredis `keyPrefix`,
   * which this adapter is not tested with.
   */
  client: RedisClientLike;
  /**
   * Makes the connection a subscription blocks on in `XREADGROUP` (one per subscription, closed
   * with it), so a blocked read never holds up publishing or acks. It must not set a command
   * timeout shorter than `blockMs`. @default `() => client.duplicate()`
   */
  createBlockingClient?: () => RedisBlockingClientLike;
  /** Key prefix: streams are `<prefix>:stream:<event type>`, dead letters `<prefix>:dead-letter`. @default "integration-sync" */
  prefix?: string;
  /**
   * Approximate length each stream is trimmed to on publish (`MAXLEN ~`). An entry trimmed away
   * before any member handled it is lost (logged as an error), so size it above the worst backlog.
   * @default 100000
   */
  maxLen?: number;
  /** Approximate length of the dead-letter stream. @default 100000 */
  deadLetterMaxLen?: number;
  /** How long one `XREADGROUP` blocks before it is issued again. @default 5000 */
  blockMs?: number;
  /**
   * How long an entry must sit unacked, with no keep-alive from its holder, before another member
   * claims it (`XAUTOCLAIM`): the redelivery delay after a crash. Held entries are kept alive
   * every `claimIdleMs / 3`, so long handlers are not taken away. @default 30000
   */
  claimIdleMs?: number;
  /** How often each subscription looks for idle entries to claim. @default 5000 */
  claimIntervalMs?: number;
  /**
   * Consumers idle longer than this with no pending entry are removed from the group (checked and
   * deleted atomically; a consumer with pending entries is never removed). `0` turns it off.
   * @default 86400000 (24 h)
   */
  consumerCleanupIdleMs?: number;
  /**
   * Where a new consumer group starts: `$` takes events published from now on (as the memory bus
   * and a fresh queue do), `0` takes the stream's whole retained history. @default "$"
   */
  startId?: '$' | '0';
  /** Consumer names are `<consumerPrefix>-<random>`, unique per subscription. @default `<hostname>-<pid>` */
  consumerPrefix?: string;
}

/** The Redis Streams {@link EventBus}. */
export interface RedisEventBus extends EventBus {
  /** The stream key events of `type` are published to. */
  streamKey(type: string): string;
  /** The stream dead-letter records are written to (field `record`, JSON). */
  readonly deadLetterStream: string;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_PREFIX = 'integration-sync';

/** The stream key events of `type` are published to under `prefix` (for hosts that publish or inspect directly). */
export function redisStreamKey(prefix: string, type: string): string {
  return `${prefix}:stream:${type}`;
}

/**
 * Creates an {@link EventBus} on Redis Streams (Redis 6.2 or later; 7 recommended).
 *
 * Layout: one stream per event type (`<prefix>:stream:<type>`, field `event` holding the
 * CloudEvent JSON, trimmed with `MAXLEN ~ maxLen`); one consumer group per subscription group on
 * each stream it takes; one consumer per subscription. A subscription to several types reads all
 * their streams in one `XREADGROUP` on its own connection (`client.duplicate()`), so no blocked
 * read ever delays a publish.
 *
 * Delivery: each entry goes through the shared {@link DeliveryPipeline}, with the attempt taken
 * from Redis's delivery count. Ack is `XACK`; a retry stays pending, is re-taken by the same member
 * after the backoff (its delivery count bumped by `XCLAIM`) and kept alive meanwhile; a dead
 * letter is `XADD`ed to `<prefix>:dead-letter` (field `record`) and then acked. A member that dies
 * leaves its entries pending: after `claimIdleMs` another member takes them with `XAUTOCLAIM`.
 * Entries trimmed while pending are cleared and logged, never crash the loop. A dropped or
 * half-open blocking connection is replaced and the loop goes on; a deleted stream gets its group
 * back (from `0`, so nothing added since is skipped).
 *
 * Not promised: order across retries and claims (a retried or claimed entry runs after later
 * ones), nor order across types. An entry that kills its process every time is claimed again
 * and again (the pipeline can only dead-letter what returns). Runs on one Redis node or Sentinel;
 * Redis Cluster is not supported (one read spans several stream keys).
 *
 * @example
 * import { Redis } from 'ioredis';
 * import { createRedisBus, createRedisIdempotencyStore } from 'integration-sync/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL);
 * const bus = createRedisBus({ client: redis, idempotency: createRedisIdempotencyStore({ client: redis }) });
 */
export function createRedisBus(options: RedisBusOptions): RedisEventBus {
  const client = options.client;
  if (typeof client !== 'object' || client === null || typeof client.xadd !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRedisBus: client must be a Redis client (for example an ioredis 5 Redis instance)');
  }
  const createBlockingClient = options.createBlockingClient ?? (() => client.duplicate());
  if (typeof createBlockingClient !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRedisBus: createBlockingClient must be a function returning a new connection');
  }
  const prefix = assertNonEmptyString('prefix', options.prefix ?? DEFAULT_PREFIX);
  const maxLen = assertPositiveInt('maxLen', options.maxLen ?? 100_000);
  const deadLetterMaxLen = assertPositiveInt('deadLetterMaxLen', options.deadLetterMaxLen ?? 100_000);
  const blockMs = assertMs('blockMs', options.blockMs ?? 5_000, 10, 600_000);
  const claimIdleMs = assertMs('claimIdleMs', options.claimIdleMs ?? 30_000, 100);
  const claimIntervalMs = assertMs('claimIntervalMs', options.claimIntervalMs ?? 5_000, 10);
  const cleanupIdle = assertMs('consumerCleanupIdleMs', options.consumerCleanupIdleMs ?? 86_400_000, 0);
  const closeTimeoutMs = assertMs('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, 0);
  const maxPayloadBytes = assertPositiveInt('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
  const startId = options.startId ?? '$';
  if (startId !== '$' && startId !== '0') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'startId must be "$" (new events only) or "0" (whole stream)');
  }
  const consumerPrefix = assertNonEmptyString('consumerPrefix', options.consumerPrefix ?? `${hostname()}-${process.pid}`);
  const clock = options.clock ?? systemClock;
  const logger = childLogger(options.logger ?? silentLogger, { component: 'redis-bus' });
  // One store for all subscriptions of this bus, as on every bus; share a Redis store across replicas.
  const pipelineOptions: BusOptions = { ...options, logger, idempotency: options.idempotency ?? createMemoryIdempotencyStore() };
  const deadLetterStream = `${prefix}:dead-letter`;
  const subscriptions = new Set<RedisSubscription>();
  let closing: Promise<void> | undefined;

  const closedError = (what: string): IntegrationSyncError =>
    new IntegrationSyncError('ERR_CLOSED', `${what}: the Redis bus is closed; create a new bus`);

  async function publish(event: CloudEvent, publishOptions: PublishOptions = {}): Promise<void> {
    if (closing) throw closedError('publish');
    const { signal } = publishOptions;
    throwIfAborted(signal);
    const payload = encodeForPublish(event, maxPayloadBytes);
    const added = client.xadd(redisStreamKey(prefix, event.type), 'MAXLEN', '~', maxLen, '*', EVENT_FIELD, payload);
    try {
      // An abort stops the wait, not the write: the event may still land (a duplicate, never a loss).
      await raceSignal(added, signal);
    } catch (cause) {
      if (signal?.aborted) throw abortReason(signal);
      throw new IntegrationSyncError('ERR_PUBLISH_FAILED', `publish: Redis did not take ${event.type}; check the connection and retry`, {
        cause,
        details: { eventType: event.type, eventId: event.id },
      });
    }
    recordPublished(event, { ...options, logger });
  }

  async function subscribe(subscribeOptions: SubscribeOptions): Promise<Subscription> {
    if (closing) throw closedError('subscribe');
    // Reports bad subscribe options as ERR_INVALID_OPTION.
    const pipeline = new DeliveryPipeline(subscribeOptions, pipelineOptions);
    const concurrency = assertPositiveInt('concurrency', subscribeOptions.concurrency ?? 1, 10_000);
    const consumer = `${consumerPrefix}-${randomBytes(6).toString('hex')}`;
    const subscription = new RedisSubscription({
      client,
      createBlockingClient,
      pipeline,
      streams: pipeline.types.map((type) => redisStreamKey(prefix, type)),
      deadLetterStream,
      deadLetterMaxLen,
      consumer,
      concurrency,
      blockMs,
      claimIdleMs,
      claimIntervalMs,
      consumerCleanupIdleMs: cleanupIdle === 0 ? undefined : cleanupIdle,
      startId,
      closeTimeoutMs,
      clock,
      logger: childLogger(logger, { group: pipeline.group, consumer }),
      onClosed: (closed) => subscriptions.delete(closed),
    });
    try {
      await subscription.start();
    } catch (cause) {
      await subscription.close({ timeoutMs: 0 });
      throw new IntegrationSyncError('ERR_CLOSED', `subscribe: could not create consumer group ${pipeline.group} in Redis; check the connection and retry`, { cause });
    }
    if (closing) {
      await subscription.close({ timeoutMs: 0 });
      throw closedError('subscribe');
    }
    subscriptions.add(subscription);
    logger.info({ group: pipeline.group, types: pipeline.types, consumer }, 'subscribed');
    return subscription;
  }

  function close(closeOptions: CloseOptions = {}): Promise<void> {
    closing ??= Promise.all([...subscriptions].map((subscription) => subscription.close(closeOptions))).then(() => undefined);
    return closing;
  }

  return {
    publish,
    subscribe,
    close,
    streamKey: (type: string) => redisStreamKey(prefix, type),
    deadLetterStream,
    [Symbol.asyncDispose]: () => close(),
  };
}


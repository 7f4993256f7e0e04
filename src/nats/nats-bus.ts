import { createHash } from 'node:crypto';
import { abortReason, DEFAULT_STOP_TIMEOUT_MS, raceSignal, throwIfAborted } from '../core/abort.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import { childLogger, silentLogger } from '../core/logger.js';
import { assertMs, assertNonEmptyString, assertPositiveInt } from '../core/options.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, eventSubject, safeJsonParse, type CloudEvent } from '../events/envelope.js';
import { noopAuditSink } from '../audit/types.js';
import { DeliveryPipeline, encodeDeadLetter, encodeForPublish, recordPublished, safeAudit, type BusOptions } from '../bus/delivery.js';
import { createMemoryIdempotencyStore } from '../bus/idempotency.js';
import type { CloseOptions, DeadLetterRecord, EventBus, PublishOptions, SubscribeOptions, Subscription } from '../bus/types.js';
import { NatsSubscription, type NatsConsumerBinding } from './nats-subscription.js';
import type {
  NatsConnectionLike,
  NatsConsumerConfigLike,
  NatsJetStreamLike,
  NatsJetStreamManagerLike,
  NatsJsMsgLike,
} from './types.js';

/** Options of {@link createNatsBus}. Durations are in milliseconds; the bus converts them for JetStream. */
export interface NatsBusOptions extends BusOptions {
  /** The host's connection (`connect()` of `@nats-io/transport-node`). The bus never closes it unless `closeConnection` is set. */
  connection: NatsConnectionLike;
  /** `jetstream(connection)` from `@nats-io/jetstream`. */
  jetstream: NatsJetStreamLike;
  /** `jetstreamManager(connection)` from `@nats-io/jetstream`. @default `jetstream.jetstreamManager()` */
  manager?: NatsJetStreamManagerLike;
  /** The JetStream stream holding this bus's events (one per namespace). @default 'INTEGRATION_SYNC' */
  stream?: string;
  /** Subject prefix: an event of type `T` goes to `<subjectPrefix>.T`; the stream captures `<subjectPrefix>.>`. @default 'integration-sync' */
  subjectPrefix?: string;
  /** Create the stream (file storage, limits retention) when it does not exist. With `false` the host manages it. @default true */
  createStream?: boolean;
  /** `max_age` of a stream the bus creates: how long events (and dead letters) are kept. @default 604800000 (7 days) */
  streamMaxAgeMs?: number;
  /** `duplicate_window` of a stream the bus creates: a re-publish of the same event id within it is stored once. @default 120000 */
  duplicateWindowMs?: number;
  /**
   * `ack_wait` of the durable consumers: how long a delivery may go without an ack or a
   * `working()` before JetStream hands it to another member. @default 30000
   */
  ackWaitMs?: number;
  /**
   * `backoff` of the durable consumers: redelivery delays after a member went silent (crash,
   * lost connection), by delivery. Handler failures are retried with the bus's own backoff
   * (`retryBaseMs`/`retryMaxMs`) through `nak(delay)`. @default none (every redelivery after `ackWaitMs`)
   */
  backoffMs?: readonly number[];
  /**
   * Call `working()` automatically at this interval while a handler runs, so a long handler
   * keeps its event; `0` leaves it to the handler's `progress()`. @default a third of the shortest of `ackWaitMs` and `backoffMs`
   */
  progressIntervalMs?: number;
  /** Where a newly created consumer group starts: every event still in the stream, or only new ones. @default 'all' */
  deliverPolicy?: 'all' | 'new';
  /** How long one pull request waits for a message before it is renewed. @default 30000 */
  pullExpiresMs?: number;
  /** Close `connection` at the end of `close()`. @default false (the host owns the connection) */
  closeConnection?: boolean;
}

/** The NATS JetStream {@link EventBus}, with the subjects it uses readable. */
export interface NatsEventBus extends EventBus {
  /** The stream this bus uses. */
  readonly stream: string;
  /** The subject events of `type` are published to. */
  subjectFor(type: string): string;
  /** The subject dead-letter records of `group` are published to (captured by the same stream). */
  deadLetterSubject(group: string): string;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_STREAM = 'INTEGRATION_SYNC';
const DEFAULT_PREFIX = 'integration-sync';
const DEFAULT_ACK_WAIT_MS = 30_000;
const DEFAULT_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
const DEFAULT_PULL_EXPIRES_MS = 30_000;
/** The subject token under the prefix that holds dead letters; event types may not start with it. */
const DEAD_LETTER_TOKEN = 'dead-letter';
/** JetStream error codes: stream not found; consumer exists with another config (2.10+ create action). */
const STREAM_NOT_FOUND = 10059;
const CONSUMER_EXISTS = new Set([10013, 10148]);
/** A name JetStream accepts for streams and durable consumers. */
const NAME_PATTERN = /^[A-Za-z0-9_-]{1,200}$/;
/** One subject token: no whitespace, no `.`, no wildcards. */
const TOKEN_PATTERN = /^[^\s.*>]+$/;

const ms = (value: number): number => value * 1_000_000;

/**
 * An {@link EventBus} on NATS JetStream. Events of type `T` are published to
 * `<subjectPrefix>.T` with the event id as `Nats-Msg-Id`, so JetStream stores a re-published
 * event once within its duplicate window. Each consumer group gets one durable pull consumer per
 * event type (explicit ack, `ack_wait`, `max_deliver`, optional `backoff`), shared by every
 * replica that subscribes with the same group. Long handlers keep their event through
 * `working()`; failed ones are `nak`ed with the bus's backoff and, after `maxAttempts`,
 * dead-lettered to `<subjectPrefix>.dead-letter.<group>` in the same stream.
 *
 * The host builds the connection and the JetStream clients; this package never imports
 * `@nats-io/*` (install `@nats-io/transport-node` and `@nats-io/jetstream` v3 yourself).
 * Needs nats-server 2.9 or later.
 *
 * @example
 * import { connect } from '@nats-io/transport-node';
 * import { jetstream, jetstreamManager } from '@nats-io/jetstream';
 * import { createNatsBus } from 'integration-sync/nats';
 *
 * const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
 * const bus = createNatsBus({ connection: nc, jetstream: jetstream(nc), manager: await jetstreamManager(nc) });
 * // ... on shutdown:
 * await bus.close();
 * await nc.drain();
 */
export function createNatsBus(options: NatsBusOptions): NatsEventBus {
  return new NatsBus(options);
}

class NatsBus implements NatsEventBus {
  readonly stream: string;
  private readonly options: NatsBusOptions;
  private readonly prefix: string;
  private readonly busOptions: BusOptions;
  private readonly connection: NatsConnectionLike;
  private readonly js: NatsJetStreamLike;
  private readonly ackWaitMs: number;
  private readonly backoffMs: readonly number[] | undefined;
  private readonly progressIntervalMs: number;
  private readonly pullExpiresMs: number;
  private readonly closeTimeoutMs: number;
  private readonly maxPayloadBytes: number;
  private readonly subscriptions = new Set<NatsSubscription>();
  private managerPromise: Promise<NatsJetStreamManagerLike> | undefined;
  private streamReady: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: NatsBusOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createNatsBus: pass an options object with connection and jetstream');
    }
    if (typeof options.connection?.isClosed !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createNatsBus: connection must be a NatsConnection (connect() of @nats-io/transport-node)');
    }
    if (typeof options.jetstream?.publish !== 'function' || typeof options.jetstream.consumers?.get !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createNatsBus: jetstream must be a JetStream client (jetstream(nc) of @nats-io/jetstream v3)');
    }
    if (options.manager === undefined && typeof options.jetstream.jetstreamManager !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createNatsBus: pass manager (jetstreamManager(nc) of @nats-io/jetstream)');
    }
    this.options = options;
    this.connection = options.connection;
    this.js = options.jetstream;
    this.stream = assertName('stream', options.stream ?? DEFAULT_STREAM);
    this.prefix = assertSubject('subjectPrefix', options.subjectPrefix ?? DEFAULT_PREFIX);
    this.ackWaitMs = assertMs('ackWaitMs', options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS, 1000);
    if (options.backoffMs !== undefined) {
      if (!Array.isArray(options.backoffMs) || options.backoffMs.length === 0) {
        throw new IntegrationSyncError('ERR_INVALID_OPTION', 'backoffMs must be a non-empty array of milliseconds, or left out');
      }
      options.backoffMs.forEach((value, i) => assertMs(`backoffMs[${i}]`, value, 1000));
      this.backoffMs = [...options.backoffMs];
    }
    const shortestWait = Math.min(this.ackWaitMs, ...(this.backoffMs ?? []));
    this.progressIntervalMs = assertMs('progressIntervalMs', options.progressIntervalMs ?? Math.floor(shortestWait / 3), 0, shortestWait - 1);
    this.pullExpiresMs = assertMs('pullExpiresMs', options.pullExpiresMs ?? DEFAULT_PULL_EXPIRES_MS, 1000);
    this.closeTimeoutMs = assertMs('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, 0);
    this.maxPayloadBytes = assertPositiveInt('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
    if (options.createStream !== false) {
      assertMs('streamMaxAgeMs', options.streamMaxAgeMs ?? DEFAULT_MAX_AGE_MS, 1000, Number.MAX_SAFE_INTEGER / 1_000_000);
      assertMs('duplicateWindowMs', options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS, 1000, Number.MAX_SAFE_INTEGER / 1_000_000);
    }
    if (options.deliverPolicy !== undefined && options.deliverPolicy !== 'all' && options.deliverPolicy !== 'new') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `deliverPolicy must be 'all' or 'new'; got ${String(options.deliverPolicy)}`);
    }
    if (options.maxAttempts !== undefined) assertPositiveInt('maxAttempts', options.maxAttempts, 1000);
    const logger = childLogger(options.logger ?? silentLogger, { component: 'nats-bus' });
    // One idempotency store for all subscriptions of this bus, as the other buses do.
    this.busOptions = { ...options, logger, idempotency: options.idempotency ?? createMemoryIdempotencyStore() };
  }

  subjectFor(type: string): string {
    return `${this.prefix}.${type}`;
  }

  deadLetterSubject(group: string): string {
    return `${this.prefix}.${DEAD_LETTER_TOKEN}.${tokenFor(group)}`;
  }

  async publish(event: CloudEvent, options: PublishOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    if (this.closing) throw new IntegrationSyncError('ERR_CLOSED', 'publish: the NATS bus is closed');
    const text = encodeForPublish(event, this.maxPayloadBytes);
    const subject = this.eventSubject(event.type, 'ERR_PUBLISH_FAILED');
    try {
      await raceSignal(this.ensureStream(), options.signal);
      const ack = await raceSignal(this.js.publish(subject, text, { msgID: event.id }), options.signal);
      if (ack.duplicate) this.logger.debug({ eventType: event.type, eventId: event.id }, 'event already in the stream (same id); stored once');
    } catch (error) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      // The stream may have been deleted since it was checked; look again on the next publish.
      this.streamReady = undefined;
      throw new IntegrationSyncError(
        'ERR_PUBLISH_FAILED',
        `publish: JetStream did not take ${event.type} on ${subject}; check that the connection is up and stream ${this.stream} captures ${this.prefix}.>`,
        { cause: error, details: { eventType: event.type, eventId: event.id, subject, stream: this.stream } },
      );
    }
    recordPublished(event, this.busOptions);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closing) throw new IntegrationSyncError('ERR_CLOSED', 'subscribe: the NATS bus is closed');
    // Reports bad subscribe options as ERR_INVALID_OPTION.
    const pipeline = new DeliveryPipeline(options, this.busOptions);
    const concurrency = assertPositiveInt('concurrency', options.concurrency ?? 1, 1000);
    const subjects = pipeline.types.map((type) => this.eventSubject(type, 'ERR_INVALID_OPTION'));
    // One more delivery than attempts: the pipeline dead-letters at `maxAttempts` itself, and the
    // extra one covers a member that died during the last attempt.
    const maxDeliver = pipeline.maxAttempts + 1;
    if (this.backoffMs && this.backoffMs.length >= maxDeliver) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `backoffMs has ${this.backoffMs.length} entries; JetStream needs fewer than max_deliver (${maxDeliver} = maxAttempts + 1)`);
    }
    const bindings: NatsConsumerBinding[] = [];
    try {
      await this.ensureStream();
      for (const [i, type] of pipeline.types.entries()) {
        const config = this.consumerConfig(pipeline.group, type, subjects[i] as string, maxDeliver);
        await this.ensureConsumer(config);
        const consumer = await this.js.consumers.get(this.stream, config.durable_name);
        bindings.push({ type, durable: config.durable_name, config, consumer });
      }
    } catch (error) {
      if (error instanceof IntegrationSyncError) throw error;
      if (this.connection.isClosed()) {
        throw new IntegrationSyncError('ERR_CLOSED', `subscribe: the NATS connection is closed; group ${pipeline.group} needs an open one`, { cause: error });
      }
      throw new IntegrationSyncError(
        'ERR_INVALID_OPTION',
        `subscribe: JetStream refused the consumers of group ${pipeline.group} on stream ${this.stream}; check that JetStream is enabled and the stream and consumer settings agree`,
        { cause: error, details: { group: pipeline.group, stream: this.stream, reason: summarizeError(error).message } },
      );
    }
    if (this.closing) throw new IntegrationSyncError('ERR_CLOSED', 'subscribe: the NATS bus closed while subscribing');
    const unwatch = bindings.map((binding) => this.watchMaxDeliveries(binding, pipeline.group));

    const subscription = new NatsSubscription({
      pipeline,
      bindings,
      concurrency,
      pullExpiresMs: this.pullExpiresMs,
      progressIntervalMs: this.progressIntervalMs,
      closeTimeoutMs: this.closeTimeoutMs,
      clock: this.options.clock ?? systemClock,
      logger: this.logger,
      isConnectionClosed: () => this.connection.isClosed(),
      publishDeadLetter: (record, msg) => this.publishDeadLetter(record, msg),
      recover: async (binding) => {
        // The stream itself may be gone (deleted, or a server that lost its store): bring both back.
        this.streamReady = undefined;
        await this.ensureStream();
        await this.ensureConsumer(binding.config);
      },
      onClosed: (s) => {
        for (const stop of unwatch) stop();
        this.subscriptions.delete(s);
      },
    });
    this.subscriptions.add(subscription);
    subscription.start();
    this.logger.info({ group: pipeline.group, types: pipeline.types, stream: this.stream, concurrency }, 'nats subscription started');
    return subscription;
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(options);
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private get logger() {
    return this.busOptions.logger ?? silentLogger;
  }

  private async doClose(options: CloseOptions): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close(options)));
    if (this.options.closeConnection && !this.connection.isClosed()) {
      try {
        await this.connection.close();
      } catch (error) {
        this.logger.warn({ err: summarizeError(error) }, 'closing the NATS connection failed');
      }
    }
  }

  /** The subject of `type`, or throws `code` when the type cannot be a subject. */
  private eventSubject(type: string, code: 'ERR_PUBLISH_FAILED' | 'ERR_INVALID_OPTION'): string {
    const tokens = type.split('.');
    if (!tokens.every((t) => TOKEN_PATTERN.test(t)) || tokens[0] === DEAD_LETTER_TOKEN) {
      throw new IntegrationSyncError(
        code,
        `event type ${JSON.stringify(type.slice(0, 100))} cannot be a NATS subject: use dot-separated tokens without spaces, '*' or '>', not starting with '${DEAD_LETTER_TOKEN}'`,
      );
    }
    return this.subjectFor(type);
  }

  private manager(): Promise<NatsJetStreamManagerLike> {
    if (this.options.manager) return Promise.resolve(this.options.manager);
    this.managerPromise ??= (this.js.jetstreamManager as () => Promise<NatsJetStreamManagerLike>)().catch((error: unknown) => {
      this.managerPromise = undefined;
      throw error;
    });
    return this.managerPromise;
  }

  /** Checks (once) that the stream exists and creates it when allowed. Retried after a failure. */
  private ensureStream(): Promise<void> {
    this.streamReady ??= this.createStreamIfMissing().catch((error: unknown) => {
      this.streamReady = undefined;
      throw error;
    });
    return this.streamReady;
  }

  private async createStreamIfMissing(): Promise<void> {
    if (this.options.createStream === false) return;
    const jsm = await this.manager();
    try {
      await jsm.streams.info(this.stream);
      return;
    } catch (error) {
      if (!isCode(error, STREAM_NOT_FOUND)) throw error;
    }
    // Two replicas may race here; JetStream accepts the same config twice.
    await jsm.streams.add({
      name: this.stream,
      subjects: [`${this.prefix}.>`],
      storage: 'file',
      retention: 'limits',
      max_age: ms(this.options.streamMaxAgeMs ?? DEFAULT_MAX_AGE_MS),
      duplicate_window: ms(this.options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS),
    });
    this.logger.info({ stream: this.stream, subjects: [`${this.prefix}.>`] }, 'nats stream created');
  }

  private consumerConfig(group: string, type: string, subject: string, maxDeliver: number): NatsConsumerConfigLike {
    return {
      durable_name: durableName(group, type),
      description: `integration-sync group ${group.slice(0, 100)} for ${type.slice(0, 100)}`,
      ack_policy: 'explicit',
      deliver_policy: this.options.deliverPolicy ?? 'all',
      filter_subject: subject,
      ack_wait: ms(this.ackWaitMs),
      max_deliver: maxDeliver,
      ...(this.backoffMs ? { backoff: this.backoffMs.map(ms) } : {}),
    };
  }

  /** Creates the durable consumer, or brings an existing one to the current settings. */
  private async ensureConsumer(config: NatsConsumerConfigLike): Promise<void> {
    const jsm = await this.manager();
    try {
      await jsm.consumers.add(this.stream, config);
    } catch (error) {
      if (!isCode(error, ...CONSUMER_EXISTS)) throw error;
      // Exists with other settings (a deploy changed ack wait or attempts): update what may change.
      const { ack_wait, max_deliver, backoff, description } = config;
      await jsm.consumers.update(this.stream, config.durable_name, { ack_wait, max_deliver, description, ...(backoff ? { backoff } : {}) });
    }
  }

  /**
   * Listens for JetStream's max-deliveries advisory of one durable consumer: an event whose
   * members all stopped mid-handler (crash, lost connection, close past its deadline) until
   * `max_deliver` ran out. Nothing handled it, so it becomes a dead letter too. The queue group
   * makes one member per group do it; the dead letter's msgID makes a second one harmless.
   */
  private watchMaxDeliveries(binding: NatsConsumerBinding, group: string): () => void {
    const subscribe = this.connection.subscribe;
    if (typeof subscribe !== 'function') return () => {};
    const subject = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.stream}.${binding.durable}`;
    try {
      const sub = subscribe.call(this.connection, subject, {
        queue: binding.durable,
        callback: (error, msg) => {
          if (error) return;
          void this.deadLetterExhausted(binding, group, msg.data);
        },
      });
      return () => {
        try {
          sub.unsubscribe();
        } catch {
          // The connection is already closed; so is the subscription.
        }
      };
    } catch (error) {
      this.logger.warn({ group, durable: binding.durable, err: summarizeError(error) }, 'cannot watch max-deliveries advisories');
      return () => {};
    }
  }

  /** Turns a max-deliveries advisory into a dead-letter record. Never throws. */
  private async deadLetterExhausted(binding: NatsConsumerBinding, group: string, data: Uint8Array): Promise<void> {
    try {
      const advisory = JSON.parse(Buffer.from(data).toString('utf8')) as { stream_seq?: unknown; deliveries?: unknown };
      const seq = advisory.stream_seq;
      if (typeof seq !== 'number') return;
      const deliveries = typeof advisory.deliveries === 'number' ? advisory.deliveries : binding.config.max_deliver;
      const jsm = await this.manager();
      const stored = typeof jsm.streams.getMessage === 'function' ? await jsm.streams.getMessage(this.stream, { seq }) : null;
      const payload = stored ? Buffer.from(stored.data).toString('utf8') : undefined;
      let parsed: { id?: unknown; type?: unknown; data?: unknown } | undefined;
      try {
        parsed = payload === undefined ? undefined : (safeJsonParse(payload) as typeof parsed);
      } catch {
        parsed = undefined;
      }
      const eventId = typeof parsed?.id === 'string' ? parsed.id : undefined;
      const record: DeadLetterRecord = {
        reason: 'max_attempts',
        group,
        type: typeof parsed?.type === 'string' ? parsed.type : binding.type,
        ...(eventId !== undefined ? { eventId } : {}),
        ...(payload !== undefined ? { payload } : {}),
        error: { name: 'MaxDeliveries', message: `JetStream stopped after ${deliveries} deliveries without an ack: every member stopped mid-handler` },
        attempts: deliveries,
        deadLetteredAt: new Date((this.options.clock ?? systemClock).now()).toISOString(),
      };
      // Bounded like every other dead letter: JSON escaping can double the stored payload, past what the server takes.
      await this.js.publish(this.deadLetterSubject(group), encodeDeadLetter(record, this.maxPayloadBytes), { msgID: deadLetterMsgId(group, seq) });
      this.logger.error({ group, eventType: record.type, eventId, reason: record.reason, attempts: deliveries, seq }, 'event dead-lettered');
      safeAudit(
        this.busOptions.audit ?? noopAuditSink,
        {
          kind: 'event.dead-lettered',
          at: record.deadLetteredAt,
          group,
          outcome: 'max_attempts',
          ...eventSubject(parsed),
          ...(record.type !== undefined ? { eventType: record.type } : {}),
          ...(eventId !== undefined ? { eventId } : {}),
          attempt: deliveries,
          reason: 'MaxDeliveries',
        },
        this.logger,
      );
      if (this.options.onDeadLetter) await this.options.onDeadLetter(record);
    } catch (error) {
      this.logger.error({ group, durable: binding.durable, err: summarizeError(error) }, 'dead-lettering an exhausted event failed; it stays in the stream');
    }
  }

  private async publishDeadLetter(record: DeadLetterRecord, msg: NatsJsMsgLike): Promise<void> {
    const text = encodeDeadLetter(record, this.maxPayloadBytes);
    // The stream sequence makes the id stable, so a retried dead-letter is stored once.
    await this.js.publish(this.deadLetterSubject(record.group), text, { msgID: deadLetterMsgId(record.group, msg.info.streamSequence) });
  }
}


function isCode(error: unknown, ...codes: number[]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' && codes.includes(code);
}

/** A short, stable hash so distinct names that sanitise alike still get distinct consumers. */
function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}

/** A subject token / name made of safe characters, readable, plus a hash of the original. */
function tokenFor(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60);
  return safe === name ? name : `${safe}_${hash(name)}`;
}

/**
 * The `Nats-Msg-Id` of a dead letter, stable per group and stream sequence. The group goes in
 * as a token: a header cannot carry CR/LF or 64 KiB, and a group name with either must not make
 * every dead letter of the group fail to store.
 */
function deadLetterMsgId(group: string, seq: number): string {
  return `dead-letter:${tokenFor(group)}:${seq}`;
}

/** The durable consumer of one group for one event type. */
function durableName(group: string, type: string): string {
  const readable = `${group}_${type}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
  return `${readable}_${hash(`${group}\u0000${type}`)}`;
}

function assertName(name: string, value: unknown): string {
  const text = assertNonEmptyString(name, value);
  if (!NAME_PATTERN.test(text)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be letters, digits, '_' or '-' (at most 200); got ${JSON.stringify(text.slice(0, 100))}`);
  }
  return text;
}

function assertSubject(name: string, value: unknown): string {
  const text = assertNonEmptyString(name, value);
  if (!text.split('.').every((t) => TOKEN_PATTERN.test(t))) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be dot-separated tokens without spaces, '*' or '>'; got ${JSON.stringify(text.slice(0, 100))}`);
  }
  return text;
}

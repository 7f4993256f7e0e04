import type { SignalOptions } from '../core/abort.js';
import type { ErrorSummary } from '../core/errors.js';
import type { CloudEvent, ValidationIssue } from '../events/envelope.js';
import type { EventSchemaRegistry } from '../events/schemas.js';

/** What a handler gets beside the event. */
export interface DeliveryContext {
  /** 1-based delivery attempt of this event in this group. */
  attempt: number;
  /** The consumer group. */
  group: string;
  /** Aborts when the subscription closes past its deadline; the event is then redelivered. */
  signal: AbortSignal;
  /** Tells the broker the handler is still working, so a long handler is not redelivered elsewhere. */
  progress(): void;
}

/** A subscriber's handler. Resolve to ack; throw to retry (or throw a `NonRetryableError` to dead-letter at once). */
export type EventHandler = (event: CloudEvent, context: DeliveryContext) => Promise<void>;

/** Options of {@link EventBus.subscribe}. */
export interface SubscribeOptions {
  /** Consumer group: the members of one group share the work, each event goes to one of them. */
  group: string;
  /** The event types to receive. */
  types: readonly string[];
  /** Runs once per delivery; resolve to ack, throw to retry or dead-letter. */
  handler: EventHandler;
  /** Handlers run at once in this member. @default 1 */
  concurrency?: number;
  /** Deliveries before an event that keeps failing is dead-lettered. @default the bus's (5) */
  maxAttempts?: number;
  /** Data schemas to validate against. @default the seven contract schemas */
  schemas?: EventSchemaRegistry;
}

/** Options of `close()` on buses and subscriptions. */
export interface CloseOptions extends SignalOptions {
  /**
   * How long in-flight handlers may run before they are aborted and their events left unacked
   * for redelivery. @default the bus's `closeTimeoutMs` (10000)
   */
  timeoutMs?: number;
}

/** A live subscription. */
export interface Subscription {
  /** The consumer group this member joined. */
  readonly group: string;
  /** The event types it receives. */
  readonly types: readonly string[];
  /** Stops taking events, waits for in-flight handlers up to the deadline, hands the rest back. Idempotent. */
  close(options?: CloseOptions): Promise<void>;
}

/** Options of {@link EventBus.publish}. */
export type PublishOptions = SignalOptions;

/**
 * The one interface every transport implements. Semantics (docs/delivery-semantics.md), the same on
 * every bus: `publish` resolves once the broker has the event and rejects (`ERR_PUBLISH_FAILED`,
 * `ERR_CLOSED`) when it cannot; subscriptions are at-least-once in consumer groups with retry,
 * backoff and dead-letter; invalid events are dead-lettered at once; handlers are idempotent by
 * event id; `close()` is graceful and idempotent.
 */
export interface EventBus {
  /**
   * Serialises and sends one event; resolves once the broker has it. Rejects with
   * `ERR_PUBLISH_FAILED` (not serialisable, too large, refused) or `ERR_CLOSED`.
   */
  publish(event: CloudEvent, options?: PublishOptions): Promise<void>;
  /** Joins a consumer group (creating it where the broker needs that) and starts delivering. */
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Closes every subscription (waiting for in-flight handlers up to the deadline), then the bus. Idempotent. */
  close(options?: CloseOptions): Promise<void>;
}

/** Why an event was dead-lettered. */
export type DeadLetterReason =
  /** Not JSON, or larger than `maxPayloadBytes`. */
  | 'unparsable'
  /** Failed the envelope or data schema. */
  | 'invalid'
  /** Failed `maxAttempts` times. */
  | 'max_attempts'
  /** The handler threw a non-retryable error. */
  | 'non_retryable';

/** What a bus keeps of an event it gave up on: enough to inspect and replay, nothing secret. */
export interface DeadLetterRecord {
  /** Why the event was given up on. */
  reason: DeadLetterReason;
  /** The consumer group that gave up on it; other groups may have handled it. */
  group: string;
  /** The event type, where it could be read. */
  type?: string;
  /** The event id, where it could be read. */
  eventId?: string;
  /** The parsed event, when it parsed. */
  event?: CloudEvent;
  /**
   * The payload as received (UTF-8 text) when the record has no parsed `event`: an unparsable or
   * invalid event, or (NATS) one whose deliveries ran out without an outcome. Only its first 4096
   * characters are kept when it is too large to store.
   */
  payload?: string;
  /** Validation issues, for `invalid` and `unparsable`. */
  issues?: ValidationIssue[];
  /** The last handler error, for `max_attempts` and `non_retryable`. */
  error?: ErrorSummary;
  /** Deliveries made to this group, counting the last one. */
  attempts: number;
  /** ISO time. */
  deadLetteredAt: string;
}

/** Receives dead-letter records (in addition to any broker-native dead-letter destination). */
export type DeadLetterHandler = (record: DeadLetterRecord) => void | Promise<void>;

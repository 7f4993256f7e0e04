import type { AuditRecord, AuditSink } from '../audit/types.js';
import { noopAuditSink } from '../audit/types.js';
import { auditDiagnosticsActive, publishAuditDiagnostic } from '../audit/diagnostics.js';
import { backoffDelay, DEFAULT_STOP_TIMEOUT_MS } from '../core/abort.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError, isNonRetryable, summarizeError, type ErrorSummary } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { safeLogger, silentLogger } from '../core/logger.js';
import { assertPositiveInt } from '../core/options.js';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  eventSubject,
  formatIssues,
  safeJsonParse,
  validateEvent,
  type CloudEvent,
  type ValidationIssue,
} from '../events/envelope.js';
import { eventSchemas } from '../events/schemas.js';
import { createMemoryIdempotencyStore, DEFAULT_IDEMPOTENCY_TTL_MS, type IdempotencyStore } from './idempotency.js';
import type { DeadLetterHandler, DeadLetterRecord, SubscribeOptions } from './types.js';

/**
 * Options every bus takes, so delivery behaves the same on each transport. Adapters pass them
 * to {@link DeliveryPipeline}; a host sets them once on the bus.
 */
export interface BusOptions {
  /** Handled-event store shared by the bus's subscriptions. @default an in-memory store of the last 100000 handled ids */
  idempotency?: IdempotencyStore;
  /** How long a handled event id is remembered. @default 86400000 (24 h) */
  idempotencyTtlMs?: number;
  /** Audit sink for published, consumed, rejected and dead-lettered events. @default none */
  audit?: AuditSink;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** @default the system clock */
  clock?: Clock;
  /** Deliveries before a failing event is dead-lettered. @default 5 */
  maxAttempts?: number;
  /** Base of the exponential retry backoff (full jitter). @default 200 */
  retryBaseMs?: number;
  /** Cap of the retry backoff. @default 30000 */
  retryMaxMs?: number;
  /** Largest accepted payload; larger ones are dead-lettered as `unparsable`. @default 262144 */
  maxPayloadBytes?: number;
  /** Called with every dead-letter record, besides the broker-native destination. */
  onDeadLetter?: DeadLetterHandler;
  /** Default deadline of `close()` for in-flight handlers. @default 10000 */
  closeTimeoutMs?: number;
}

/** One delivery as a transport received it. */
export interface InboundDelivery {
  /** Message body: JSON text or bytes, or an already-decoded value. */
  body: string | Uint8Array | object;
  /** 1-based delivery count as the broker counts it. */
  attempt: number;
  /** Aborts the handler (subscription closing past its deadline). */
  signal?: AbortSignal;
  /** Tells the broker the handler is still working (NATS `working()`, lease extension...). */
  progress?: () => void;
}

/** What the transport must do with a delivery. */
export type DeliveryOutcome =
  /** Ack it: handled now, or handled before (`duplicate`). */
  | {
      /** Acknowledge the delivery so the broker drops it. */
      action: 'ack';
      /** `duplicate` when the event id was already handled in this group and the handler was skipped. */
      result: 'handled' | 'duplicate';
    }
  /** Leave it for redelivery after `delayMs`. */
  | {
      /** Hand the delivery back for another attempt. */
      action: 'retry';
      /** How long to wait before redelivering (exponential backoff with full jitter). */
      delayMs: number;
      /** The handler's error, summarised (code and message only). */
      error: ErrorSummary;
    }
  /** Send `record` to the dead-letter destination, then ack the original. */
  | {
      /** Give up on the delivery. */
      action: 'dead-letter';
      /** What to store in the dead-letter destination. */
      record: DeadLetterRecord;
    };

const textDecoder = new TextDecoder('utf-8', { fatal: false });
/** Characters of an oversized payload kept in its dead-letter record. */
const OVERSIZE_KEPT = 4096;

/**
 * The transport-independent half of every subscription: decode, validate, de-duplicate, run the
 * handler and decide ack, retry (with backoff) or dead-letter. Adapters feed it deliveries and
 * carry out its {@link DeliveryOutcome}; {@link DeliveryPipeline.process} never throws.
 */
export class DeliveryPipeline {
  /** The consumer group this pipeline delivers for; prefixes its idempotency keys. */
  readonly group: string;
  /** Event types the group takes; any other type is dead-lettered as `invalid`. */
  readonly types: readonly string[];
  /** Deliveries before a failing event is dead-lettered (the subscription's, else the bus's). */
  readonly maxAttempts: number;
  private readonly options: SubscribeOptions;
  private readonly bus: Required<Pick<BusOptions, 'idempotencyTtlMs' | 'retryBaseMs' | 'retryMaxMs' | 'maxPayloadBytes'>>;
  private readonly idempotency: IdempotencyStore;
  private readonly audit: AuditSink;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly onDeadLetter: DeadLetterHandler | undefined;
  private readonly hookTimeoutMs: number;
  private readonly inFlight = new Set<string>();

  constructor(subscribe: SubscribeOptions, bus: BusOptions = {}) {
    if (typeof subscribe !== 'object' || subscribe === null) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'subscribe: options must be an object with group, types and handler');
    }
    if (typeof subscribe.group !== 'string' || subscribe.group.trim() === '') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'subscribe: group must be a non-empty string');
    }
    if (typeof subscribe.handler !== 'function') throw new IntegrationSyncError('ERR_INVALID_OPTION', 'subscribe: handler must be a function');
    if (!Array.isArray(subscribe.types) || subscribe.types.length === 0 || subscribe.types.some((t) => typeof t !== 'string' || t === '')) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'subscribe: types must be a non-empty array of event type strings');
    }
    this.options = subscribe;
    this.group = subscribe.group;
    this.types = [...subscribe.types];
    this.maxAttempts = assertPositiveInt('maxAttempts', subscribe.maxAttempts ?? bus.maxAttempts ?? 5, 1000);
    this.bus = {
      idempotencyTtlMs: bus.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
      retryBaseMs: bus.retryBaseMs ?? 200,
      retryMaxMs: bus.retryMaxMs ?? 30_000,
      maxPayloadBytes: bus.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    };
    this.idempotency = bus.idempotency ?? createMemoryIdempotencyStore();
    this.audit = bus.audit ?? noopAuditSink;
    // Adapters may pass the host's logger as is; a throwing one must not make process() throw.
    this.logger = safeLogger(bus.logger ?? silentLogger);
    this.clock = bus.clock ?? systemClock;
    this.onDeadLetter = bus.onDeadLetter;
    // At least a second, so a close deadline of 0 does not cut every hook short.
    this.hookTimeoutMs = Math.max(1000, bus.closeTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  }

  /** Decides what to do with one delivery. Never throws. */
  async process(delivery: InboundDelivery): Promise<DeliveryOutcome> {
    const attempt = Math.max(1, Math.floor(delivery.attempt) || 1);
    const decoded = this.decode(delivery.body);
    if (!decoded.ok) {
      return this.deadLetter({ reason: 'unparsable', issues: decoded.issues, payload: decoded.payload, attempts: attempt }, 'event.rejected');
    }
    const result = validateEvent(decoded.value, this.options.schemas ?? eventSchemas);
    if (!result.ok) {
      const raw = decoded.value as { type?: unknown; id?: unknown };
      return this.deadLetter(
        {
          reason: 'invalid',
          issues: result.issues,
          payload: decoded.payload,
          ...readStringField(raw, 'type', 'type'),
          ...readStringField(raw, 'id', 'eventId'),
          attempts: attempt,
        },
        'event.rejected',
        decoded.value,
      );
    }
    const event = result.event;
    if (!this.types.includes(event.type)) {
      return this.deadLetter(
        { reason: 'invalid', event, type: event.type, eventId: event.id, attempts: attempt, issues: [{ path: 'type', message: `group ${this.group} does not take ${event.type}` }] },
        'event.rejected',
      );
    }

    // Length-prefixed, so no group and id pair can spell another's key (`a:b` + `c` vs `a` + `b:c`).
    const key = `${this.group.length}:${this.group}:${event.id}`;
    try {
      if (await this.idempotency.has(key)) {
        this.emitAudit({ kind: 'event.consumed', event, outcome: 'duplicate', attempt });
        return { action: 'ack', result: 'duplicate' };
      }
    } catch (error) {
      // Without the store we cannot tell; retry rather than risk handling twice or losing it.
      return this.retry(event, attempt, error);
    }
    if (this.inFlight.has(key)) {
      // The same event is running in this process right now; look again once it is done.
      return { action: 'retry', delayMs: this.bus.retryBaseMs, error: { name: 'InFlight', message: 'same event already in flight' } };
    }

    this.inFlight.add(key);
    const signal = delivery.signal ?? new AbortController().signal;
    try {
      await this.options.handler(event, {
        attempt,
        group: this.group,
        signal,
        progress: delivery.progress ?? (() => {}),
      });
    } catch (error) {
      this.inFlight.delete(key);
      if (isNonRetryable(error)) {
        return this.deadLetter({ reason: 'non_retryable', event, type: event.type, eventId: event.id, error: summarizeError(error), attempts: attempt }, 'event.dead-lettered');
      }
      if (attempt >= this.maxAttempts) {
        return this.deadLetter({ reason: 'max_attempts', event, type: event.type, eventId: event.id, error: summarizeError(error), attempts: attempt }, 'event.dead-lettered');
      }
      return this.retry(event, attempt, error);
    }
    this.inFlight.delete(key);
    try {
      await this.idempotency.add(key, this.bus.idempotencyTtlMs);
    } catch (error) {
      // The work is done; a failed mark only risks a second run of an idempotent handler.
      this.logger.warn({ group: this.group, eventId: event.id, err: summarizeError(error) }, 'idempotency store write failed');
    }
    this.emitAudit({ kind: 'event.consumed', event, outcome: 'handled', attempt });
    this.logger.debug({ group: this.group, eventType: event.type, eventId: event.id, attempt }, 'event handled');
    return { action: 'ack', result: 'handled' };
  }

  /** Backoff before the next delivery after `attempt` failed. */
  retryDelay(attempt: number): number {
    return backoffDelay(attempt, this.bus.retryBaseMs, this.bus.retryMaxMs);
  }

  private retry(event: CloudEvent, attempt: number, error: unknown): DeliveryOutcome {
    const summary = summarizeError(error);
    const delayMs = this.retryDelay(attempt);
    this.emitAudit({ kind: 'event.consumed', event, outcome: 'retry', attempt, reason: summary.code ?? summary.message });
    this.logger.warn({ group: this.group, eventType: event.type, eventId: event.id, attempt, delayMs, err: summary }, 'handler failed; will retry');
    return { action: 'retry', delayMs, error: summary };
  }

  private decode(body: InboundDelivery['body']): { ok: true; value: unknown; payload: string | undefined } | { ok: false; issues: ValidationIssue[]; payload: string } {
    if (typeof body !== 'string' && !(body instanceof Uint8Array)) return { ok: true, value: body, payload: undefined };
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    if (size > this.bus.maxPayloadBytes) {
      // Keep only the start: a record holding the whole oversized body would defeat the limit.
      const head = typeof body === 'string' ? body.slice(0, OVERSIZE_KEPT) : textDecoder.decode(body.subarray(0, OVERSIZE_KEPT));
      return { ok: false, payload: `${head}…`, issues: [{ path: '', message: `payload is ${size} bytes; the limit is ${this.bus.maxPayloadBytes}` }] };
    }
    const text = typeof body === 'string' ? body : textDecoder.decode(body);
    try {
      return { ok: true, value: safeJsonParse(text), payload: text };
    } catch {
      return { ok: false, payload: text, issues: [{ path: '', message: 'payload is not valid JSON' }] };
    }
  }

  private async deadLetter(
    partial: Omit<DeadLetterRecord, 'group' | 'deadLetteredAt'>,
    kind: 'event.rejected' | 'event.dead-lettered',
    rawValue?: unknown,
  ): Promise<DeliveryOutcome> {
    const record: DeadLetterRecord = { ...partial, group: this.group, deadLetteredAt: new Date(this.clock.now()).toISOString() };
    const subjectSource = record.event ?? (rawValue as { data?: unknown } | undefined);
    const reason = record.issues ? formatIssues(record.issues) : (record.error?.code ?? record.error?.message ?? record.reason);
    const base = { eventType: record.type, eventId: record.eventId, reasonText: reason, subjectSource, attempt: record.attempts };
    if (kind === 'event.rejected') {
      this.emitAuditRaw({ kind: 'event.rejected', outcome: record.reason, ...base });
      this.logger.warn({ group: this.group, eventType: record.type, eventId: record.eventId, reason: record.reason, issues: record.issues }, 'event rejected');
    }
    this.emitAuditRaw({ kind: 'event.dead-lettered', outcome: record.reason, ...base });
    this.logger.error({ group: this.group, eventType: record.type, eventId: record.eventId, reason: record.reason, attempts: record.attempts, err: record.error }, 'event dead-lettered');
    if (this.onDeadLetter) {
      // Bounded by the close deadline: a hook that never settles must not hold the dead letter
      // (and the member's slot) forever.
      let timer: TimerHandle | undefined;
      const limitMs = this.hookTimeoutMs;
      try {
        const gaveUp = await Promise.race([
          Promise.resolve(this.onDeadLetter(record)).then(() => false),
          new Promise<boolean>((resolve) => {
            timer = this.clock.setTimeout(() => resolve(true), limitMs);
          }),
        ]);
        if (gaveUp) this.logger.error({ group: this.group, eventId: record.eventId, timeoutMs: limitMs }, 'onDeadLetter hook did not settle; going on without it');
      } catch (error) {
        this.logger.error({ group: this.group, err: summarizeError(error) }, 'onDeadLetter hook failed');
      } finally {
        if (timer !== undefined) this.clock.clearTimeout(timer);
      }
    }
    return { action: 'dead-letter', record };
  }

  private emitAudit(input: { kind: AuditRecord['kind']; event: CloudEvent; outcome: string; attempt?: number; reason?: string }): void {
    this.emitAuditRaw({
      kind: input.kind,
      outcome: input.outcome,
      eventType: input.event.type,
      eventId: input.event.id,
      subjectSource: input.event,
      attempt: input.attempt,
      reasonText: input.reason,
    });
  }

  private emitAuditRaw(input: {
    kind: AuditRecord['kind'];
    outcome: string;
    eventType?: string | undefined;
    eventId?: string | undefined;
    subjectSource?: unknown;
    attempt?: number | undefined;
    reasonText?: string | undefined;
  }): void {
    // Nobody would see the record: skip building it (this runs for every delivery).
    if (this.audit === noopAuditSink && !auditDiagnosticsActive()) return;
    const record: AuditRecord = {
      kind: input.kind,
      at: new Date(this.clock.now()).toISOString(),
      group: this.group,
      outcome: input.outcome,
      ...eventSubject(input.subjectSource as { data?: unknown } | undefined),
      ...(input.eventType !== undefined ? { eventType: input.eventType } : {}),
      ...(input.eventId !== undefined ? { eventId: input.eventId } : {}),
      ...(input.attempt !== undefined ? { attempt: input.attempt } : {}),
      ...(input.reasonText !== undefined ? { reason: input.reasonText.slice(0, 500) } : {}),
    };
    safeAudit(this.audit, record, this.logger);
  }
}

/** `{ [as]: value[key] }` when it is a string; `{}` otherwise, also when reading it throws (a getter, a Proxy). */
function readStringField(value: unknown, key: string, as: string): Record<string, string> {
  try {
    const field = (value as Record<string, unknown> | null | undefined)?.[key];
    return typeof field === 'string' ? { [as]: field } : {};
  } catch {
    return {};
  }
}

/** Sends a record to a sink, logging (never throwing) when the sink fails. */
export function safeAudit(sink: AuditSink, record: AuditRecord, rawLogger: Logger = silentLogger): void {
  const logger = safeLogger(rawLogger);
  publishAuditDiagnostic(record);
  try {
    const result = sink.record(record);
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).catch((error: unknown) => logger.error({ err: summarizeError(error) }, 'audit sink failed'));
    }
  } catch (error) {
    logger.error({ err: summarizeError(error) }, 'audit sink failed');
  }
}

/** Records an `event.published` audit entry and log line; call after the broker took the event. */
export function recordPublished(event: CloudEvent, options: Pick<BusOptions, 'audit' | 'logger' | 'clock'>): void {
  const clock = options.clock ?? systemClock;
  // The broker already has the event: nothing here may make the publish look failed.
  const logger = safeLogger(options.logger ?? silentLogger);
  safeAudit(
    options.audit ?? noopAuditSink,
    { kind: 'event.published', at: new Date(clock.now()).toISOString(), eventType: event.type, eventId: event.id, outcome: 'published', ...eventSubject(event) },
    logger,
  );
  logger.info({ eventType: event.type, eventId: event.id, ...eventSubject(event) }, 'event published');
}

/**
 * Checks and serialises an event for publishing: `id` and `type` must be non-empty strings
 * (routing and de-duplication need them) and the JSON must fit `maxPayloadBytes`.
 * Throws `ERR_PUBLISH_FAILED` otherwise. Data is not validated here: the consumer is the gate.
 */
export function encodeForPublish(event: CloudEvent, maxPayloadBytes: number = DEFAULT_MAX_PAYLOAD_BYTES): string {
  if (typeof event !== 'object' || event === null) {
    throw new IntegrationSyncError('ERR_PUBLISH_FAILED', 'publish: event must be an object');
  }
  let type: unknown;
  let id: unknown;
  try {
    ({ type, id } = event);
  } catch {
    // A getter or Proxy trap threw; its message is the host's and is not echoed.
    throw new IntegrationSyncError('ERR_PUBLISH_FAILED', 'publish: event.type and event.id could not be read');
  }
  if (typeof type !== 'string' || type === '' || typeof id !== 'string' || id === '') {
    throw new IntegrationSyncError('ERR_PUBLISH_FAILED', 'publish: event.type and event.id must be non-empty strings');
  }
  let text: string;
  try {
    text = JSON.stringify(event);
    // A toJSON() returning undefined serialises to nothing at all.
    if (typeof text !== 'string') throw new TypeError('event serialised to undefined');
  } catch (cause) {
    throw new IntegrationSyncError('ERR_PUBLISH_FAILED', `publish: ${event.type} cannot be serialised to JSON`, { cause });
  }
  const size = Buffer.byteLength(text);
  if (size > maxPayloadBytes) {
    throw new IntegrationSyncError('ERR_PUBLISH_FAILED', `publish: ${event.type} is ${size} bytes; the limit is ${maxPayloadBytes}`);
  }
  return text;
}

/**
 * Serialises a dead-letter record for a broker, within `limitBytes`. A rejected payload is copied
 * into its record, and JSON escaping can make it six times its size: a record past what the broker
 * (or a JS string) takes would fail to store, and its event would be redelivered forever. Past the
 * limit only the payload's first 4096 characters are kept, enough to recognise it; huge payloads
 * are cut before `JSON.stringify`, which throws past V8's longest string.
 */
export function encodeDeadLetter(record: DeadLetterRecord, limitBytes: number = DEFAULT_MAX_PAYLOAD_BYTES): string {
  const payload = record.payload;
  if (payload === undefined || payload.length <= limitBytes / 6) return JSON.stringify(record);
  const cut = (): string => JSON.stringify({ ...record, payload: `${payload.slice(0, OVERSIZE_KEPT)}…` });
  if (payload.length > limitBytes) return cut();
  const text = JSON.stringify(record);
  return Buffer.byteLength(text) > limitBytes ? cut() : text;
}

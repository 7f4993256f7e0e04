import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { AuditSink } from '../audit/types.js';
import { safeAudit } from '../bus/delivery.js';
import type { EventBus, Subscription } from '../bus/types.js';
import { raceSignal } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { IntegrationSyncError, isIntegrationSyncError, NonRetryableError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { assertNonEmptyString } from '../core/options.js';
import { formatIssues, type CloudEvent, type EventSubject, type ValidationIssue } from '../events/envelope.js';

/** What one planner run did. */
export interface PlanResult {
  /** Events the bus took. */
  published: number;
  /** Items dropped because they failed the event schema (logged and audited as `planner.skipped`). */
  invalid: number;
  /** Items whose publish failed; the handler then rejects so the bus retries the check. */
  failed: number;
}

/** Options of a planner's `subscribe(bus, options)`. */
export interface PlannerSubscribeOptions {
  /** Consumer group: the replicas of one host share the checks, each check goes to one of them. */
  group: string;
  /** Checks handled at once in this member. @default 1 */
  concurrency?: number;
  /** Deliveries of a failing check before it is dead-lettered. @default the bus's */
  maxAttempts?: number;
}

/** What a planner's `handle` reads from its context: a bus `DeliveryContext` or a router context fits. */
export interface PlannerContext {
  /** Aborts the run (shutdown); the check is then redelivered. */
  signal?: AbortSignal;
}

/** @internal One item a planner could not publish. */
export interface PlannerFailure {
  subject: EventSubject;
  eventId: string;
  error: unknown;
}

/**
 * Publishes with at most `concurrency` calls in flight and never rejects: a failed publish is
 * collected, so one bad item cannot stop the ones after it.
 * @internal
 */
export class PublishQueue {
  published = 0;
  readonly failures: PlannerFailure[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly concurrency: number) {}

  /** Waits for a free slot, then starts `publish` without waiting for it to finish. */
  async push(subject: EventSubject, eventId: string, publish: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    const running: Promise<void> = Promise.resolve()
      .then(publish)
      .then(
        () => {
          this.published += 1;
        },
        (error: unknown) => {
          this.failures.push({ subject, eventId, error });
        },
      )
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  /** Waits for every started publish. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}

/**
 * Hashes the parts of a piece of work into an event id. Hashing (rather than joining the raw
 * ids) keeps the id short and free of characters some brokers reserve, whatever the host's ids
 * look like; hashing the JSON array (not a joined string) keeps `("a:b","c")` and `("a","b:c")` apart
 * whatever separator the ids contain.
 * @internal
 */
export function deriveId(prefix: string, parts: readonly string[]): string {
  return `${prefix}-${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;
}

/** @internal Reason text of an item that failed `createEvent`. */
export function invalidReason(error: unknown): string {
  if (isIntegrationSyncError(error, 'ERR_EVENT_INVALID') && Array.isArray(error.details?.issues)) {
    return formatIssues(error.details.issues as ValidationIssue[]);
  }
  return summarizeError(error).message;
}

/**
 * Reads the data of the check a planner was handed. A wrong type or invalid data is a
 * {@link NonRetryableError}: redelivering the same event cannot fix it, so it is dead-lettered at once.
 * @internal
 */
export function parseCheck<T>(event: CloudEvent, planner: string, type: string, schema: z.ZodType<T>): T {
  if (event?.type !== type) {
    throw new NonRetryableError(`${planner} handles ${type}, not ${String(event?.type)}`);
  }
  const parsed = schema.safeParse(event.data);
  if (!parsed.success) {
    throw new NonRetryableError(`${type} ${event.id} has invalid data`, {
      details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
    });
  }
  return parsed.data;
}

/** @internal Audits one item a planner did not publish. Never throws. */
export function auditSkipped(
  audit: AuditSink,
  clock: Clock,
  logger: Logger,
  input: { eventType: string; subject: EventSubject; outcome: 'invalid' | 'publish_failed'; reason: string; eventId?: string },
): void {
  const { subject } = input;
  safeAudit(
    audit,
    {
      kind: 'planner.skipped',
      at: new Date(clock.now()).toISOString(),
      eventType: input.eventType,
      ...(input.eventId !== undefined ? { eventId: input.eventId } : {}),
      ...(typeof subject.integrationId === 'string' ? { integrationId: subject.integrationId } : {}),
      ...(typeof subject.connectionId === 'string' ? { connectionId: subject.connectionId } : {}),
      ...(typeof subject.tenantId === 'string' ? { tenantId: subject.tenantId } : {}),
      outcome: input.outcome,
      reason: input.reason.slice(0, 500),
    },
    logger,
  );
}

/** @internal Reads the string ids of a host item, ignoring anything else it carries. */
export function itemSubject(item: unknown): EventSubject {
  if (typeof item !== 'object' || item === null) return {};
  const record = item as Record<string, unknown>;
  const out: EventSubject = {};
  for (const key of ['integrationId', 'connectionId', 'tenantId'] as const) {
    try {
      const value = record[key];
      if (typeof value === 'string') out[key] = value;
    } catch {
      // A host row whose getter throws is skipped as invalid; it must not fail the whole check.
    }
  }
  return out;
}

/**
 * Walks a host iterable, rejecting with the signal's reason as soon as it aborts even while an
 * async cursor's `next()` hangs; the cursor's `return()` is then called without waiting on it.
 * @internal
 */
export async function* abortable<T>(source: Iterable<T> | AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  if (!(Symbol.asyncIterator in source)) {
    yield* source as Iterable<T>;
    return;
  }
  const iterator = (source as AsyncIterable<T>)[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const step = await raceSignal(iterator.next(), signal);
      if (step.done === true) {
        finished = true;
        return;
      }
      yield step.value;
    }
  } finally {
    if (!finished) void Promise.resolve().then(() => iterator.return?.()).catch(() => {});
  }
}

/**
 * Logs and audits every failed publish and returns the error that makes the bus retry the check.
 * @internal
 */
export function failuresError(
  failures: readonly PlannerFailure[],
  result: PlanResult,
  check: CloudEvent,
  eventType: string,
  audit: AuditSink,
  clock: Clock,
  logger: Logger,
): IntegrationSyncError {
  for (const failure of failures) {
    const err = summarizeError(failure.error);
    logger.error({ checkEventId: check.id, eventId: failure.eventId, ...failure.subject, err }, 'planner publish failed');
    auditSkipped(audit, clock, logger, { eventType, subject: failure.subject, eventId: failure.eventId, outcome: 'publish_failed', reason: err.code ?? err.message });
  }
  return new IntegrationSyncError(
    'ERR_PUBLISH_FAILED',
    `${failures.length} of ${result.published + failures.length} ${eventType} events planned for ${check.type} ${check.id} ` +
      'could not be published; the check is retried and the derived event ids keep the retry idempotent',
    {
      cause: new AggregateError(failures.map((f) => f.error), 'planner publish failures'),
      details: { ...result, eventIds: failures.slice(0, 20).map((f) => f.eventId) },
    },
  );
}

/** @internal Subscribes a planner's handler to its one event type. */
export function subscribePlanner(
  bus: EventBus,
  type: string,
  handle: (event: CloudEvent, context?: PlannerContext) => Promise<unknown>,
  options: PlannerSubscribeOptions,
): Promise<Subscription> {
  if (typeof bus?.subscribe !== 'function') {
    return Promise.reject(new IntegrationSyncError('ERR_INVALID_OPTION', 'subscribe: bus must be an EventBus (with subscribe)'));
  }
  let group: string;
  try {
    group = assertNonEmptyString('group', options?.group);
  } catch (error) {
    return Promise.reject(error);
  }
  return bus.subscribe({
    group,
    types: [type],
    handler: async (event, context) => {
      await handle(event, context);
    },
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
  });
}

/** @internal Normalises what a host lookup returned into something `for await` can walk. */
export function asIterable<T>(value: unknown, what: string): Iterable<T> | AsyncIterable<T> {
  if (value !== null && typeof value === 'object' && (Symbol.iterator in value || Symbol.asyncIterator in value)) {
    return value as Iterable<T> | AsyncIterable<T>;
  }
  throw new IntegrationSyncError('ERR_INVALID_OPTION', `${what} must return an array, an iterable or an async iterable; got ${value === null ? 'null' : typeof value}`);
}

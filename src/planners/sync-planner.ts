import type { AuditSink } from '../audit/types.js';
import { noopAuditSink } from '../audit/types.js';
import type { EventBus, Subscription } from '../bus/types.js';
import { raceSignal, throwIfAborted } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { childLogger, silentLogger } from '../core/logger.js';
import { assertNonEmptyString, assertOptionalMethods, assertPositiveInt, CLOCK_METHODS } from '../core/options.js';
import { createEvent, type CloudEvent } from '../events/envelope.js';
import { EventTypes, syncCheckDueSchema } from '../events/schemas.js';
import {
  abortable,
  asIterable,
  auditSkipped,
  deriveId,
  failuresError,
  invalidReason,
  itemSubject,
  parseCheck,
  PublishQueue,
  subscribePlanner,
  type PlanResult,
  type PlannerContext,
  type PlannerSubscribeOptions,
} from './planner-support.js';

/** One integration and tenant that should sync now, as the host's {@link FindDue} returns it. */
export interface DueIntegration {
  /** The integration to sync; becomes `data.integrationId` of the scheduled event. */
  integrationId: string;
  /** The tenant to sync it for; becomes `data.tenantId`. */
  tenantId: string;
  /** Why it runs. @default "schedule" */
  trigger?: string;
}

/**
 * The host's question "which integrations are due at `at`?". Return an array, any iterable, or
 * an async iterable (a cursor over a large table streams without loading it whole). Honour
 * `signal`: it aborts when the subscription shuts down.
 */
export type FindDue = (
  at: Date,
  options: { signal: AbortSignal },
) => Promise<Iterable<DueIntegration> | AsyncIterable<DueIntegration>> | Iterable<DueIntegration> | AsyncIterable<DueIntegration>;

/** Options of {@link createSyncPlanner}. */
export interface SyncPlannerOptions {
  /** Where `integration.sync.scheduled` events are published. */
  bus: EventBus;
  /** The host's lookup of due integrations. */
  findDue: FindDue;
  /** Publishes in flight at once. @default 8 */
  concurrency?: number;
  /** `source` of the published events. @default "integration-sync" */
  source?: string;
  /** Receives a `planner.skipped` record per item not published. @default none */
  audit?: AuditSink;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** @default the system clock */
  clock?: Clock;
}

/**
 * Handles `integration.sync.check-due`: asks the host which integrations are due and publishes
 * one `integration.sync.scheduled` per integration and tenant.
 */
export interface SyncPlanner {
  /** The event type handled: `integration.sync.check-due`. */
  readonly type: typeof EventTypes.SyncCheckDue;
  /** The data schema of that type, for `router.on(type, schema, handler)`. */
  readonly schema: typeof syncCheckDueSchema;
  /**
   * Plans one check. Rejects (so the bus retries the check) when the host lookup fails or any
   * publish failed; the derived ids make the retry harmless downstream.
   */
  plan(event: CloudEvent, context?: PlannerContext): Promise<PlanResult>;
  /** {@link SyncPlanner.plan} without its result: an `EventHandler` and a `RouteHandler` as is (bound). */
  handle(event: CloudEvent, context?: PlannerContext): Promise<void>;
  /** Subscribes {@link SyncPlanner.handle} to `integration.sync.check-due` on `bus`. */
  subscribe(bus: EventBus, options: PlannerSubscribeOptions): Promise<Subscription>;
}

/**
 * Id of the `integration.sync.scheduled` event for an integration, tenant and tick: the same
 * inputs always give the same id, so a duplicate tick (two replicas, a redelivered check) is
 * deduplicated by every consumer. `at` is normalised to the instant, so
 * `10:00:00+01:00` and `09:00:00Z` give one id.
 */
export function syncScheduledEventId(integrationId: string, tenantId: string, at: Date | string): string {
  const instant = (at instanceof Date ? at : new Date(at)).getTime();
  return deriveId('sched', [integrationId, tenantId, String(instant)]);
}

/**
 * Creates the sync planner. Wire it to the check-due events with `planner.subscribe(bus, { group })`
 * or `router.on(planner.type, planner.schema, planner.handle)`.
 *
 * @example
 * const planner = createSyncPlanner({
 *   bus,
 *   findDue: (at) => db.integrationsDueAt(at), // [{ integrationId, tenantId }]
 * });
 * await planner.subscribe(bus, { group: 'sync-planner' });
 */
export function createSyncPlanner(options: SyncPlannerOptions): SyncPlanner {
  if (typeof options !== 'object' || options === null) throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createSyncPlanner: options are required');
  if (typeof options.bus?.publish !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createSyncPlanner: bus must be an EventBus (with publish)');
  }
  if (typeof options.findDue !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createSyncPlanner: findDue must be a function (at, { signal }) => due integrations');
  }
  const bus = options.bus;
  const findDue = options.findDue;
  const concurrency = assertPositiveInt('concurrency', options.concurrency ?? 8, 1000);
  const source = options.source == null ? undefined : assertNonEmptyString('source', options.source);
  const audit = assertOptionalMethods('audit', options.audit, ['record']) ?? noopAuditSink;
  const logger = childLogger(options.logger ?? silentLogger, { component: 'sync-planner' });
  const clock = assertOptionalMethods('clock', options.clock, CLOCK_METHODS) ?? systemClock;

  const plan = async (event: CloudEvent, context: PlannerContext = {}): Promise<PlanResult> => {
    context ??= {};
    const data = parseCheck(event, 'sync planner', EventTypes.SyncCheckDue, syncCheckDueSchema);
    const signal = context.signal ?? new AbortController().signal;
    throwIfAborted(signal);
    const at = new Date(data.timestamp);
    const scheduledAt = at.toISOString();
    const queue = new PublishQueue(concurrency);
    const seen = new Set<string>();
    let invalid = 0;

    // Whatever ends the walk (abort, a host error), publishes already started finish first.
    try {
      const found = asIterable<DueIntegration>(await raceSignal(findDue(at, { signal }), signal), 'findDue');
      for await (const raw of abortable(found, signal)) {
        throwIfAborted(signal);
        const subject = itemSubject(raw);
        const item = (typeof raw === 'object' && raw !== null ? raw : {}) as Partial<DueIntegration>;
        let scheduled: CloudEvent;
        try {
          scheduled = createEvent(
            EventTypes.SyncScheduled,
            {
              integrationId: item.integrationId as string,
              tenantId: item.tenantId as string,
              trigger: item.trigger ?? 'schedule',
              scheduledAt,
            },
            {
              id: syncScheduledEventId(String(item.integrationId), String(item.tenantId), at),
              time: new Date(clock.now()),
              ...(source !== undefined ? { source } : {}),
            },
          );
        } catch (error) {
          invalid += 1;
          const reason = invalidReason(error);
          logger.warn({ checkEventId: event.id, ...subject, reason }, 'due integration skipped: it fails the event schema');
          auditSkipped(audit, clock, logger, { eventType: EventTypes.SyncScheduled, subject, outcome: 'invalid', reason });
          continue;
        }
        // The host may list a pair twice; one event is enough.
        if (seen.has(scheduled.id)) continue;
        seen.add(scheduled.id);
        await queue.push(subject, scheduled.id, () => bus.publish(scheduled, { signal }));
      }
    } finally {
      await queue.drain();
    }
    throwIfAborted(signal);
    const result: PlanResult = { published: queue.published, invalid, failed: queue.failures.length };
    if (queue.failures.length > 0) {
      throw failuresError(queue.failures, result, event, EventTypes.SyncScheduled, audit, clock, logger);
    }
    logger.info({ checkEventId: event.id, at: scheduledAt, ...result }, 'sync check planned');
    return result;
  };

  const handle = async (event: CloudEvent, context?: PlannerContext): Promise<void> => {
    await plan(event, context);
  };

  return {
    type: EventTypes.SyncCheckDue,
    schema: syncCheckDueSchema,
    plan,
    handle,
    subscribe: (target, subscribeOptions) => subscribePlanner(target, EventTypes.SyncCheckDue, handle, subscribeOptions),
  };
}


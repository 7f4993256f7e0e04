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
import { EventTypes, tokenCheckExpiringSchema } from '../events/schemas.js';
import {
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

/** One connection whose token expires soon, as the host's {@link FindExpiring} returns it. */
export interface ExpiringConnection {
  /** The connection to refresh; becomes `data.connectionId` of the refresh request. */
  connectionId: string;
  /** The integration it belongs to; becomes `data.integrationId`. */
  integrationId: string;
  /** The tenant owning it; becomes `data.tenantId`. */
  tenantId: string;
  /** When the access token expires: an ISO string or a Date. */
  expiresAt: string | Date;
}

/** One page of {@link FindExpiring}. */
export interface ExpiringPage {
  /** This page's connections; an empty page with a `nextCursor` still continues. */
  items: readonly ExpiringConnection[];
  /** Cursor of the next page; absent (or empty) on the last page. */
  nextCursor?: string | null;
}

/**
 * The host's question "which connections expire before `thresholdTime`?", one page at a time.
 * `cursor` is `undefined` for the first page and then whatever the previous page returned as
 * `nextCursor`; return at most about `limit` items per page. Honour `signal`.
 */
export type FindExpiring = (
  thresholdTime: Date,
  options: { cursor: string | undefined; limit: number; signal: AbortSignal },
) => Promise<ExpiringPage>;

/** Options of {@link createRefreshPlanner}. */
export interface RefreshPlannerOptions {
  /** Where `integration.token.refresh-requested` events are published. */
  bus: EventBus;
  /** The host's paged lookup of expiring connections. */
  findExpiring: FindExpiring;
  /** `limit` passed to each {@link FindExpiring} call. @default 100 */
  pageSize?: number;
  /**
   * Pages read per check before giving up: a guard against a host whose cursor never ends.
   * Reaching it is logged as an error; the check still resolves with what was published.
   * @default 10000
   */
  maxPages?: number;
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

/** What one expiry check did. */
export interface RefreshPlanResult extends PlanResult {
  /** Pages read. */
  pages: number;
  /** Why paging stopped before the host said it was done, if it did. */
  truncated?: 'max_pages' | 'cursor_repeated';
}

/**
 * Handles `integration.token.check-expiring`: pages through the host's expiring connections and
 * publishes one `integration.token.refresh-requested` per connection.
 */
export interface RefreshPlanner {
  /** The event type handled: `integration.token.check-expiring`. */
  readonly type: typeof EventTypes.TokenCheckExpiring;
  /** The data schema of that type, for `router.on(type, schema, handler)`. */
  readonly schema: typeof tokenCheckExpiringSchema;
  /**
   * Plans one check. Every connection is visited once even when some publishes fail; it then
   * rejects with `ERR_PUBLISH_FAILED` so the bus retries the check, and the derived ids make the
   * retry idempotent for the connections already requested.
   */
  plan(event: CloudEvent, context?: PlannerContext): Promise<RefreshPlanResult>;
  /** {@link RefreshPlanner.plan} without its result: an `EventHandler` and a `RouteHandler` as is (bound). */
  handle(event: CloudEvent, context?: PlannerContext): Promise<void>;
  /** Subscribes {@link RefreshPlanner.handle} to `integration.token.check-expiring` on `bus`. */
  subscribe(bus: EventBus, options: PlannerSubscribeOptions): Promise<Subscription>;
}

/**
 * Id of the `integration.token.refresh-requested` event for a connection in one expiry check:
 * a redelivered or duplicated check (same event id) requests each connection once; the next
 * check (a new id) requests it again.
 */
export function refreshRequestedEventId(connectionId: string, checkEventId: string): string {
  return deriveId('refresh', [connectionId, checkEventId]);
}

/**
 * Creates the refresh planner.
 *
 * @example
 * const planner = createRefreshPlanner({
 *   bus,
 *   findExpiring: async (threshold, { cursor, limit }) => {
 *     const rows = await db.connectionsExpiringBefore(threshold, { after: cursor, limit });
 *     return { items: rows, nextCursor: rows.length === limit ? rows.at(-1).connectionId : undefined };
 *   },
 * });
 * await planner.subscribe(bus, { group: 'refresh-planner' });
 */
export function createRefreshPlanner(options: RefreshPlannerOptions): RefreshPlanner {
  if (typeof options !== 'object' || options === null) throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRefreshPlanner: options are required');
  if (typeof options.bus?.publish !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'createRefreshPlanner: bus must be an EventBus (with publish)');
  }
  if (typeof options.findExpiring !== 'function') {
    throw new IntegrationSyncError(
      'ERR_INVALID_OPTION',
      'createRefreshPlanner: findExpiring must be a function (thresholdTime, { cursor, limit, signal }) => { items, nextCursor }',
    );
  }
  const bus = options.bus;
  const findExpiring = options.findExpiring;
  const pageSize = assertPositiveInt('pageSize', options.pageSize ?? 100, 100_000);
  const maxPages = assertPositiveInt('maxPages', options.maxPages ?? 10_000);
  const concurrency = assertPositiveInt('concurrency', options.concurrency ?? 8, 1000);
  const source = options.source == null ? undefined : assertNonEmptyString('source', options.source);
  const audit = assertOptionalMethods('audit', options.audit, ['record']) ?? noopAuditSink;
  const logger = childLogger(options.logger ?? silentLogger, { component: 'refresh-planner' });
  const clock = assertOptionalMethods('clock', options.clock, CLOCK_METHODS) ?? systemClock;

  const plan = async (event: CloudEvent, context: PlannerContext = {}): Promise<RefreshPlanResult> => {
    context ??= {};
    const data = parseCheck(event, 'refresh planner', EventTypes.TokenCheckExpiring, tokenCheckExpiringSchema);
    const signal = context.signal ?? new AbortController().signal;
    throwIfAborted(signal);
    const threshold = new Date(data.thresholdTime);
    const queue = new PublishQueue(concurrency);
    // A connection that shows up on two pages (rows shifting under an offset cursor) is requested once.
    const seenConnections = new Set<string>();
    const seenCursors = new Set<string>();
    let invalid = 0;
    let pages = 0;
    let cursor: string | undefined;
    let truncated: RefreshPlanResult['truncated'];

    // Whatever ends the walk (abort, a host error), publishes already started finish first.
    try {
      for (;;) {
        throwIfAborted(signal);
        if (pages >= maxPages) {
          truncated = 'max_pages';
          break;
        }
        const page = await raceSignal(findExpiring(threshold, { cursor, limit: pageSize, signal }), signal);
        pages += 1;
        if (typeof page !== 'object' || page === null || !Array.isArray(page.items)) {
          throw new IntegrationSyncError('ERR_INVALID_OPTION', 'findExpiring must resolve to { items: [...], nextCursor? }', { details: { page: pages } });
        }
        for (const raw of page.items) {
          throwIfAborted(signal);
          const subject = itemSubject(raw);
          const item = (typeof raw === 'object' && raw !== null ? raw : {}) as Partial<ExpiringConnection>;
          let requested: CloudEvent;
          try {
            const expiresAt = item.expiresAt instanceof Date ? toIso(item.expiresAt) : item.expiresAt;
            requested = createEvent(
              EventTypes.TokenRefreshRequested,
              {
                connectionId: item.connectionId as string,
                integrationId: item.integrationId as string,
                tenantId: item.tenantId as string,
                expiresAt: expiresAt as string,
                requestedAt: new Date(clock.now()).toISOString(),
              },
              {
                id: refreshRequestedEventId(String(item.connectionId), event.id),
                time: new Date(clock.now()),
                ...(source !== undefined ? { source } : {}),
              },
            );
          } catch (error) {
            invalid += 1;
            const reason = invalidReason(error);
            logger.warn({ checkEventId: event.id, ...subject, reason }, 'expiring connection skipped: it fails the event schema');
            auditSkipped(audit, clock, logger, { eventType: EventTypes.TokenRefreshRequested, subject, outcome: 'invalid', reason });
            continue;
          }
          const connectionId = item.connectionId as string;
          if (seenConnections.has(connectionId)) continue;
          seenConnections.add(connectionId);
          await queue.push(subject, requested.id, () => bus.publish(requested, { signal }));
        }
        const next = page.nextCursor;
        if (next === undefined || next === null || next === '') break;
        if (typeof next !== 'string') {
          throw new IntegrationSyncError('ERR_INVALID_OPTION', `findExpiring returned a ${typeof next} nextCursor; it must be a string or absent`);
        }
        if (seenCursors.has(next)) {
          truncated = 'cursor_repeated';
          break;
        }
        seenCursors.add(next);
        cursor = next;
      }
    } finally {
      await queue.drain();
    }
    throwIfAborted(signal);
    const result: RefreshPlanResult = { published: queue.published, invalid, failed: queue.failures.length, pages, ...(truncated ? { truncated } : {}) };
    if (truncated) {
      // Retrying would page the same broken cursor again, so this is reported, not thrown.
      logger.error(
        { checkEventId: event.id, pages, truncated },
        truncated === 'max_pages'
          ? `findExpiring still had pages after maxPages (${maxPages}); stopped paging. Check the host cursor or raise maxPages`
          : 'findExpiring returned a cursor it had already returned; stopped paging. Check the host cursor',
      );
    }
    if (queue.failures.length > 0) {
      throw failuresError(queue.failures, result, event, EventTypes.TokenRefreshRequested, audit, clock, logger);
    }
    logger.info({ checkEventId: event.id, thresholdTime: threshold.toISOString(), ...result }, 'token expiry check planned');
    return result;
  };

  const handle = async (event: CloudEvent, context?: PlannerContext): Promise<void> => {
    await plan(event, context);
  };

  return {
    type: EventTypes.TokenCheckExpiring,
    schema: tokenCheckExpiringSchema,
    plan,
    handle,
    subscribe: (target, subscribeOptions) => subscribePlanner(target, EventTypes.TokenCheckExpiring, handle, subscribeOptions),
  };
}

/** An invalid Date becomes a string the schema rejects, instead of a RangeError. */
function toIso(date: Date): string {
  return Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString();
}

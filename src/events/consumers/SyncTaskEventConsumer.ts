import type { AuditSink } from '../../audit/types.js';
import { noopAuditSink } from '../../audit/types.js';
import { safeAudit } from '../../bus/delivery.js';
import type { DeliveryContext, EventBus, Subscription } from '../../bus/types.js';
import { abortReason, DEFAULT_STOP_TIMEOUT_MS, raceSignal, sleep } from '../../core/abort.js';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { IntegrationSyncError, isIntegrationSyncError, isNonRetryable, NonRetryableError, summarizeError } from '../../core/errors.js';
import type { LeaseHandle, Lease } from '../../leases/types.js';
import type { Logger } from '../../core/logger.js';
import { childLogger, silentLogger } from '../../core/logger.js';
import { assertMs, assertNonEmptyString, assertOptionalMethods, assertPositiveInt, CLOCK_METHODS, LEASE_METHODS } from '../../core/options.js';
import { createMemorySyncTaskStore } from '../../tasks/memory-task-store.js';
import { OVERLAP_POLICIES, SyncOverlapRunner, type OverlapPolicy } from '../../tasks/overlap.js';
import { taskErrorText } from '../../tasks/task-error.js';
import type { IntegrationSyncService, SyncTask, SyncTaskPatch, SyncTaskStatus, SyncTaskStore } from '../../tasks/types.js';
import type { RefreshOutcome, TokenRefresher } from '../../tokens/types.js';
import type { CloudEvent } from '../envelope.js';
import { EventRouter } from '../router.js';
import { EventTypes } from '../schemas.js';

/** Derives a task id from the consumer group and the event id. */
export type SyncTaskIdGenerator = (input: { group: string; eventId: string; type: string }) => string;

/** Options of {@link SyncTaskEventConsumer}. */
export interface SyncTaskEventConsumerOptions {
  /** The bus to consume from. The consumer subscribes on `start()`; it never closes the bus. */
  bus: EventBus;
  /** The host's sync: called once per task with the task and an abort signal. */
  syncService: IntegrationSyncService;
  /** Handles `integration.token.refresh-requested` (a `TokenRefreshService`). */
  tokenRefresh: TokenRefresher;
  /** Where tasks are recorded. @default createMemorySyncTaskStore() */
  store?: SyncTaskStore;
  /** Consumer group; replicas with the same group share the events. @default 'integration-sync' */
  group?: string;
  /** Events handled at once by this replica. @default 8 */
  concurrency?: number;
  /** Deliveries of a failing event before the bus dead-letters it. @default the bus's (5) */
  maxAttempts?: number;
  /** What a sync arriving while one runs for the same integration and tenant does. @default 'coalesce' */
  overlap?: OverlapPolicy;
  /** Receives one `task.transition` record per status change. @default none */
  audit?: AuditSink;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** @default the system clock */
  clock?: Clock;
  /**
   * Task id of an event. It must be stable across redeliveries of one event, so a redelivered
   * event re-uses its task instead of making a second one. @default `${group}:${eventId}`
   */
  idGenerator?: SyncTaskIdGenerator;
  /** Aborts a sync that runs longer than this (the task fails with `ERR_SYNC_TIMEOUT`). @default no limit */
  syncTimeoutMs?: number;
  /** How long `stop()` waits for in-flight work before aborting it. @default 10000 */
  stopTimeoutMs?: number;
  /**
   * Holds `sync:<integrationId>:<tenantId>` across replicas while a sync runs (the overlap
   * policy alone only covers this process). Use the Redis or PostgreSQL lease with several
   * replicas. A key held elsewhere is waited for up to `leaseWaitMs`; then the handler throws
   * `ERR_LEASE` (retryable) and the bus redelivers the event later, its task still `pending`.
   * @default none (one sync per key per process only)
   */
  lease?: Lease;
  /** TTL of the sync lease; renewed every third of it while the sync runs. @default 60000 */
  leaseTtlMs?: number;
  /** How long a sync waits for a key another replica holds before its event is retried. @default 10000 */
  leaseWaitMs?: number;
}

/** Options of {@link SyncTaskEventConsumer.stop}. */
export interface ConsumerStopOptions {
  /** Deadline for in-flight handlers before their syncs are aborted. @default the `stopTimeoutMs` option */
  timeoutMs?: number;
}

const DEFAULT_GROUP = 'integration-sync';
const DEFAULT_CONCURRENCY = 8;
const DEFAULT_LEASE_TTL_MS = 60_000;
const DEFAULT_LEASE_WAIT_MS = 10_000;
const LEASE_POLL_MS = 250;
/** After the deadline's abort, handlers only write a status; this bounds that. */
const ABORT_GRACE_MS = 1000;

/** Data the sync handlers read, whichever event carried it. */
interface SyncRequest {
  integrationId: string;
  tenantId: string;
  trigger: string;
  entityType?: string;
  filters?: Record<string, unknown>;
}

/**
 * Consumes the three inbound events of the contract on a small {@link EventRouter}:
 *
 * - `integration.sync.scheduled` and `integration.webhook.received` (trigger `webhook`) create a
 *   {@link SyncTask} and run `syncService.execute(task, { signal })`; statuses go
 *   `pending -> running -> succeeded | failed`, or `pending -> skipped` under the overlap policy,
 *   and each change is audited (`task.transition`).
 * - `integration.token.refresh-requested` calls `tokenRefresh.refreshConnectionTokens`.
 *
 * Failure and redelivery: the task id comes from the group and the event id, so a redelivered
 * event finds its task. A task already `succeeded` or `skipped` is not run again (acked); a
 * `failed`, `pending` or stale `running` one is run again under the same id. A failed sync
 * rethrows (as `ERR_SYNC_FAILED`, with the secret-free text the task records), so the bus
 * retries it with backoff and dead-letters it after `maxAttempts`; a host error marked
 * non-retryable (`retryable: false`) is dead-lettered at once.
 *
 * Token refresh outcomes (`refreshed`, `failed`, `skipped`) are all acked: the refresher has
 * already published `integration.token.refreshed` or `.refresh.failed` and retried what was
 * transient; the next `check-expiring` cycle asks again, and a permanent failure
 * (`invalid_grant`) must not be hammered by bus redeliveries. Only a refresher that throws
 * (a bug, or shutdown) makes the event retry.
 *
 * One sync per integration and tenant runs at a time in this process (see {@link OverlapPolicy}).
 * A waiting run's handler awaits it, so its event stays unacked and survives a crash; only the
 * events merged into it (`coalesce`) or dropped (`skip`) are acked at once, recorded `skipped`
 * with the reason. When merged events ask for different `entityType`/`filters`, the follow-up
 * widens to a full sync (both cleared), since running the union of scopes is not expressible.
 * With `coalesce` a waiting follow-up holds one concurrency slot per key, with `queue` every
 * waiter does: size `concurrency` for the number of keys that may be busy at once. Across
 * replicas, pass a `lease` (Redis or PostgreSQL) to hold `sync:<integrationId>:<tenantId>`.
 *
 * @example
 * const consumer = new SyncTaskEventConsumer({
 *   bus,
 *   syncService: { execute: (task, { signal }) => crm.sync(task, { signal }) },
 *   tokenRefresh: tokenRefreshService,
 *   overlap: 'coalesce',
 * });
 * await consumer.start();
 * // on shutdown
 * await consumer.stop();
 */
export class SyncTaskEventConsumer {
  /** The routing table (three routes); `router.handle(event)` runs an event without a bus. */
  readonly router: EventRouter;
  /** Where this consumer records tasks. */
  readonly store: SyncTaskStore;
  /** The consumer group. */
  readonly group: string;
  /** The overlap policy in force. */
  readonly overlap: OverlapPolicy;

  private readonly bus: EventBus;
  private readonly syncService: IntegrationSyncService;
  private readonly tokenRefresh: TokenRefresher;
  private readonly concurrency: number;
  private readonly maxAttempts: number | undefined;
  private readonly audit: AuditSink;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly idGenerator: SyncTaskIdGenerator;
  private readonly syncTimeoutMs: number | undefined;
  private readonly stopTimeoutMs: number;
  private readonly lease: Lease | undefined;
  private readonly leaseTtlMs: number;
  private readonly leaseWaitMs: number;
  private readonly runner: SyncOverlapRunner;
  private readonly controller = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private startPromise: Promise<Subscription> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(options: SyncTaskEventConsumerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'SyncTaskEventConsumer: options are required ({ bus, syncService, tokenRefresh })');
    }
    requireMethod('bus', options.bus, 'subscribe');
    requireMethod('syncService', options.syncService, 'execute');
    requireMethod('tokenRefresh', options.tokenRefresh, 'refreshConnectionTokens');
    if (options.overlap != null && !OVERLAP_POLICIES.includes(options.overlap)) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `overlap must be one of ${OVERLAP_POLICIES.join(', ')}; got ${String(options.overlap).slice(0, 40)}`);
    }
    if (options.idGenerator != null && typeof options.idGenerator !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'idGenerator must be a function');
    }
    this.bus = options.bus;
    this.syncService = options.syncService;
    this.tokenRefresh = options.tokenRefresh;
    assertOptionalMethods('clock', options.clock, CLOCK_METHODS);
    this.store = assertOptionalMethods('store', options.store, ['create', 'get', 'update']) ?? createMemorySyncTaskStore({ clock: options.clock ?? systemClock });
    this.group = assertNonEmptyString('group', options.group ?? DEFAULT_GROUP);
    this.concurrency = assertPositiveInt('concurrency', options.concurrency ?? DEFAULT_CONCURRENCY, 10_000);
    this.maxAttempts = options.maxAttempts == null ? undefined : assertPositiveInt('maxAttempts', options.maxAttempts, 1000);
    this.overlap = options.overlap ?? 'coalesce';
    this.audit = assertOptionalMethods('audit', options.audit, ['record']) ?? noopAuditSink;
    this.logger = childLogger(options.logger ?? silentLogger, { component: 'SyncTaskEventConsumer' });
    this.clock = options.clock ?? systemClock;
    this.idGenerator = options.idGenerator ?? (({ group, eventId }) => `${group}:${eventId}`);
    this.syncTimeoutMs = options.syncTimeoutMs == null ? undefined : assertMs('syncTimeoutMs', options.syncTimeoutMs);
    this.stopTimeoutMs = assertMs('stopTimeoutMs', options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, 0);
    this.lease = assertOptionalMethods('lease', options.lease, LEASE_METHODS) ?? undefined;
    this.leaseTtlMs = assertMs('leaseTtlMs', options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS, 30);
    this.leaseWaitMs = assertMs('leaseWaitMs', options.leaseWaitMs ?? DEFAULT_LEASE_WAIT_MS, 0);
    this.runner = new SyncOverlapRunner({ policy: this.overlap, run: (task, signal) => this.runTask(task, signal) });

    this.router = new EventRouter()
      .on(EventTypes.SyncScheduled, (event, context) =>
        this.track(() =>
          this.handleSync(event, context, {
            integrationId: event.data.integrationId,
            tenantId: event.data.tenantId,
            trigger: event.data.trigger,
            ...scopeOf(event.data),
          }),
        ),
      )
      .on(EventTypes.WebhookReceived, (event, context) =>
        this.track(() =>
          this.handleSync(event, context, {
            integrationId: event.data.integrationId,
            tenantId: event.data.tenantId,
            trigger: 'webhook',
            ...scopeOf(event.data),
          }),
        ),
      )
      .on(EventTypes.TokenRefreshRequested, (event, context) => this.track(() => this.handleRefresh(event, context)));
  }

  /** True between `start()` and `stop()`. */
  get running(): boolean {
    return this.startPromise !== undefined && this.stopPromise === undefined;
  }

  /**
   * Subscribes to the bus (group {@link SyncTaskEventConsumer.group}). Idempotent; rejects with
   * `ERR_CLOSED` after `stop()` (make a new consumer to consume again).
   */
  async start(): Promise<void> {
    if (this.stopPromise !== undefined) {
      throw new IntegrationSyncError('ERR_CLOSED', 'SyncTaskEventConsumer.start: the consumer was stopped; create a new one');
    }
    this.startPromise ??= this.router
      .subscribe(this.bus, { group: this.group, concurrency: this.concurrency, ...(this.maxAttempts !== undefined ? { maxAttempts: this.maxAttempts } : {}) })
      .catch((error: unknown) => {
        this.startPromise = undefined;
        throw error;
      });
    await this.startPromise;
    this.logger.info({ group: this.group, overlap: this.overlap, concurrency: this.concurrency }, 'sync task consumer started');
  }

  /**
   * Stops taking events, waits for in-flight handlers up to the deadline, then aborts their
   * syncs (their tasks are recorded `failed` with `ERR_ABORTED` and their events left for
   * redelivery, which re-runs the same task). Idempotent.
   */
  stop(options: ConsumerStopOptions = {}): Promise<void> {
    options ??= {};
    const timeoutMs = options.timeoutMs === undefined ? this.stopTimeoutMs : assertMs('timeoutMs', options.timeoutMs, 0);
    this.stopPromise ??= this.shutdown(timeoutMs);
    return this.stopPromise;
  }

  /** Same as `stop()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const timers: TimerHandle[] = [];
    const after = (ms: number): Promise<void> => new Promise((resolve) => timers.push(this.clock.setTimeout(resolve, ms)));
    const deadline = after(timeoutMs).then(() => {
      this.controller.abort(new IntegrationSyncError('ERR_ABORTED', `SyncTaskEventConsumer stopped; work still running after ${timeoutMs} ms was aborted`));
    });
    try {
      const subscription = await this.startPromise?.catch(() => undefined);
      await Promise.race([Promise.all([subscription?.close({ timeoutMs }), this.settled()]), deadline]);
      if (!this.controller.signal.aborted) {
        this.controller.abort(new IntegrationSyncError('ERR_ABORTED', 'SyncTaskEventConsumer stopped'));
      }
      // Aborted handlers only record a status now; do not let a hung store hold shutdown.
      await Promise.race([this.settled(), after(ABORT_GRACE_MS)]);
      if (this.inFlight.size > 0) this.logger.warn({ inFlight: this.inFlight.size }, 'stop: handlers still settling after abort');
      this.logger.info({ group: this.group }, 'sync task consumer stopped');
    } finally {
      for (const timer of timers) this.clock.clearTimeout(timer);
    }
  }

  private async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(work: () => Promise<T>): Promise<T> {
    if (this.stopPromise !== undefined) {
      // Retryable on purpose: the bus hands the event back (or to another replica).
      return Promise.reject(new IntegrationSyncError('ERR_CLOSED', 'SyncTaskEventConsumer is stopping; the event will be redelivered'));
    }
    const promise = work();
    this.inFlight.add(promise);
    const remove = (): void => {
      this.inFlight.delete(promise);
    };
    promise.then(remove, remove);
    return promise;
  }

  private async handleSync(event: CloudEvent, context: DeliveryContext, request: SyncRequest): Promise<void> {
    const signal = AbortSignal.any([this.controller.signal, context.signal]);
    const task = await this.loadOrCreateTask(event, request);
    if (task.status === 'succeeded' || task.status === 'skipped') {
      this.logger.debug({ taskId: task.id, eventId: event.id, status: task.status }, 'task already settled; redelivery acked');
      return;
    }
    const outcome = await this.runner.submit(task, signal);
    if (outcome.outcome === 'coalesced') {
      if (outcome.widened) {
        // Persist the widening now: if the follow-up's process dies, its redelivery re-runs it wide.
        await this.store.update(outcome.into.id, { entityType: undefined, filters: undefined }).catch((error: unknown) => {
          this.logger.error({ taskId: outcome.into.id, err: summarizeError(error) }, 'could not record the widened follow-up');
        });
      }
      await this.transition(task, 'skipped', { finishedAt: this.now() }, `coalesced into ${outcome.into.id}`);
    } else if (outcome.outcome === 'skipped') {
      await this.transition(task, 'skipped', { finishedAt: this.now() }, `sync ${outcome.runningTaskId} already running`);
    }
  }

  private async loadOrCreateTask(event: CloudEvent, request: SyncRequest): Promise<SyncTask> {
    const id = this.idGenerator({ group: this.group, eventId: event.id, type: event.type });
    const existing = await this.store.get(id);
    if (existing !== undefined) return existing;
    const now = this.now();
    const task: SyncTask = {
      id,
      integrationId: request.integrationId,
      tenantId: request.tenantId,
      trigger: request.trigger,
      ...(request.entityType !== undefined ? { entityType: request.entityType } : {}),
      ...(request.filters !== undefined ? { filters: request.filters } : {}),
      status: 'pending',
      eventId: event.id,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.store.create(task);
    } catch (error) {
      // Another replica may have created it between get and create; take theirs.
      const raced = await this.store.get(id);
      if (raced !== undefined) return raced;
      throw error;
    }
    this.emitTransition(task, 'pending', `${event.type} ${event.id}`);
    return task;
  }

  /** The overlap runner's run function: one execute with its status bookkeeping. */
  private async runTask(task: SyncTask, signal: AbortSignal): Promise<void> {
    // Taken before `running`: a key held by another replica leaves the task pending for the retry.
    const held = this.lease === undefined ? undefined : await this.acquireLease(task, signal);
    const leaseLost = new AbortController();
    const timeout = new AbortController();
    const stopRenewing = held === undefined ? undefined : this.keepLease(held, leaseLost);
    let timer: TimerHandle | undefined;
    try {
      if (held !== undefined && (await this.settledElsewhere(task))) return;
      if (this.syncTimeoutMs !== undefined) {
        const ms = this.syncTimeoutMs;
        timer = this.clock.setTimeout(() => timeout.abort(new IntegrationSyncError('ERR_ABORTED', `sync exceeded syncTimeoutMs (${ms} ms)`)), ms);
      }
      await this.executeTask(task, signal, AbortSignal.any([signal, timeout.signal, leaseLost.signal]), (error) => {
        if (leaseLost.signal.aborted) return 'ERR_LEASE';
        if (timeout.signal.aborted) return 'ERR_SYNC_TIMEOUT';
        return taskErrorText(error);
      });
    } finally {
      if (timer !== undefined) this.clock.clearTimeout(timer);
      stopRenewing?.();
      if (held !== undefined) {
        await this.lease?.release(held.handle).catch((error: unknown) => {
          this.logger.warn({ key: held.handle.key, err: summarizeError(error) }, 'sync lease release failed; it will expire');
        });
      }
    }
  }

  private async executeTask(task: SyncTask, signal: AbortSignal, runSignal: AbortSignal, describe: (error: unknown) => string): Promise<void> {
    const running = await this.transition(task, 'running', {
      startedAt: this.now(),
      finishedAt: undefined,
      error: undefined,
      // The runner's copy is authoritative for scope: a coalesced follow-up may have been widened.
      entityType: task.entityType,
      filters: task.filters,
    });
    let result: void | Record<string, unknown>;
    let work: Promise<void | Record<string, unknown>> | undefined;
    try {
      work = Promise.resolve().then(() => this.syncService.execute(structuredClone(running), { signal: runSignal }));
      result = await raceSignal(work, runSignal);
    } catch (error) {
      const text = signal.aborted ? taskErrorText(abortReason(signal)) : describe(error);
      await this.transition(running, 'failed', { finishedAt: this.now(), error: text }, text).catch((storeError: unknown) => {
        this.logger.error({ taskId: task.id, err: summarizeError(storeError) }, 'could not record the failed task');
      });
      this.logger.warn({ taskId: task.id, integrationId: task.integrationId, tenantId: task.tenantId, error: text }, 'sync failed');
      if (work !== undefined && runSignal.aborted && !signal.aborted) {
        // Timed out or lost its lease but ignores the signal: the event fails now, but the key stays
        // busy in this process until the sync returns, or its retry would run beside it.
        this.runner.holdKeyUntil(task, work.then(() => {}, () => {}));
      }
      if (signal.aborted) throw abortReason(signal);
      const message = `sync task ${task.id} for ${task.integrationId}/${task.tenantId} failed: ${text}`;
      if (isNonRetryable(error)) throw new NonRetryableError(message, { details: { taskId: task.id, error: text } });
      throw new IntegrationSyncError('ERR_SYNC_FAILED', message, { details: { taskId: task.id, error: text } });
    }
    const patch: SyncTaskPatch = { finishedAt: this.now() };
    if (isPlainObject(result)) patch.result = result;
    try {
      await this.transition(running, 'succeeded', patch);
    } catch (error) {
      // The sync happened; failing the event now would run it again for a bookkeeping error.
      this.logger.error({ taskId: task.id, err: summarizeError(error) }, 'sync succeeded but its status could not be recorded');
    }
  }

  /**
   * True when another replica settled this very task while we waited for its key: two copies of
   * one event (a slot re-planned after a crash republishes its derived ids) reach two replicas at
   * once, and the bus's idempotency only marks an id once its handler is done. A store that
   * cannot answer runs the sync (at least once over at most once).
   */
  private async settledElsewhere(task: SyncTask): Promise<boolean> {
    const current = await this.store.get(task.id).catch((error: unknown) => {
      this.logger.warn({ taskId: task.id, err: summarizeError(error) }, 'could not re-read the task after taking its lease; running it');
      return undefined;
    });
    if (current?.status !== 'succeeded' && current?.status !== 'skipped') return false;
    this.logger.debug({ taskId: task.id, status: current.status }, 'task settled by another replica while waiting for its lease; not run again');
    return true;
  }

  /** Takes `sync:<integrationId>:<tenantId>`, polling up to `leaseWaitMs` while another replica holds it. */
  private async acquireLease(task: SyncTask, signal: AbortSignal): Promise<{ handle: LeaseHandle }> {
    const lease = this.lease as Lease;
    const key = `sync:${task.integrationId}:${task.tenantId}`;
    const deadline = this.clock.now() + this.leaseWaitMs;
    for (;;) {
      let handle: LeaseHandle | null;
      try {
        handle = await lease.tryAcquire(key, this.leaseTtlMs);
      } catch (cause) {
        throw new IntegrationSyncError('ERR_LEASE', `could not take the sync lease ${key}; the event will be retried`, { cause, details: { key, taskId: task.id } });
      }
      if (handle !== null) return { handle };
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) {
        throw new IntegrationSyncError('ERR_LEASE', `a sync for ${task.integrationId}/${task.tenantId} is running on another replica; the event will be retried`, {
          details: { key, taskId: task.id },
        });
      }
      await sleep(Math.min(LEASE_POLL_MS, remaining), signal, this.clock);
    }
  }

  /**
   * Renews the lease every third of its TTL; aborts the sync when it is lost (another replica
   * may have taken over). Returns the function that stops renewing.
   */
  private keepLease(held: { handle: LeaseHandle }, lost: AbortController): () => void {
    const lease = this.lease as Lease;
    const every = Math.max(10, Math.floor(this.leaseTtlMs / 3));
    let timer: TimerHandle | undefined;
    let stopped = false;
    // `expiresAt` is on the lease store's clock (the database's, for PostgreSQL); judge expiry on
    // ours, from when each renewal was asked for, so clock skew between them cannot stretch it.
    let localExpiry = this.clock.now() + this.leaseTtlMs;
    const renew = async (): Promise<void> => {
      const askedAt = this.clock.now();
      try {
        const next = await lease.renew(held.handle, this.leaseTtlMs);
        if (next === null) {
          lost.abort(new IntegrationSyncError('ERR_LEASE', `lost the sync lease ${held.handle.key}`));
          return;
        }
        held.handle = next;
        localExpiry = askedAt + this.leaseTtlMs;
      } catch (error) {
        this.logger.warn({ key: held.handle.key, err: summarizeError(error) }, 'sync lease renewal failed; retrying');
        if (this.clock.now() >= localExpiry) {
          lost.abort(new IntegrationSyncError('ERR_LEASE', `sync lease ${held.handle.key} expired`));
          return;
        }
      }
      if (!stopped) timer = this.clock.setTimeout(() => void renew(), every);
    };
    timer = this.clock.setTimeout(() => void renew(), every);
    return () => {
      stopped = true;
      if (timer !== undefined) this.clock.clearTimeout(timer);
    };
  }

  private async handleRefresh(event: CloudEvent, context: DeliveryContext): Promise<void> {
    const data = event.data as { connectionId: string; integrationId: string; tenantId: string; expiresAt: string; requestedAt: string };
    const signal = AbortSignal.any([this.controller.signal, context.signal]);
    let outcome: RefreshOutcome;
    try {
      outcome = await this.tokenRefresh.refreshConnectionTokens(
        { connectionId: data.connectionId, integrationId: data.integrationId, tenantId: data.tenantId, expiresAt: data.expiresAt, requestedAt: data.requestedAt },
        { signal },
      );
    } catch (error) {
      if (signal.aborted) throw abortReason(signal);
      if (isIntegrationSyncError(error)) throw error;
      throw new IntegrationSyncError('ERR_TOKEN_REFRESH', `token refresh of connection ${data.connectionId} threw: ${taskErrorText(error)}`);
    }
    const fields = { eventId: event.id, connectionId: data.connectionId, integrationId: data.integrationId, tenantId: data.tenantId, status: outcome?.status };
    if (outcome?.status === 'failed') this.logger.warn({ ...fields, error: outcome.error, retryable: outcome.retryable }, 'token refresh failed; acked, the next check-expiring cycle asks again');
    else this.logger.info(fields, 'token refresh handled');
  }

  private async transition(task: SyncTask, status: SyncTaskStatus, patch: SyncTaskPatch, reason?: string): Promise<SyncTask> {
    const updated = await this.store.update(task.id, { ...patch, status, ...(status === 'skipped' && reason !== undefined ? { error: reason } : {}) });
    const next = updated ?? { ...task, ...patch, status };
    this.emitTransition(next, status, reason);
    return next;
  }

  private emitTransition(task: SyncTask, status: SyncTaskStatus, reason?: string): void {
    safeAudit(
      this.audit,
      {
        kind: 'task.transition',
        at: this.now(),
        group: this.group,
        integrationId: task.integrationId,
        tenantId: task.tenantId,
        taskId: task.id,
        ...(task.eventId !== undefined ? { eventId: task.eventId } : {}),
        outcome: status,
        ...(reason !== undefined ? { reason: reason.slice(0, 500) } : {}),
      },
      this.logger,
    );
    this.logger.debug({ taskId: task.id, integrationId: task.integrationId, tenantId: task.tenantId, status, reason }, 'task transition');
  }

  private now(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

function requireMethod(name: string, value: unknown, method: string): void {
  if (typeof value !== 'object' || value === null || typeof (value as Record<string, unknown>)[method] !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `SyncTaskEventConsumer: ${name} must be an object with a ${method}() method`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `entityType` and `filters` where the data carries them with usable types (scheduled events may too). */
function scopeOf(data: Record<string, unknown>): Pick<SyncRequest, 'entityType' | 'filters'> {
  return {
    ...(typeof data.entityType === 'string' && data.entityType !== '' ? { entityType: data.entityType } : {}),
    ...(isPlainObject(data.filters) ? { filters: data.filters } : {}),
  };
}


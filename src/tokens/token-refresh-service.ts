import type { AuditRecord, AuditSink } from '../audit/types.js';
import { noopAuditSink } from '../audit/types.js';
import { safeAudit } from '../bus/delivery.js';
import type { EventBus } from '../bus/types.js';
import { abortReason, DEFAULT_STOP_TIMEOUT_MS, settleWithin, throwIfAborted, type SignalOptions } from '../core/abort.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { childLogger, silentLogger } from '../core/logger.js';
import { assertMs, assertNonEmptyString, assertOptionalMethods, LEASE_METHODS, MAX_TIMER_MS } from '../core/options.js';
import { createEvent, DEFAULT_SOURCE } from '../events/envelope.js';
import { EventTypes } from '../events/schemas.js';
import type { HttpClient, HttpRequest } from '../http/types.js';
import type { Lease, LeaseHandle } from '../leases/types.js';
import { holdsSlot, SlotTimer, type SlotTick } from '../scheduler/slot-timer.js';
import { attemptsOf, classifyRefreshError, classifyRefreshResponse } from './classify.js';
import { createMemoryRefreshRecordStore, type RefreshRecordStore } from './refresh-record-store.js';
import type { ConnectionRefreshRequest, RefreshOutcome, TokenRefresher } from './types.js';

/** Default period of the `integration.token.check-expiring` tick: one hour. */
export const DEFAULT_TOKEN_CHECK_INTERVAL_MS = 3_600_000;
/** Default margin added to one interval to make the look-ahead: five minutes. */
export const DEFAULT_LOOK_AHEAD_MARGIN_MS = 300_000;
/** Default TTL of the per-connection refresh lease: one minute. */
export const DEFAULT_REFRESH_LEASE_TTL_MS = 60_000;

/** The request {@link TokenRefreshServiceOptions.buildRequest} returns; the service adds signal, timeout and retries. */
export interface RefreshHttpRequest {
  /** @default "POST" */
  method?: HttpRequest['method'];
  /** Absolute URL. */
  url: string;
  /** Added over the service headers. */
  headers?: Record<string, string>;
  /** A string is sent as is, anything else as JSON. */
  body?: unknown;
}

/** Service credentials for the integration-manager: fixed, or read per call so they can rotate. */
export type RefreshHeaders = Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);

/** Options of {@link TokenRefreshService}. */
export interface TokenRefreshServiceOptions {
  /** Where `integration.token.check-expiring`, `.refreshed` and `.refresh.failed` are published. */
  bus: EventBus;
  /** Outbound HTTP; use `createFetchHttpClient()` unless the host has its own. */
  http: HttpClient;
  /**
   * Base URL of the integration-manager, e.g. `https://im.internal/api`. Required unless
   * `buildRequest` returns absolute URLs of its own.
   */
  baseUrl?: string;
  /** The host's service credentials for the integration-manager, sent with every refresh call. */
  headers?: RefreshHeaders;
  /**
   * Builds the refresh call. @default `POST {baseUrl}/connections/{encodeURIComponent(connectionId)}/refresh`
   * with JSON `{ integrationId, tenantId }`
   */
  buildRequest?: (request: ConnectionRefreshRequest, context: { baseUrl: string }) => RefreshHttpRequest;
  /** Per-attempt timeout of the refresh call. @default the HttpClient's (10000 for the fetch client) */
  timeoutMs?: number;
  /** Retries of 408, 429, 5xx, timeouts and network errors. @default the HttpClient's (2 for the fetch client) */
  retries?: number;
  /** Tick period of `check-expiring` (an integer from 1 to 2^31-1). @default 3600000 */
  intervalMs?: number;
  /** Tick at once on `start()` as well as on every slot boundary. @default true */
  emitOnStart?: boolean;
  /** Added to `intervalMs` to make the default look-ahead. @default 300000 */
  lookAheadMarginMs?: number;
  /** `thresholdTime` = tick time + this. @default intervalMs + lookAheadMarginMs */
  lookAheadMs?: number;
  /**
   * Shared across replicas. Used twice: one replica emits `check-expiring` per slot
   * (`scheduler:check-expiring:<slot>`), and one replica at a time refreshes a connection
   * (`token-refresh:<connectionId>`; the others return `skipped` / `lease_held`).
   */
  lease?: Lease;
  /** TTL of the per-connection lease; keep it above the longest refresh (timeout x attempts + backoff). @default 60000 */
  leaseTtlMs?: number;
  /** Last successful refresh per connection, for the stale-request check. @default a bounded in-memory map (10000) */
  refreshRecords?: RefreshRecordStore;
  /** Receives one `token.refresh` record per refresh outcome. @default none */
  audit?: AuditSink;
  /** CloudEvents `source`. @default "integration-sync" */
  source?: string;
  /** How long `stop()` waits for an in-flight tick or refresh before aborting it. @default 10000 */
  stopTimeoutMs?: number;
  /** @default the system clock */
  clock?: Clock;
  /** pino-compatible. @default silent */
  logger?: Logger;
  /** Called with every failed tick (besides the log line); the timer keeps going. */
  onError?: (error: unknown, tick: { slot: number }) => void;
}

interface Flight {
  promise: Promise<RefreshOutcome>;
  controller: AbortController;
  waiters: number;
}

function stripTrailingSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url[end - 1] === '/') end--;
  return url.slice(0, end);
}

/** The default {@link TokenRefreshServiceOptions.buildRequest}. */
export function defaultRefreshRequest(request: ConnectionRefreshRequest, context: { baseUrl: string }): RefreshHttpRequest {
  return {
    method: 'POST',
    url: `${context.baseUrl}/connections/${encodeURIComponent(request.connectionId)}/refresh`,
    body: { integrationId: request.integrationId, tenantId: request.tenantId },
  };
}

/**
 * Token refresh: a timer that publishes `integration.token.check-expiring` (default hourly, with
 * `thresholdTime` one interval plus five minutes ahead, so a token expiring just after the next
 * tick is caught now), and {@link TokenRefreshService.refreshConnectionTokens}, which asks the
 * integration-manager to refresh one connection and publishes the result.
 *
 * Refreshes are single-flight per connection in the process (concurrent calls share one upstream
 * call and its outcome) and, with a `lease`, across replicas, because rotating refresh tokens die
 * when two refreshes race. The `error` of a failure is a short classified code and never carries
 * a token, a secret, a header or a response body.
 *
 * @example
 * const tokens = new TokenRefreshService({
 *   bus,
 *   http: createFetchHttpClient(),
 *   baseUrl: 'https://integration-manager.internal',
 *   headers: { authorization: `Bearer ${process.env.IM_SERVICE_TOKEN}` },
 * });
 * tokens.start();
 */
export class TokenRefreshService implements TokenRefresher {
  private readonly bus: EventBus;
  private readonly http: HttpClient;
  private readonly baseUrl: string;
  private readonly headers: RefreshHeaders | undefined;
  private readonly buildRequest: NonNullable<TokenRefreshServiceOptions['buildRequest']>;
  private readonly timeoutMs: number | undefined;
  private readonly retries: number | undefined;
  private readonly lookAheadMs: number;
  private readonly lease: Lease | undefined;
  private readonly leaseTtlMs: number;
  private readonly records: RefreshRecordStore;
  private readonly audit: AuditSink;
  private readonly source: string;
  private readonly stopTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly timer: SlotTimer;
  private readonly flights = new Map<string, Flight>();

  constructor(options: TokenRefreshServiceOptions) {
    if (typeof options?.bus?.publish !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'TokenRefreshService: bus must be an EventBus (an object with publish())');
    }
    if (typeof options.http?.request !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'TokenRefreshService: http must be an HttpClient (an object with request()); use createFetchHttpClient()');
    }
    if (options.buildRequest != null && typeof options.buildRequest !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `TokenRefreshService: buildRequest must be a function; got ${typeof options.buildRequest}`);
    }
    if (options.headers != null && !['object', 'function'].includes(typeof options.headers)) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'TokenRefreshService: headers must be an object of strings or a function returning one');
    }
    this.bus = options.bus;
    this.http = options.http;
    this.buildRequest = options.buildRequest ?? defaultRefreshRequest;
    this.baseUrl = options.baseUrl == null && options.buildRequest != null ? '' : validateBaseUrl(options.baseUrl);
    this.headers = options.headers ?? undefined;
    this.timeoutMs = options.timeoutMs == null ? undefined : assertMs('timeoutMs', options.timeoutMs);
    this.retries = options.retries == null ? undefined : assertRetries(options.retries);
    const intervalMs = assertMs('intervalMs', options.intervalMs ?? DEFAULT_TOKEN_CHECK_INTERVAL_MS);
    const margin = assertMs('lookAheadMarginMs', options.lookAheadMarginMs ?? DEFAULT_LOOK_AHEAD_MARGIN_MS, 0, MAX_TIMER_MS);
    this.lookAheadMs = assertMs('lookAheadMs', options.lookAheadMs ?? intervalMs + margin, 0, 2 * MAX_TIMER_MS);
    this.lease = assertOptionalMethods('lease', options.lease, LEASE_METHODS) ?? undefined;
    this.leaseTtlMs = assertMs('leaseTtlMs', options.leaseTtlMs ?? DEFAULT_REFRESH_LEASE_TTL_MS);
    this.records = assertOptionalMethods('refreshRecords', options.refreshRecords, ['get', 'set']) ?? createMemoryRefreshRecordStore();
    this.audit = assertOptionalMethods('audit', options.audit, ['record']) ?? noopAuditSink;
    this.source = assertNonEmptyString('source', options.source ?? DEFAULT_SOURCE);
    this.stopTimeoutMs = assertMs('stopTimeoutMs', options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, 0);
    this.clock = options.clock ?? systemClock;
    this.logger = childLogger(options.logger ?? silentLogger, { component: 'TokenRefreshService' });
    this.timer = new SlotTimer({
      intervalMs,
      emitOnStart: options.emitOnStart ?? true,
      stopTimeoutMs: this.stopTimeoutMs,
      clock: this.clock,
      logger: this.logger,
      onTick: (tick) => this.tick(tick),
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    });
  }

  /** The validated tick period. */
  get intervalMs(): number {
    return this.timer.intervalMs;
  }

  /** True between `start()` and `stop()` (of the timer; refreshes work either way). */
  get isRunning(): boolean {
    return this.timer.isRunning;
  }

  /** Starts the `check-expiring` timer; a second call does nothing. */
  start(): void {
    this.timer.start();
  }

  /**
   * Stops the timer and waits for the in-flight tick and refreshes up to `stopTimeoutMs`,
   * aborting what is left (an aborted refresh publishes nothing and rejects its callers).
   * Idempotent.
   */
  async stop(): Promise<void> {
    const timerStopped = this.timer.stop();
    const flights = [...this.flights.values()];
    if (await settleWithin(flights.map((f) => f.promise), this.stopTimeoutMs, this.clock)) {
      this.logger.warn({ inFlight: flights.length }, 'refreshes still running at stop deadline; aborting them');
      // Not awaited again: the deadline is the deadline, and an aborted refresh publishes nothing.
      for (const flight of flights) flight.controller.abort(new IntegrationSyncError('ERR_ABORTED', 'TokenRefreshService stopped'));
    }
    await timerStopped;
  }

  /** Same as {@link TokenRefreshService.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Refreshes one connection's tokens through the integration-manager, publishes
   * `integration.token.refreshed` or `integration.token.refresh.failed`, writes a `token.refresh`
   * audit record, and returns the outcome. Never throws for an upstream failure: that is a
   * `failed` outcome (with `retryable`). Rejects only for a bad request (`ERR_INVALID_OPTION`),
   * an aborted `signal` (its reason; nothing is published), or a publish the bus refused.
   *
   * Skipped, without a call: a `requestedAt` older than the connection's last successful refresh
   * (`stale_request`), or a connection another replica is refreshing (`lease_held`).
   * Concurrent calls for one connection share one upstream call and its outcome.
   */
  async refreshConnectionTokens(request: ConnectionRefreshRequest, options: SignalOptions = {}): Promise<RefreshOutcome> {
    const signal = options?.signal;
    throwIfAborted(signal);
    validateRequest(request);
    const { connectionId } = request;
    // Joining a running refresh needs no stale check: its outcome is as fresh as any.
    let flight = this.joinable(connectionId);
    if (flight === undefined) {
      if (await this.isStale(request)) return this.skipped(request, 'stale_request');
      flight = this.joinable(connectionId);
    }
    if (flight === undefined) {
      const controller = new AbortController();
      const created: Flight = { promise: this.run(request, controller.signal), controller, waiters: 0 };
      const forget = (): void => {
        if (this.flights.get(connectionId) === created) this.flights.delete(connectionId);
      };
      created.promise.then(forget, forget);
      this.flights.set(connectionId, created);
      flight = created;
    } else {
      this.logger.debug({ connectionId }, 'refresh already in flight; sharing it');
    }
    return this.join(flight, signal);
  }

  /** The running refresh of a connection, unless it is being aborted (then a new one starts). */
  private joinable(connectionId: string): Flight | undefined {
    const flight = this.flights.get(connectionId);
    return flight !== undefined && !flight.controller.signal.aborted ? flight : undefined;
  }

  /** Waits for a shared refresh; the upstream call is aborted only when every waiter has gone. */
  private async join(flight: Flight, signal: AbortSignal | undefined): Promise<RefreshOutcome> {
    flight.waiters += 1;
    if (signal === undefined) {
      try {
        return await flight.promise;
      } finally {
        flight.waiters -= 1;
      }
    }
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        flight.promise,
        new Promise<never>((_, reject) => {
          onAbort = () => reject(abortReason(signal));
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
      flight.waiters -= 1;
      if (flight.waiters === 0 && signal.aborted) flight.controller.abort(signal.reason);
    }
  }

  private async isStale(request: ConnectionRefreshRequest): Promise<boolean> {
    if (request.requestedAt === undefined) return false;
    const requestedAtMs = Date.parse(request.requestedAt);
    if (!Number.isFinite(requestedAtMs)) return false;
    let last: number | undefined;
    try {
      last = await this.records.get(request.connectionId);
    } catch (error) {
      // Without the record, refreshing is the safe side: a skipped refresh can expire a token.
      this.logger.warn({ connectionId: request.connectionId, err: summarizeError(error) }, 'refresh record store failed; not checking staleness');
      return false;
    }
    return last !== undefined && requestedAtMs < last;
  }

  private async run(request: ConnectionRefreshRequest, signal: AbortSignal): Promise<RefreshOutcome> {
    let handle: LeaseHandle | null = null;
    if (this.lease !== undefined) {
      try {
        handle = await this.lease.tryAcquire(`token-refresh:${request.connectionId}`, this.leaseTtlMs);
      } catch (error) {
        this.logger.warn({ connectionId: request.connectionId, err: summarizeError(error) }, 'refresh lease unavailable');
        return this.failed(request, { error: 'lease_unavailable', retryable: true, attempts: 0 });
      }
      if (handle === null) return this.skipped(request, 'lease_held');
    }
    const keepAlive = handle === null ? undefined : this.keepLease(handle, request.connectionId);
    try {
      // The lease may have waited on a replica that just refreshed (with a shared record store).
      if (handle !== null && (await this.isStale(request))) return this.skipped(request, 'stale_request');
      return await this.callUpstream(request, signal);
    } finally {
      keepAlive?.stop();
      if (handle !== null) {
        await this.lease?.release(keepAlive?.current() ?? handle).catch((error: unknown) => {
          this.logger.warn({ connectionId: request.connectionId, err: summarizeError(error) }, 'refresh lease release failed; it will expire');
        });
      }
    }
  }

  /**
   * Renews the connection lease every half TTL while the refresh runs, so retries and a long
   * Retry-After cannot outlive it and let a second replica race this one.
   */
  private keepLease(first: LeaseHandle, connectionId: string): { stop(): void; current(): LeaseHandle } {
    let handle = first;
    let timer: TimerHandle | undefined;
    let stopped = false;
    const every = Math.max(1, Math.floor(this.leaseTtlMs / 2));
    const renew = (): void => {
      this.lease
        ?.renew(handle, this.leaseTtlMs)
        .then((renewed) => {
          if (stopped) return;
          if (renewed === null) {
            this.logger.warn({ connectionId }, 'refresh lease lost before the refresh finished; raise leaseTtlMs');
            stopped = true;
            return;
          }
          handle = renewed;
        })
        .catch((error: unknown) => this.logger.warn({ connectionId, err: summarizeError(error) }, 'refresh lease renewal failed'))
        .finally(() => {
          if (!stopped) timer = this.clock.setTimeout(renew, every);
        });
    };
    timer = this.clock.setTimeout(renew, every);
    return {
      stop: () => {
        stopped = true;
        this.clock.clearTimeout(timer);
      },
      current: () => handle,
    };
  }

  private async callUpstream(request: ConnectionRefreshRequest, signal: AbortSignal): Promise<RefreshOutcome> {
    let classification;
    let attempts: number;
    try {
      const built = this.buildRequest(request, { baseUrl: this.baseUrl });
      const serviceHeaders = typeof this.headers === 'function' ? await this.headers() : (this.headers ?? {});
      const response = await this.http.request({
        method: built.method ?? 'POST',
        url: built.url,
        headers: { accept: 'application/json', ...serviceHeaders, ...(built.headers ?? {}) },
        ...(built.body !== undefined ? { body: built.body } : {}),
        ...(this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {}),
        ...(this.retries !== undefined ? { retries: this.retries } : {}),
        signal,
      });
      attempts = response.attempts;
      classification = classifyRefreshResponse(response);
    } catch (error) {
      if (signal.aborted) throw abortReason(signal);
      const failure = classifyRefreshError(error);
      // Name and code only: a host's HttpClient or headers function may put a URL with a token,
      // a header or a body in its message.
      const { name, code } = summarizeError(error);
      this.logger.debug({ connectionId: request.connectionId, error: failure.error, err: { name, ...(code !== undefined ? { code } : {}) } }, 'refresh call threw');
      return this.failed(request, { ...failure, attempts: attemptsOf(error) });
    }
    if (classification.ok) return this.refreshed(request, classification.expiresAt, attempts);
    return this.failed(request, { error: classification.error, retryable: classification.retryable, attempts, status: classification.status });
  }

  private async refreshed(request: ConnectionRefreshRequest, expiresAt: string | undefined, attempts: number): Promise<RefreshOutcome> {
    const nowMs = this.clock.now();
    const refreshedAt = new Date(nowMs).toISOString();
    this.auditRecord(request, 'succeeded', undefined, attempts);
    this.logger.info({ ...subject(request), attempts, expiresAt }, 'token refreshed');
    await this.bus.publish(
      createEvent(
        EventTypes.TokenRefreshed,
        { ...subject(request), refreshedAt, ...(expiresAt !== undefined ? { expiresAt } : {}), attempts },
        { source: this.source, time: refreshedAt },
      ),
    );
    // Recorded only once the event is out: if the bus refused it, the call rejects, and the
    // redelivered request must refresh (and announce) again rather than be skipped as stale.
    try {
      await this.records.set(request.connectionId, nowMs);
    } catch (error) {
      this.logger.warn({ connectionId: request.connectionId, err: summarizeError(error) }, 'refresh record store failed; stale check may miss this refresh');
    }
    return { status: 'refreshed', connectionId: request.connectionId, refreshedAt, ...(expiresAt !== undefined ? { expiresAt } : {}), attempts };
  }

  private async failed(
    request: ConnectionRefreshRequest,
    failure: { error: string; retryable: boolean; attempts: number; status?: number | undefined },
  ): Promise<RefreshOutcome> {
    const failedAt = new Date(this.clock.now()).toISOString();
    const { error, retryable, attempts, status } = failure;
    this.auditRecord(request, 'failed', error, attempts);
    this.logger.warn({ ...subject(request), error, retryable, attempts, ...(status !== undefined ? { status } : {}) }, 'token refresh failed');
    await this.bus.publish(
      createEvent(
        EventTypes.TokenRefreshFailed,
        { ...subject(request), error, failedAt, retryable, attempts, ...(status !== undefined ? { status } : {}) },
        { source: this.source, time: failedAt },
      ),
    );
    return { status: 'failed', connectionId: request.connectionId, error, retryable, attempts };
  }

  private skipped(request: ConnectionRefreshRequest, reason: 'stale_request' | 'lease_held'): RefreshOutcome {
    this.auditRecord(request, 'skipped', reason, undefined);
    this.logger.info({ ...subject(request), reason }, 'token refresh skipped');
    return { status: 'skipped', connectionId: request.connectionId, reason };
  }

  private auditRecord(request: ConnectionRefreshRequest, outcome: string, reason: string | undefined, attempts: number | undefined): void {
    const record: AuditRecord = {
      kind: 'token.refresh',
      at: new Date(this.clock.now()).toISOString(),
      ...subject(request),
      outcome,
      ...(reason !== undefined ? { reason } : {}),
      ...(attempts !== undefined && attempts > 0 ? { attempt: attempts } : {}),
    };
    safeAudit(this.audit, record, this.logger);
  }

  private async tick({ slot, now, signal }: SlotTick): Promise<void> {
    if (!(await holdsSlot(this.lease, 'scheduler:check-expiring', { slot }, this.intervalMs, this.logger))) return;
    const time = new Date(now);
    const event = createEvent(
      EventTypes.TokenCheckExpiring,
      { timestamp: time.toISOString(), thresholdTime: new Date(now + this.lookAheadMs).toISOString() },
      { id: `check-expiring:${this.intervalMs}:${slot}`, source: this.source, time },
    );
    await this.bus.publish(event, { signal });
    this.logger.debug({ slot, eventId: event.id }, 'check-expiring published');
  }
}

function subject(request: ConnectionRefreshRequest): { connectionId: string; integrationId: string; tenantId: string } {
  return { connectionId: request.connectionId, integrationId: request.integrationId, tenantId: request.tenantId };
}

function validateRequest(request: ConnectionRefreshRequest): void {
  if (typeof request !== 'object' || request === null) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'refreshConnectionTokens: request must be an object with connectionId, integrationId and tenantId');
  }
  assertNonEmptyString('request.connectionId', request.connectionId);
  if (request.connectionId === '.' || request.connectionId === '..') {
    // URL parsing resolves these as dot segments (even %2E-encoded): the call would go to another path.
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'refreshConnectionTokens: request.connectionId must not be "." or ".."');
  }
  assertNonEmptyString('request.integrationId', request.integrationId);
  assertNonEmptyString('request.tenantId', request.tenantId);
}

function assertRetries(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 20) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `retries must be an integer from 0 to 20; got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

function validateBaseUrl(value: unknown): string {
  const text = assertNonEmptyString('baseUrl', value);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'baseUrl must be an absolute http(s) URL such as https://integration-manager.internal');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `baseUrl must use http or https; got ${url.protocol}`);
  }
  // Credentials in the URL would end up in logs and error details: keep them in `headers`.
  if (url.username !== '' || url.password !== '') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'baseUrl must not embed credentials; pass them through headers');
  }
  return stripTrailingSlashes(text);
}

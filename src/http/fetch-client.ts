import { abortReason, backoffDelay, raceSignal, sleep, throwIfAborted } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { childLogger, silentLogger } from '../core/logger.js';
import { assertMs, assertPositiveInt } from '../core/options.js';
import { readBodyCapped } from './read-body.js';
import { parseRetryAfter } from './retry-after.js';
import type { HttpClient, HttpRequest, HttpResponse } from './types.js';

/** An HTTP method the {@link HttpClient} sends. */
export type HttpMethod = NonNullable<HttpRequest['method']>;

const METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];

/** The `fetch` shape the client needs; `globalThis.fetch` and undici's `fetch` both fit. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

/** Options of {@link createFetchHttpClient}. Every one is optional. */
export interface FetchHttpClientOptions {
  /** Retries after the first attempt (0 disables); a request's own `retries` wins. @default 2 */
  retries?: number;
  /** Base of the exponential backoff; the delay before retry n is random in `[0, min(retryMaxMs, retryBaseMs * 2^(n-1))]`. @default 250 */
  retryBaseMs?: number;
  /** Ceiling of one backoff delay. @default 5000 */
  retryMaxMs?: number;
  /** Per-attempt timeout, covering the headers and the whole body; a request's own `timeoutMs` wins. @default 10000 */
  timeoutMs?: number;
  /**
   * Longest `Retry-After` (on 429 and 503) the client sleeps on. A longer one is not waited out:
   * the 429/503 is returned as the final response so the caller can treat it as rate limited.
   * @default 30000
   */
  maxRetryAfterMs?: number;
  /**
   * Methods that may be retried. Every method is by default, POST included, because every call
   * this library makes is idempotent: the token refresh API refreshes one connection and is
   * single-flighted per connection, so a repeated POST cannot rotate a token twice. For a
   * non-idempotent endpoint pass a narrower list, or `retries: 0` on that request.
   * @default ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH']
   */
  retryMethods?: readonly HttpMethod[];
  /**
   * Largest response body read, in bytes. A larger one is cancelled (freeing the socket) and the
   * request rejects with `ERR_HTTP_NETWORK`, `details.reason: 'response_too_large'`, without retry.
   * @default 1048576 (1 MiB)
   */
  maxResponseBytes?: number;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: FetchFunction;
  /** Headers sent with every request (service credentials, user agent); a request's own headers win. */
  headers?: Record<string, string>;
  /** Time source for timeouts, backoff sleeps and Retry-After dates. @default systemClock */
  clock?: Clock;
  /** Source of jitter in `[0, 1)`. @default Math.random */
  random?: () => number;
  /**
   * Receives one debug line per attempt (method, host, path, status, attempt, durationMs) and per
   * retry; never a header, body or query string. @default silentLogger
   */
  logger?: Logger;
}

/** Validated settings that a request can override. */
interface Settings {
  retries: number;
  timeoutMs: number;
}

/** What one attempt ended with: a final response, a retry after a delay, or a retryable failure. */
type AttemptOutcome =
  | { kind: 'response'; response: HttpResponse }
  | { kind: 'retry'; delayMs: number | undefined; reason: string }
  | { kind: 'failed'; error: IntegrationSyncError };

const MAX_RETRIES = 20;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Creates the default {@link HttpClient} on the runtime's `fetch`: a timeout per attempt through an
 * AbortSignal, retries with exponential backoff and full jitter on network errors, timeouts, 408,
 * 429 and 5xx, `Retry-After` honoured on 429/503 up to `maxRetryAfterMs`, no retry on other 4xx, and
 * a bounded response body. The caller's `signal` rejects the call at once with its reason, during a
 * request or a backoff sleep, and is never retried.
 *
 * Failures reject with `ERR_HTTP_TIMEOUT` or `ERR_HTTP_NETWORK`; their `details` carry the method,
 * `url` as host and path only (a query string may carry secrets), `attempts`, and for network errors
 * a short `cause` code such as `ECONNREFUSED`. The underlying error is not attached, because fetch's
 * own messages can echo the full URL.
 *
 * Throws `ERR_INVALID_OPTION` at construction for a bad option, and rejects with it for a bad request.
 *
 * @example
 * const http = createFetchHttpClient({
 *   headers: { authorization: `Bearer ${serviceToken}` },
 *   timeoutMs: 5_000,
 * });
 * const res = await http.request({ method: 'POST', url: `${base}/connections/c1/refresh`, body: {}, signal });
 * if (res.status === 429) { ... }
 */
export function createFetchHttpClient(options: FetchHttpClientOptions = {}): HttpClient {
  if (typeof options !== 'object' || options === null) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `options must be an object; got ${typeof options}`);
  }
  const defaults: Settings = {
    retries: assertRetries('retries', options.retries ?? 2),
    timeoutMs: assertMs('timeoutMs', options.timeoutMs ?? 10_000),
  };
  const retryBaseMs = assertMs('retryBaseMs', options.retryBaseMs ?? 250, 0);
  const retryMaxMs = assertMs('retryMaxMs', options.retryMaxMs ?? 5_000, 0);
  if (retryMaxMs < retryBaseMs) {
    throw new IntegrationSyncError(
      'ERR_INVALID_OPTION',
      `retryMaxMs (${retryMaxMs}) must be at least retryBaseMs (${retryBaseMs}); raise retryMaxMs or lower retryBaseMs`,
    );
  }
  const maxRetryAfterMs = assertMs('maxRetryAfterMs', options.maxRetryAfterMs ?? 30_000, 0);
  const maxResponseBytes = assertPositiveInt('maxResponseBytes', options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
  const retryMethods = new Set(assertMethods(options.retryMethods ?? METHODS));
  const fetchImpl = assertFunction('fetch', options.fetch ?? (globalThis.fetch as FetchFunction | undefined)) as FetchFunction;
  const random = assertFunction('random', options.random ?? Math.random) as () => number;
  const clock = assertClock(options.clock ?? systemClock);
  const logger = childLogger(options.logger ?? silentLogger, { component: 'http' });
  const defaultHeaders = toHeaders('headers', options.headers ?? {});

  async function request(req: HttpRequest): Promise<HttpResponse> {
    const signal = req?.signal;
    throwIfAborted(signal);
    const prepared = prepare(req, defaultHeaders);
    const settings: Settings = {
      retries: req.retries === undefined ? defaults.retries : assertRetries('request.retries', req.retries),
      timeoutMs: req.timeoutMs === undefined ? defaults.timeoutMs : assertMs('request.timeoutMs', req.timeoutMs),
    };
    const maxAttempts = 1 + (retryMethods.has(prepared.method) ? settings.retries : 0);
    const where = { method: prepared.method, host: prepared.host, path: prepared.path };

    for (let attempt = 1; ; attempt++) {
      const outcome = await attemptOnce(prepared, settings.timeoutMs, attempt, attempt < maxAttempts, signal);
      if (outcome.kind === 'response') return outcome.response;
      if (outcome.kind === 'failed' && attempt >= maxAttempts) throw outcome.error;
      const delayMs =
        (outcome.kind === 'retry' ? outcome.delayMs : undefined) ??
        backoffDelay(attempt, retryBaseMs, retryMaxMs, random);
      const reason = outcome.kind === 'retry' ? outcome.reason : String(outcome.error.details?.reason);
      logger.debug({ ...where, attempt, delayMs, reason }, 'http retry scheduled');
      // Rejects at once with the caller's reason if the signal aborts during the sleep.
      await sleep(delayMs, signal, clock);
    }
  }

  async function attemptOnce(
    prepared: Prepared,
    timeoutMs: number,
    attempt: number,
    mayRetry: boolean,
    signal: AbortSignal | undefined,
  ): Promise<AttemptOutcome> {
    const where = { method: prepared.method, host: prepared.host, path: prepared.path };
    const controller = new AbortController();
    let timedOut = false;
    const onCallerAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new IntegrationSyncError('ERR_HTTP_TIMEOUT', 'HTTP attempt timed out'));
    }, timeoutMs);
    const started = clock.now();

    // Any throw inside the attempt is the caller's abort, our timeout, or the network.
    const classify = (error: unknown): AttemptOutcome => {
      if (signal?.aborted) throw abortReason(signal);
      const durationMs = clock.now() - started;
      if (timedOut) {
        logger.debug({ ...where, attempt, durationMs, error: 'ERR_HTTP_TIMEOUT' }, 'http attempt failed');
        return {
          kind: 'failed',
          error: new IntegrationSyncError(
            'ERR_HTTP_TIMEOUT',
            `${prepared.method} ${prepared.safeUrl} got no complete response within ${timeoutMs} ms ` +
              `(${attempt} attempt${attempt === 1 ? '' : 's'}); raise timeoutMs or check that the server is responsive`,
            { details: { ...detailsOf(prepared), attempts: attempt, timeoutMs, reason: 'timeout' } },
          ),
        };
      }
      const cause = causeCode(error);
      logger.debug({ ...where, attempt, durationMs, error: 'ERR_HTTP_NETWORK', cause }, 'http attempt failed');
      return {
        kind: 'failed',
        error: new IntegrationSyncError(
          'ERR_HTTP_NETWORK',
          `${prepared.method} ${prepared.safeUrl} failed below HTTP (${cause}) after ${attempt} ` +
            `attempt${attempt === 1 ? '' : 's'}; check that the server is reachable`,
          { details: { ...detailsOf(prepared), attempts: attempt, cause, reason: 'network' } },
        ),
      };
    };

    try {
      let response: Response;
      try {
        response = await raceSignal(fetchImpl(prepared.url, {
          method: prepared.method,
          headers: prepared.headers,
          ...(prepared.body === undefined ? {} : { body: prepared.body }),
          // Not followed: fetch would carry service credentials (x-api-key...) to whatever origin
          // a redirect names. A 3xx is the final response; point baseUrl at the real endpoint.
          redirect: 'manual',
          signal: controller.signal,
        }), controller.signal);
      } catch (error) {
        return classify(error);
      }
      const status = response.status;
      logger.debug({ ...where, attempt, status, durationMs: clock.now() - started }, 'http attempt');

      if (mayRetry && isRetryableStatus(status)) {
        const retryAfterMs =
          status === 429 || status === 503
            ? parseRetryAfter(response.headers.get('retry-after'), clock.now())
            : undefined;
        // A wait beyond the cap is not slept on: the caller gets the 429/503 and classifies it.
        if (retryAfterMs === undefined || retryAfterMs <= maxRetryAfterMs) {
          // Cancelling the unread body releases the connection instead of leaking it.
          await response.body?.cancel().catch(() => {});
          return { kind: 'retry', delayMs: retryAfterMs, reason: `http_${status}` };
        }
        logger.debug({ ...where, attempt, status, retryAfterMs, maxRetryAfterMs }, 'http retry-after above cap');
      }

      let body;
      try {
        body = await raceSignal(readBodyCapped(response, maxResponseBytes), controller.signal);
      } catch (error) {
        return classify(error);
      }
      if (!body.ok) {
        // Final: the same endpoint would send the same oversized body again.
        throw new IntegrationSyncError(
          'ERR_HTTP_NETWORK',
          `${prepared.method} ${prepared.safeUrl} answered ${status} with a body larger than ` +
            `maxResponseBytes (${body.limit}); the body was discarded. Raise maxResponseBytes if the endpoint legitimately sends more`,
          {
            details: {
              ...detailsOf(prepared),
              attempts: attempt,
              status,
              cause: 'RESPONSE_TOO_LARGE',
              reason: 'response_too_large',
              maxResponseBytes: body.limit,
            },
          },
        );
      }
      return {
        kind: 'response',
        response: { status, headers: headersToRecord(response.headers), text: body.text, attempts: attempt },
      };
    } finally {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  return { request };
}

/** A request checked and turned into what fetch takes. */
interface Prepared {
  method: HttpMethod;
  url: string;
  host: string;
  path: string;
  /** Host and path only: what errors and logs may show. */
  safeUrl: string;
  headers: Headers;
  body: string | undefined;
}

function prepare(req: HttpRequest, defaultHeaders: Headers): Prepared {
  if (typeof req !== 'object' || req === null) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `request must be an object; got ${typeof req}`);
  }
  const method = req.method ?? 'GET';
  if (!METHODS.includes(method)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `request.method must be one of ${METHODS.join(', ')}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(req.url);
  } catch {
    // Never echo the URL: it may carry a secret in its query string.
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'request.url must be an absolute http(s) URL; it could not be parsed');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `request.url must use http: or https:; got ${parsed.protocol}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new IntegrationSyncError(
      'ERR_INVALID_OPTION',
      'request.url must not embed credentials; send them in an authorization header instead',
    );
  }
  const headers = new Headers(defaultHeaders);
  for (const [name, value] of toHeaders('request.headers', req.headers ?? {})) headers.set(name, value);

  let body: string | undefined;
  if (req.body !== undefined && req.body !== null) {
    if (method === 'GET' || method === 'HEAD') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `request.body is not allowed with ${method}; use POST, PUT or PATCH`);
    }
    if (typeof req.body === 'string') {
      body = req.body;
    } else {
      try {
        body = JSON.stringify(req.body);
      } catch {
        body = undefined;
      }
      if (body === undefined) {
        throw new IntegrationSyncError(
          'ERR_INVALID_OPTION',
          'request.body could not be serialised as JSON (circular, BigInt or a function); pass a string instead',
        );
      }
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
  }
  const path = parsed.pathname;
  return { method, url: parsed.href, host: parsed.host, path, safeUrl: `${parsed.host}${path}`, headers, body };
}

function detailsOf(prepared: Prepared): Record<string, unknown> {
  return { method: prepared.method, url: prepared.safeUrl };
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * A short, secret-free code for a network failure: the first `code` (ECONNREFUSED, ECONNRESET,
 * ENOTFOUND, UND_ERR_SOCKET...) found down the `cause` chain, else the error's name.
 */
function causeCode(error: unknown): string {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.size < 10) {
    const current = queue.shift();
    if (typeof current !== 'object' || current === null || seen.has(current)) continue;
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,39}$/.test(code)) return code;
    queue.push((current as { cause?: unknown }).cause);
    const inner = (current as { errors?: unknown }).errors;
    if (Array.isArray(inner)) queue.push(...inner);
  }
  const name = error instanceof Error ? error.name : '';
  return /^\w{1,40}$/.test(name) ? name : 'UNKNOWN';
}

function headersToRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  // Iteration yields lower-case names and each set-cookie on its own; repeated names are joined.
  headers.forEach((value, name) => {
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  });
  return out;
}

function toHeaders(name: string, value: unknown): Headers {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be an object of header names to strings; got ${typeof value}`);
  }
  const headers = new Headers();
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} values must be strings; got ${typeof v}`);
    }
    try {
      headers.set(key, v);
    } catch {
      // The platform's message quotes the value, which may be a credential.
      throw new IntegrationSyncError(
        'ERR_INVALID_OPTION',
        `${name} holds an invalid header name or value (control characters or non-token name); fix the header`,
      );
    }
  }
  return headers;
}

function assertRetries(name: string, value: unknown): number {
  if (value === 0) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_RETRIES) {
    const shown = typeof value === 'number' ? String(value) : typeof value;
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be an integer from 0 to ${MAX_RETRIES}; got ${shown}`);
  }
  return value;
}

function assertMethods(value: unknown): HttpMethod[] {
  if (!Array.isArray(value) || !value.every((m) => METHODS.includes(m as HttpMethod))) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `retryMethods must be an array of ${METHODS.join(', ')}`);
  }
  return value as HttpMethod[];
}

function assertFunction(name: string, value: unknown): unknown {
  if (typeof value !== 'function') {
    throw new IntegrationSyncError(
      'ERR_INVALID_OPTION',
      `${name} must be a function; got ${typeof value}${name === 'fetch' ? ' (this runtime has no global fetch: pass one)' : ''}`,
    );
  }
  return value;
}

function assertClock(value: unknown): Clock {
  const c = value as Partial<Clock> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.now !== 'function' ||
    typeof c.setTimeout !== 'function' ||
    typeof c.clearTimeout !== 'function'
  ) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'clock must have now(), setTimeout() and clearTimeout()');
  }
  return c as Clock;
}

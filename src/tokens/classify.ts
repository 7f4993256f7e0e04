import { isIntegrationSyncError } from '../core/errors.js';
import { safeJsonParse } from '../events/envelope.js';
import { isoDateTime } from '../events/schemas.js';

/**
 * How the integration-manager answered a refresh: success (with the new expiry when it sent a
 * usable one) or a failure with a short classified `error` and whether retrying may help.
 */
export type RefreshClassification =
  | {
      /** The refresh succeeded. */
      ok: true;
      /** The new token expiry (ISO), when the response carried a usable one. */
      expiresAt?: string;
    }
  | {
      /** The refresh failed. */
      ok: false;
      /** Short snake_case code (`invalid_grant`, `rate_limited`, `http_503`...); never body text. */
      error: string;
      /** Whether a later attempt may succeed (false for permanent OAuth errors). */
      retryable: boolean;
      /** The HTTP status of the response. */
      status?: number;
    };

/** A classified refresh failure. */
export interface RefreshFailure {
  /** Short, secret-free: `invalid_grant`, `rate_limited`, `timeout`, `network`, `http_503`... */
  error: string;
  /** Whether a later attempt may succeed (`timeout`, `network` yes; `response_too_large` no). */
  retryable: boolean;
}

/**
 * RFC 6749 / 6750 codes that no retry can fix: the grant, client or request itself is bad and
 * a person (re-consent, new credentials) must step in.
 */
export const PERMANENT_REFRESH_ERRORS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'invalid_request',
  'unsupported_grant_type',
  'invalid_scope',
  'access_denied',
  'invalid_token',
  'insufficient_scope',
  'consent_required',
  'interaction_required',
  'login_required',
]);

/** Codes that say "try again later" whatever the HTTP status. */
export const TRANSIENT_REFRESH_ERRORS: ReadonlySet<string> = new Set([
  'temporarily_unavailable',
  'server_error',
  'slow_down',
  'rate_limited',
  'timeout',
  'network',
]);

/**
 * Only short snake_case codes pass from a response into an `error` string: anything else
 * (free text, a token that leaked into the field) is replaced by a generic code.
 */
const ERROR_CODE = /^[a-z_]{1,40}$/;

/**
 * Numbers below this are epoch seconds, from it up epoch milliseconds: 1e11 ms is March 1973,
 * 1e11 s is the year 5138, so no real expiry is ambiguous.
 */
export const EPOCH_SECONDS_LIMIT = 1e11;

/** Largest epoch ms a `Date` can hold. */
const MAX_DATE_MS = 8.64e15;

/**
 * Reads an `expiresAt` sent by the integration-manager into an ISO string, or `undefined` when it
 * is missing or unusable (never `NaN`, never an Invalid Date):
 * - an RFC 3339 date-time with an offset (`2026-12-03T19:00:00Z`, `...+01:00`);
 * - an epoch number, or a string of digits: below 1e11 it is seconds, from 1e11 milliseconds.
 *
 * @example
 * parseExpiresAt(1796324400);           // '2026-12-03T19:00:00.000Z' (seconds)
 * parseExpiresAt('1796324400000');      // same instant (ms, sent as a string)
 * parseExpiresAt('next tuesday');       // undefined
 */
export function parseExpiresAt(value: unknown): string | undefined {
  if (typeof value === 'number') return fromEpoch(value);
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d{1,16}(\.\d+)?$/.test(text)) return fromEpoch(Number(text));
  if (!isoDateTime.safeParse(text).success) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

function fromEpoch(value: number): string | undefined {
  if (!Number.isFinite(value) || value <= 0) return undefined;
  const ms = Math.round(value < EPOCH_SECONDS_LIMIT ? value * 1000 : value);
  return ms <= MAX_DATE_MS ? new Date(ms).toISOString() : undefined;
}

function codeFrom(body: Record<string, unknown>): string | undefined {
  const raw = body.error;
  const candidate =
    typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null ? (raw as { code?: unknown }).code : undefined;
  return typeof candidate === 'string' && ERROR_CODE.test(candidate) ? candidate : undefined;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  try {
    const value = safeJsonParse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Classifies the final response of the refresh API. Reads the body only for its shape (`success`,
 * `ok`, `error`, `expiresAt`, `retryable`); nothing of it but a snake_case code and a parsed
 * date leaves this function.
 *
 * - 2xx: success, unless the body says otherwise (`success: false`, `ok: false`, or an `error`
 *   without `success: true`). A 2xx body that is empty or not JSON is a success without
 *   `expiresAt`: the integration-manager did refresh, and retrying would rotate the token again.
 * - 429 is `rate_limited`, 408 `timeout`, both retryable; 5xx is the body's code or `http_5xx`,
 *   retryable; any other status is the body's RFC 6749 code or `http_<status>`, permanent.
 * - A known permanent code (`invalid_grant`...) is never retryable, whatever the status; a body's
 *   own boolean `retryable` wins on a 2xx failure.
 */
export function classifyRefreshResponse(response: { status: number; text: string }): RefreshClassification {
  const { status } = response;
  const body = parseObject(response.text ?? '');
  if (status >= 200 && status < 300) {
    const failed =
      body !== undefined &&
      (body.success === false || body.ok === false || (body.error !== undefined && body.error !== null && body.success !== true));
    if (!failed) {
      const expiresAt = body === undefined ? undefined : parseExpiresAt(body.expiresAt);
      return expiresAt === undefined ? { ok: true } : { ok: true, expiresAt };
    }
    const error = codeFrom(body) ?? 'refresh_failed';
    const retryable =
      typeof body.retryable === 'boolean' && !PERMANENT_REFRESH_ERRORS.has(error) ? body.retryable : TRANSIENT_REFRESH_ERRORS.has(error);
    return { ok: false, error, retryable, status };
  }
  if (status === 429) return { ok: false, error: 'rate_limited', retryable: true, status };
  if (status === 408) return { ok: false, error: 'timeout', retryable: true, status };
  const code = body === undefined ? undefined : codeFrom(body);
  const error = code ?? `http_${status}`;
  if (code !== undefined && PERMANENT_REFRESH_ERRORS.has(code)) return { ok: false, error, retryable: false, status };
  const retryable = isTransientStatus(status) || (code !== undefined && TRANSIENT_REFRESH_ERRORS.has(code));
  return { ok: false, error, retryable, status };
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

/**
 * Classifies an error thrown by the HttpClient (or by anything else on the refresh path):
 * `timeout` and `network` are retryable, `response_too_large` is not, anything unknown is
 * `request_failed` and retryable.
 */
export function classifyRefreshError(error: unknown): RefreshFailure {
  if (isIntegrationSyncError(error, 'ERR_HTTP_TIMEOUT')) return { error: 'timeout', retryable: true };
  if (isIntegrationSyncError(error, 'ERR_HTTP_NETWORK')) {
    return error.details?.reason === 'response_too_large'
      ? { error: 'response_too_large', retryable: false }
      : { error: 'network', retryable: true };
  }
  if (typeof error === 'object' && error !== null) {
    const { name, code, cause } = error as { name?: unknown; code?: unknown; cause?: unknown };
    if (name === 'TimeoutError') return { error: 'timeout', retryable: true };
    const causeCode = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
    if (NETWORK_CODES.has(String(code)) || NETWORK_CODES.has(String(causeCode))) return { error: 'network', retryable: true };
  }
  return { error: 'request_failed', retryable: true };
}

/** Attempts an HttpClient error reports in `details.attempts`, else 1. */
export function attemptsOf(error: unknown): number {
  if (isIntegrationSyncError(error)) {
    const attempts = error.details?.attempts;
    if (typeof attempts === 'number' && Number.isInteger(attempts) && attempts > 0) return attempts;
  }
  return 1;
}

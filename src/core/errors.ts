/**
 * Every error this library throws or rejects with is an {@link IntegrationSyncError}: a stable
 * `name`, a machine-readable {@link ErrorCode} and, where one exists, the ES2022 `cause`.
 * Messages say what was wrong and what to do; they never echo a token, a secret, an
 * Authorization header or a raw payload.
 */

/** Machine-readable error codes. Adding a code is a minor change; renaming one is breaking. */
export type ErrorCode =
  /** A constructor or call option is missing or out of range. */
  | 'ERR_INVALID_OPTION'
  /** An event failed the CloudEvents envelope or its data schema. */
  | 'ERR_EVENT_INVALID'
  /** A payload was not JSON, or was larger than allowed. */
  | 'ERR_EVENT_UNPARSABLE'
  /** The broker did not take a published event. */
  | 'ERR_PUBLISH_FAILED'
  /** The bus or subscription was already closed. */
  | 'ERR_CLOSED'
  /** The operation was aborted through its `signal`. */
  | 'ERR_ABORTED'
  /** An HTTP request exceeded its timeout. */
  | 'ERR_HTTP_TIMEOUT'
  /** An HTTP request failed below HTTP (refused, reset, DNS). */
  | 'ERR_HTTP_NETWORK'
  /** A token refresh failed; `reason` says how. */
  | 'ERR_TOKEN_REFRESH'
  /** A lease could not be acquired, renewed or released. */
  | 'ERR_LEASE'
  /** A store (tasks, audit, idempotency) failed. */
  | 'ERR_STORE'
  /** The host's sync service failed. */
  | 'ERR_SYNC_FAILED'
  /** A handler asked for the event to be dead-lettered without retry. */
  | 'ERR_NON_RETRYABLE'
  /** An optional peer dependency is missing or of the wrong shape. */
  | 'ERR_MISSING_DEPENDENCY';

/** Options for {@link IntegrationSyncError}. */
export interface IntegrationSyncErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** Structured, secret-free details (validation issues, status codes...). */
  details?: Record<string, unknown>;
}

/** Base class of every error of this library. Test with {@link isIntegrationSyncError}. */
export class IntegrationSyncError extends Error {
  /** Stable class name, checked by {@link isIntegrationSyncError} where `instanceof` fails. */
  override readonly name: string = 'IntegrationSyncError';
  /** Machine-readable code. */
  readonly code: ErrorCode;
  /** Structured, secret-free details. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: IntegrationSyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/**
 * Throw this from a handler to dead-letter the event at once instead of retrying it
 * (for input that can never succeed).
 */
export class NonRetryableError extends IntegrationSyncError {
  /** Stable class name, kept across the ESM and CJS copies of the package. */
  override readonly name: string = 'NonRetryableError';
  constructor(message: string, options: IntegrationSyncErrorOptions = {}) {
    super('ERR_NON_RETRYABLE', message, options);
  }
}

/**
 * True when `error` is an {@link IntegrationSyncError} (optionally with the given code).
 * Checks `name` and `code` as well as `instanceof`, because the ESM and CJS copies of a dual
 * package have distinct classes.
 */
export function isIntegrationSyncError(error: unknown, code?: ErrorCode): error is IntegrationSyncError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { name?: unknown; code?: unknown };
  try {
    const ours =
      error instanceof IntegrationSyncError ||
      (typeof candidate.code === 'string' &&
        candidate.code.startsWith('ERR_') &&
        typeof candidate.name === 'string' &&
        /(IntegrationSync|NonRetryable|TokenRefresh|EventValidation|Http)\w*Error$/.test(candidate.name));
    return ours && (code === undefined || candidate.code === code);
  } catch {
    // A Proxy or throwing getter is not one of ours, and a type guard must not throw.
    return false;
  }
}

/** True when `error` says its work must not be retried (`retryable === false` or {@link NonRetryableError}). */
export function isNonRetryable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  try {
    const candidate = error as { retryable?: unknown; code?: unknown };
    return candidate.retryable === false || candidate.code === 'ERR_NON_RETRYABLE';
  } catch {
    // A getter or Proxy trap that throws: treat as retryable, so maxAttempts still applies.
    return false;
  }
}

/** A short, secret-free description of an error, for logs, audit and dead-letter records. */
export interface ErrorSummary {
  /** The error's `name` (`NonError` when a non-Error value was thrown). */
  name: string;
  /** The error's string `code`, when it has one. */
  code?: string;
  /** The message, cut to 300 characters. */
  message: string;
}

const MAX_MESSAGE = 300;

/** Reduces any thrown value to an {@link ErrorSummary} with a bounded message. */
export function summarizeError(error: unknown): ErrorSummary {
  // Handlers may throw anything; a summary that threw would turn a dead-letter into endless retries.
  try {
    if (error instanceof Error) {
      const code = (error as { code?: unknown }).code;
      return {
        name: String(error.name),
        ...(typeof code === 'string' ? { code } : {}),
        message: truncate(String(error.message), MAX_MESSAGE),
      };
    }
    return { name: 'NonError', message: truncate(String(error), MAX_MESSAGE) };
  } catch {
    return { name: 'NonError', message: 'unprintable thrown value' };
  }
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

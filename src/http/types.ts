import type { SignalOptions } from '../core/abort.js';

/** One HTTP request. */
export interface HttpRequest extends SignalOptions {
  /** @default "GET" */
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  /** Absolute http(s) URL without credentials; only host and path reach logs and errors. */
  url: string;
  /** Request headers; never logged, since they may carry credentials. */
  headers?: Record<string, string>;
  /** A string is sent as is; any other value as JSON with `content-type: application/json`. */
  body?: unknown;
  /** Per-attempt timeout. @default the client's (10000) */
  timeoutMs?: number;
  /** Retries after the first attempt; 0 disables. @default the client's (2) */
  retries?: number;
}

/** A response: any status resolves; only network errors, timeouts and aborts reject. */
export interface HttpResponse {
  /** Status of the last attempt; error statuses resolve too, so callers classify them. */
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The body as text. Never put it in a log, event or error: it may hold tokens. */
  text: string;
  /** Attempts made, 1-based. */
  attempts: number;
}

/**
 * The one outbound HTTP interface. Resolves with the final response for every status (after
 * retries of 408, 429 and 5xx); rejects with `ERR_HTTP_TIMEOUT`, `ERR_HTTP_NETWORK` or the
 * signal's reason.
 */
export interface HttpClient {
  /** Sends `request`, retrying what is worth retrying, and resolves with the final response. */
  request(request: HttpRequest): Promise<HttpResponse>;
}

import type { SignalOptions } from '../core/abort.js';

/** One HTTP request. */
export interface HttpRequest extends SignalOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  url: string;
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
  request(request: HttpRequest): Promise<HttpResponse>;
}

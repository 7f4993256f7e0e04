import type { SignalOptions } from '../core/abort.js';

/** The connection data a refresh needs (what `integration.token.refresh-requested` carries). */
export interface ConnectionRefreshRequest {
  /** The connection whose tokens to refresh; also the key of the per-connection lease. */
  connectionId: string;
  /** The integration the connection belongs to, for events, audit and the upstream call. */
  integrationId: string;
  /** The tenant owning the connection, for events, audit and the upstream call. */
  tenantId: string;
  /** When the current access token expires (ISO), if known. */
  expiresAt?: string;
  /** When the refresh was requested (ISO); a request older than the last successful refresh is skipped. */
  requestedAt?: string;
}

/** Outcome of {@link TokenRefresher.refreshConnectionTokens}. The matching event has been published. */
export type RefreshOutcome =
  | {
      /** The tokens were renewed. */
      status: 'refreshed';
      /** The connection refreshed. */
      connectionId: string;
      /** When the refresh succeeded (ISO time). */
      refreshedAt: string;
      /** New expiry reported by the integration-manager, when it sent a usable one. */
      expiresAt?: string;
      /** HTTP attempts the call took, 1-based. */
      attempts: number;
    }
  | {
      /** The refresh failed; a `integration.token.refresh.failed` event was published. */
      status: 'failed';
      /** The connection whose refresh failed. */
      connectionId: string;
      /** Short classified reason: `invalid_grant`, `rate_limited`, `timeout`, `http_503`... */
      error: string;
      /** False when asking again cannot help (revoked grant, 4xx); true for timeouts, 429 and 5xx. */
      retryable: boolean;
      /** HTTP attempts made, 1-based. */
      attempts: number;
    }
  | {
      /** Nothing was called. */
      status: 'skipped';
      /** The connection not refreshed. */
      connectionId: string;
      /** `stale_request`: older than the last successful refresh; `lease_held`: another replica is refreshing. */
      reason: 'stale_request' | 'lease_held';
    };

/** What the consumer needs of the token refresher; `TokenRefreshService` implements it. */
export interface TokenRefresher {
  /** Refreshes one connection's tokens (once across replicas) and reports how it went. */
  refreshConnectionTokens(request: ConnectionRefreshRequest, options?: SignalOptions): Promise<RefreshOutcome>;
}

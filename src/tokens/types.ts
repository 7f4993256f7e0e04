import type { SignalOptions } from '../core/abort.js';

/** The connection data a refresh needs (what `integration.token.refresh-requested` carries). */
export interface ConnectionRefreshRequest {
  connectionId: string;
  integrationId: string;
  tenantId: string;
  /** When the current access token expires (ISO), if known. */
  expiresAt?: string;
  /** When the refresh was requested (ISO); a request older than the last successful refresh is skipped. */
  requestedAt?: string;
}

/** Outcome of {@link TokenRefresher.refreshConnectionTokens}. The matching event has been published. */
export type RefreshOutcome =
  | {
      status: 'refreshed';
      connectionId: string;
      refreshedAt: string;
      /** New expiry reported by the integration-manager, when it sent a usable one. */
      expiresAt?: string;
      attempts: number;
    }
  | {
      status: 'failed';
      connectionId: string;
      /** Short classified reason: `invalid_grant`, `rate_limited`, `timeout`, `http_503`... */
      error: string;
      retryable: boolean;
      attempts: number;
    }
  | {
      status: 'skipped';
      connectionId: string;
      /** `stale_request`: older than the last successful refresh; `lease_held`: another replica is refreshing. */
      reason: 'stale_request' | 'lease_held';
    };

/** What the consumer needs of the token refresher; `TokenRefreshService` implements it. */
export interface TokenRefresher {
  refreshConnectionTokens(request: ConnectionRefreshRequest, options?: SignalOptions): Promise<RefreshOutcome>;
}

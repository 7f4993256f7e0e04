/**
 * OAuth token refresh: the `TokenRefresher` contract, the service that implements it, and the
 * classification of refresh failures.
 * @module
 */
export * from './types.js';
export * from './classify.js';
export * from './refresh-record-store.js';
export * from './token-refresh-service.js';

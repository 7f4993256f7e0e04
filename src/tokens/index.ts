export * from './types.js';
export {
  classifyRefreshError,
  classifyRefreshResponse,
  parseExpiresAt,
  PERMANENT_REFRESH_ERRORS,
  TRANSIENT_REFRESH_ERRORS,
  type RefreshClassification,
  type RefreshFailure,
} from './classify.js';
export * from './refresh-record-store.js';
export * from './token-refresh-service.js';

export * from './types.js';
export * from './classify.js';
export * from './refresh-record-store.js';
export * from './token-refresh-service.js';

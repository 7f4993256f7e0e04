export * from './types.js';
export * from './idempotency.js';
export * from './delivery.js';

export * from './types.js';
export * from './memory-lease.js';

/**
 * Mutual exclusion with expiry and fencing across replicas; the in-memory default.
 * @module
 */
export * from './types.js';
export * from './memory-lease.js';

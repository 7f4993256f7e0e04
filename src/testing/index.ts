/**
 * @module integration-sync/testing
 */
export * from './bus-conformance.js';
export * from './audit-conformance.js';
export * from './store-conformance.js';
export * from './lease-conformance.js';

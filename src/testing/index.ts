/**
 * @module integration-sync/testing
 */
export * from './bus-conformance.js';

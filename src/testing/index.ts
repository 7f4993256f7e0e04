/**
 * Conformance suites for adapter authors: {@link testEventBus}, {@link testLease},
 * {@link testSyncTaskStore} and {@link testAuditStore} register vitest tests that check an
 * implementation keeps the same contract as the built-in ones. Call one from a test file with a
 * small harness for your adapter. This entry imports `vitest`, so load it from tests only.
 *
 * @module integration-sync/testing
 */
export * from './bus-conformance.js';
export * from './audit-conformance.js';
export * from './store-conformance.js';
export * from './lease-conformance.js';

/**
 * @module integration-sync/testing
 */
export {};

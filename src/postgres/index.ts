/**
 * @module integration-sync/postgres
 */
export {};

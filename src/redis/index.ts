/**
 * @module integration-sync/redis
 */
export {};

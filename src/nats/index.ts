/**
 * @module integration-sync/nats
 */
export {};

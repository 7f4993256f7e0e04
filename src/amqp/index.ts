/**
 * @module integration-sync/amqp
 */
export {};

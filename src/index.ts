/**
 * The transport-agnostic core: the event contract, the EventBus and HttpClient interfaces with
 * their embedded defaults, the scheduler, the token refresher, the sync-task consumer, planners,
 * leases and the audit trail.
 *
 * @module integration-sync
 */
export * from './core/index.js';
export * from './events/index.js';
export * from './bus/index.js';
export * from './http/index.js';
export * from './leases/index.js';
export * from './tasks/index.js';
export * from './audit/index.js';
export * from './tokens/index.js';
export * from './scheduler/index.js';
export * from './planners/index.js';

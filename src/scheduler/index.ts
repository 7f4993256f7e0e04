/**
 * The periodic services' shared engine and the sync scheduler.
 * @module
 */
export * from './slot-timer.js';
export * from './sync-scheduler-service.js';

export * from './types.js';
export * from './logger-sink.js';
export * from './memory-sink.js';
export { AUDIT_CHANNEL } from './diagnostics.js';

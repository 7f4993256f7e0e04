export * from './types.js';
export * from './logger-sink.js';
export { createMemoryAuditStore, DEFAULT_AUDIT_QUERY_LIMIT, type MemoryAuditStore, type MemoryAuditStoreOptions } from './memory-sink.js';
export { AUDIT_CHANNEL } from './diagnostics.js';

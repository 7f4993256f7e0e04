export * from './types.js';
export * from './memory-task-store.js';
export * from './overlap.js';

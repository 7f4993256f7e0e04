export * from './types.js';
export * from './memory-task-store.js';
export * from './overlap.js';
export * from './task-error.js';

export * from './types.js';
export * from './retry-after.js';
export * from './fetch-client.js';

export * from './errors.js';
export * from './options.js';
export * from './clock.js';
export * from './logger.js';
export * from './abort.js';

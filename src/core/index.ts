export * from './errors.js';
export * from './clock.js';
export { childLogger, silentLogger, type LogFn, type Logger } from './logger.js';
export * from './abort.js';

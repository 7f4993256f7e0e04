export * from './errors.js';
export * from './clock.js';
export { childLogger, silentLogger, type LogFn, type Logger } from './logger.js';
// Named, so internal helpers of abort.ts (settleWithin) stay off the public entry.
export { abortReason, backoffDelay, raceSignal, sleep, throwIfAborted, type SignalOptions } from './abort.js';

export * from './schemas.js';
export * from './envelope.js';
export * from './router.js';
export * from './consumers/index.js';

export * from './schemas.js';
export * from './envelope.js';

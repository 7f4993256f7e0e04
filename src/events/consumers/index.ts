export * from './SyncTaskEventConsumer.js';

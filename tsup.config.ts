import { defineConfig } from 'tsup';

/** Every public entry point; `scripts/check-exports.mjs` keeps this list and package.json `exports` in step. */
export const entries = {
  index: 'src/index.ts',
  'redis/index': 'src/redis/index.ts',
  'nats/index': 'src/nats/index.ts',
  'amqp/index': 'src/amqp/index.ts',
  'postgres/index': 'src/postgres/index.ts',
  'testing/index': 'src/testing/index.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
  // Broker clients are optional peers supplied by the host; never bundle them.
  external: ['ioredis', 'amqplib', 'pg', '@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/nats-core', 'vitest'],
});

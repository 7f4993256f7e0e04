// The README's whole loop on the memory bus with real timers and a real node:http
// integration-manager, then the README's shutdown sequence: after `stop` ms by itself
// (argv[2] === 'stop'), or on SIGTERM (argv[2] === 'sigterm', a sync ignoring its signal is
// running then). Prints a JSON summary; the process must then exit on its own.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryBus } from '../../src/bus/memory-bus.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';
import { TokenRefreshService } from '../../src/tokens/token-refresh-service.js';
import { SyncTaskEventConsumer } from '../../src/events/consumers/SyncTaskEventConsumer.js';
import { createSyncPlanner } from '../../src/planners/sync-planner.js';
import { createRefreshPlanner } from '../../src/planners/refresh-planner.js';

process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandledRejection: ${String(reason)}\n`);
  process.exitCode = 1;
});

const mode = process.argv[2] ?? 'stop';
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => setTimeout(() => res.end(JSON.stringify({ expiresAt: Date.now() + 3_600_000 })), 20));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const bus = createMemoryBus({ retryBaseMs: 10, retryMaxMs: 50 });
const counts = { syncs: 0, refreshed: 0 };
await bus.subscribe({ group: 'spy', types: ['integration.token.refreshed'], handler: async () => void (counts.refreshed += 1) });
const scheduler = new SyncSchedulerService({ bus, intervalMs: 100 });
const tokens = new TokenRefreshService({ bus, http: createFetchHttpClient(), baseUrl, intervalMs: 150 });
const syncPlanner = createSyncPlanner({
  bus,
  findDue: () => [1, 2, 3].map((n) => ({ integrationId: `int-${n}`, tenantId: 'tenant' })),
});
const refreshPlanner = createRefreshPlanner({
  bus,
  findExpiring: async (_threshold, { cursor }) =>
    cursor === undefined
      ? { items: [{ connectionId: 'c1', integrationId: 'int-1', tenantId: 'tenant', expiresAt: new Date() }], nextCursor: 'p2' }
      : { items: [{ connectionId: 'c2', integrationId: 'int-2', tenantId: 'tenant', expiresAt: new Date() }] },
});
const consumer = new SyncTaskEventConsumer({
  bus,
  tokenRefresh: tokens,
  stopTimeoutMs: 500,
  syncService: {
    execute: async (_task, { signal }) => {
      counts.syncs += 1;
      // In sigterm mode the sync ignores its signal, as careless host code does.
      const ms = mode === 'sigterm' ? 1500 : 30;
      await new Promise((r) => setTimeout(r, ms));
      if (mode !== 'sigterm') signal.throwIfAborted();
    },
  },
});

await syncPlanner.subscribe(bus, { group: 'sync-planner' });
await refreshPlanner.subscribe(bus, { group: 'refresh-planner' });
await consumer.start();
scheduler.start();
tokens.start();

const shutdown = async (): Promise<void> => {
  await scheduler.stop();
  await tokens.stop();
  await consumer.stop();
  await bus.close({ timeoutMs: 500 });
  server.close();
  server.closeAllConnections();
  process.stdout.write(`${JSON.stringify({ ...counts, tasks: (await consumer.store.list()).length })}\n`);
};

if (mode === 'sigterm') {
  process.once('SIGTERM', () => void shutdown());
  setTimeout(() => process.stdout.write('ready\n'), 400);
} else {
  setTimeout(() => void shutdown(), 600);
}

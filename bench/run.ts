/**
 * `npm run bench`: speed and memory of the hot paths, each printed as a ratio against a floor
 * measured in the same run (the unavoidable work: JSON.parse of the same payload, a bare
 * EventEmitter hop, a bare Map). Ratios, not absolute numbers, are the figures to compare.
 */
import { EventEmitter } from 'eventemitter3';
import {
  createEvent,
  createMemoryBroker,
  createMemoryBus,
  createMemoryIdempotencyStore,
  DeliveryPipeline,
  EventTypes,
  parseEvent,
  serializeEvent,
  SyncTaskEventConsumer,
  type CloudEvent,
} from '../src/index.js';
import { compare, report, type BenchResult } from './harness.js';

const event = createEvent(EventTypes.WebhookReceived, {
  integrationId: 'int_tickets',
  tenantId: 'tenant_b',
  entityType: 'ticket',
  filters: { updatedSince: '2026-11-30T09:00:00Z', ids: ['T-1', 'T-2', 'T-3'] },
});
const text = serializeEvent(event);

async function parsing(): Promise<BenchResult> {
  return compare('parseEvent, envelope + data schema (floor: JSON.parse)', () => parseEvent(text), () => JSON.parse(text), { iterations: 20_000 });
}

async function pipeline(): Promise<BenchResult> {
  let n = 0;
  const p = new DeliveryPipeline(
    { group: 'bench', types: [EventTypes.WebhookReceived], handler: async () => {} },
    { idempotency: createMemoryIdempotencyStore({ maxEntries: 10_000 }) },
  );
  // A fresh id each time, so every delivery runs the handler rather than the duplicate path.
  return compare(
    'DeliveryPipeline.process (floor: JSON.parse + handler call)',
    () => p.process({ body: text.replace(event.id, `id-${(n += 1)}`), attempt: 1 }),
    async () => {
      const v = JSON.parse(text.replace(event.id, `id-${(n += 1)}`)) as CloudEvent;
      await (async (_e: CloudEvent) => {})(v);
    },
    { iterations: 10_000 },
  );
}

async function memoryBus(): Promise<BenchResult> {
  const batch = 2_000;
  const bus = createMemoryBus();
  let handled = 0;
  let wake: (() => void) | undefined;
  await bus.subscribe({
    group: 'bench',
    types: [EventTypes.WebhookReceived],
    concurrency: 64,
    handler: async () => {
      handled += 1;
      if (handled % batch === 0) wake?.();
    },
  });
  const emitter = new EventEmitter();
  let floorHandled = 0;
  let floorWake: (() => void) | undefined;
  emitter.on('e', (payload: string) => {
    JSON.parse(payload);
    floorHandled += 1;
    if (floorHandled % batch === 0) floorWake?.();
  });
  let seq = 0;
  const result = await compare(
    `memory bus publish -> handler, per event (floor: EventEmitter + JSON)`,
    async () => {
      const done = new Promise<void>((r) => (wake = r));
      for (let i = 0; i < batch; i += 1) void bus.publish({ ...event, id: `m-${(seq += 1)}` });
      await done;
    },
    async () => {
      const done = new Promise<void>((r) => (floorWake = r));
      for (let i = 0; i < batch; i += 1) {
        const payload = JSON.stringify({ ...event, id: `f-${(seq += 1)}` });
        setImmediate(() => emitter.emit('e', payload));
      }
      await done;
    },
    { iterations: 5, rounds: 5 },
  );
  await bus.close();
  return { ...result, opsPerSec: result.opsPerSec * batch, floorOpsPerSec: result.floorOpsPerSec * batch };
}

function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

async function idempotencyMemory(): Promise<string> {
  const n = 100_000;
  const keys = Array.from({ length: n }, (_, i) => `integration-sync:evt-${i.toString(36)}-${'x'.repeat(20)}`);
  let before = heapUsed();
  const store = createMemoryIdempotencyStore({ maxEntries: n });
  for (const key of keys) await store.add(key, 60_000);
  const storeBytes = heapUsed() - before;
  before = heapUsed();
  const floor = new Map<string, number>();
  for (const key of keys) floor.set(key, Date.now());
  const floorBytes = heapUsed() - before;
  // Keep both alive past the measurements, or the collector frees them before they are counted.
  if (!(await store.has(keys[n - 1]!)) || floor.size !== n) throw new Error('bench: store lost entries');
  // Bounded: adding twice the capacity keeps the size at the cap.
  const bounded = createMemoryIdempotencyStore({ maxEntries: 1000 });
  for (const key of keys) await bounded.add(key, 60_000);
  const stillFirst = await bounded.has(keys[0]!);
  return `idempotency store: ${(storeBytes / n).toFixed(0)} B per id vs bare Map ${(floorBytes / n).toFixed(0)} B (ratio ${(storeBytes / Math.max(1, floorBytes)).toFixed(2)}x); capacity 1000 after ${n} adds evicts the oldest: ${!stillFirst}`;
}

async function webhookStorm(): Promise<string> {
  const bus = createMemoryBus();
  let executions = 0;
  const consumer = new SyncTaskEventConsumer({
    bus,
    concurrency: 64,
    tokenRefresh: { refreshConnectionTokens: () => Promise.reject(new Error('unused')) },
    syncService: {
      execute: async () => {
        executions += 1;
        await new Promise((r) => setTimeout(r, 50));
      },
    },
  });
  await consumer.start();
  const storm = 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: storm }, () => bus.publish(createEvent(EventTypes.WebhookReceived, { integrationId: 'int_tickets', tenantId: 'tenant_b' }))),
  );
  const finished = async (): Promise<number> =>
    (await consumer.store.list({ limit: storm + 1 })).filter((t) => t.status === 'succeeded' || t.status === 'skipped' || t.status === 'failed').length;
  for (let i = 0; i < 400 && (await finished()) < storm; i += 1) await new Promise((r) => setTimeout(r, 25));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const tasks = await consumer.store.list({ limit: storm + 1 });
  await consumer.stop();
  await bus.close();
  return `webhook storm: ${storm} webhooks for one integration -> ${executions} sync runs, ${tasks.filter((t) => t.status === 'skipped').length} coalesced (${ms.toFixed(0)} ms wall, sync takes 50 ms)`;
}

/** Per-event cost of draining a backlog of `n` events that waited for a consumer. */
async function drainBacklog(n: number): Promise<number> {
  const bus = createMemoryBus({ broker: createMemoryBroker({ maxQueueLength: n + 1 }) });
  let handled = 0;
  const first = await bus.subscribe({ group: 'backlog', types: [EventTypes.WebhookReceived], handler: async () => {} });
  await first.close();
  for (let i = 0; i < n; i += 1) await bus.publish({ ...event, id: `b-${i}` });
  const started = process.hrtime.bigint();
  await bus.subscribe({ group: 'backlog', types: [EventTypes.WebhookReceived], concurrency: 16, handler: async () => void (handled += 1) });
  while (handled < n) await new Promise((r) => setImmediate(r));
  const perEvent = Number(process.hrtime.bigint() - started) / n;
  await bus.close();
  return perEvent;
}

async function backlogScaling(): Promise<string> {
  const small = await drainBacklog(5_000);
  const large = await drainBacklog(80_000);
  return `memory bus backlog: draining 80 000 queued events costs ${(large / 1000).toFixed(1)} us/event vs ${(small / 1000).toFixed(1)} us/event for 5 000 (ratio ${(large / small).toFixed(2)}x; 1.00x = linear)`;
}

async function main(): Promise<void> {
  console.log(`integration-sync benchmarks (node ${process.version})\nratio = time per operation / time per operation of its floor, measured in this run; lower is better\n`);
  report([await parsing(), await pipeline(), await memoryBus()]);
  console.log('');
  console.log(await idempotencyMemory());
  console.log(await backlogScaling());
  console.log(await webhookStorm());
}

void main();

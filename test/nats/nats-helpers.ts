import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { BusOptions } from '../../src/bus/delivery.js';
import type { EventBus } from '../../src/bus/types.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createNatsBus, type NatsBusOptions, type NatsEventBus } from '../../src/nats/index.js';

export const NATS_URL = 'nats://127.0.0.1:4222';

export function connectNats(): Promise<NatsConnection> {
  return connect({ servers: NATS_URL, name: 'integration-sync-test' });
}

/** A unique namespace: its own stream and subject prefix, so parallel files never collide. */
export function uniqueNamespace(label = 'ns'): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

export function streamFor(namespace: string): string {
  return `ISYNC_TEST_${namespace.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

export function prefixFor(namespace: string): string {
  return `isync-test.${namespace.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** Each bus owns one connection, so `crash()` can drop exactly that member. */
const connections = new WeakMap<EventBus, NatsConnection>();

export interface TestBus {
  bus: NatsEventBus;
  nc: NatsConnection;
}

export async function createTestBus(namespace: string, options: Partial<NatsBusOptions> & BusOptions = {}): Promise<TestBus> {
  const nc = await connectNats();
  const bus = createNatsBus({
    connection: nc,
    jetstream: jetstream(nc),
    manager: await jetstreamManager(nc),
    stream: streamFor(namespace),
    subjectPrefix: prefixFor(namespace),
    ackWaitMs: 2000,
    duplicateWindowMs: 60_000,
    streamMaxAgeMs: 600_000,
    closeConnection: true,
    ...options,
  });
  connections.set(bus, nc);
  return { bus, nc };
}

/** Drops the member's connection at once: no acks, no naks, no graceful close. */
export async function crashBus(bus: EventBus): Promise<void> {
  const nc = connections.get(bus);
  if (!nc) throw new Error('crashBus: not a test bus');
  await nc.close();
}

export async function withManager<T>(fn: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectNats();
  try {
    return await fn(await jetstreamManager(nc), nc);
  } finally {
    await nc.close();
  }
}

/** Publishes raw bytes to the namespace's subject for `type`, as a foreign producer would. */
export async function publishRaw(namespace: string, type: string, payload: string | Uint8Array): Promise<void> {
  const nc = await connectNats();
  try {
    await jetstream(nc).publish(`${prefixFor(namespace)}.${type}`, payload);
  } finally {
    await nc.close();
  }
}

export async function deleteStream(namespace: string): Promise<void> {
  await withManager(async (jsm) => {
    try {
      await jsm.streams.delete(streamFor(namespace));
    } catch {
      // Never created (a test that failed early): nothing to remove.
    }
  });
}

export function scheduledEvent(id: string = randomUUID()): CloudEvent {
  return {
    specversion: '1.0',
    id,
    source: '/nats-test',
    type: EventTypes.SyncScheduled,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: { integrationId: 'int_crm', tenantId: 'tenant_a', trigger: 'schedule', scheduledAt: new Date().toISOString() },
  };
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A broker restart, on a private nats-server (its own port and store directory) so the shared
 * server other test files use is never touched: events stored before the restart and events
 * published after it are all handled, and the subscription's pull loop recovers by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryContext } from '../../src/bus/types.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createNatsBus, type NatsEventBus } from '../../src/nats/index.js';
import { delay, scheduledEvent, waitFor } from './nats-helpers.js';
import { freePort } from '../support/net.js';

const NATS_SERVER = '/usr/sbin/nats-server';


function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('NATS bus: broker restart', () => {
  let port = 0;
  let storeDir = '';
  let server: ChildProcess | undefined;

  async function startServer(): Promise<void> {
    server = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: 'ignore' });
    await waitFor(() => listening(port), `private nats-server on ${port}`, 15_000);
  }

  async function stopServer(): Promise<void> {
    const child = server;
    server = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  beforeAll(async () => {
    port = await freePort();
    storeDir = mkdtempSync(join(tmpdir(), 'isync-nats-'));
    await startServer();
  });

  afterAll(async () => {
    await stopServer();
    rmSync(storeDir, { recursive: true, force: true });
  });

  it('handles events stored before the restart and published after it, without a new subscribe', async () => {
    const nc: NatsConnection = await connect({ servers: `nats://127.0.0.1:${port}`, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    const bus: NatsEventBus = createNatsBus({ connection: nc, jetstream: jetstream(nc), manager: await jetstreamManager(nc), ackWaitMs: 2000, closeConnection: true });
    try {
      const handled: string[] = [];
      let gateOpen = false;
      await bus.subscribe({
        group: 'survivor',
        types: [EventTypes.SyncScheduled],
        handler: async (event, _ctx: DeliveryContext) => {
          // Fail until the restart is over, so the first events are still unacked in the stream.
          if (!gateOpen) throw new Error('not yet');
          handled.push(event.id);
        },
        maxAttempts: 1000,
      });
      const before = [scheduledEvent(), scheduledEvent()];
      for (const event of before) await bus.publish(event);
      await delay(300);

      await stopServer();
      await delay(500);
      await startServer();
      await waitFor(() => !nc.isClosed() && nc.info !== undefined, 'reconnect', 15_000);
      gateOpen = true;

      const after = scheduledEvent();
      // The first publish may race the reconnect; a rejected publish is retried, never dropped silently.
      await waitFor(
        () =>
          bus.publish(after).then(
            () => true,
            () => false,
          ),
        'a publish after the restart',
        20_000,
      );
      await waitFor(() => [...before, after].every((e) => handled.includes(e.id)), 'every event handled after the restart', 30_000);
      expect(new Set(handled)).toEqual(new Set([...before, after].map((e) => e.id)));
    } finally {
      await bus.close({ timeoutMs: 1000 });
    }
  }, 60_000);
});

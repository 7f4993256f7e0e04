/**
 * A Redis restart under a live bus, on a private redis-server this test starts and kills (the
 * shared server on 6379 is never touched). Nothing persists across the restart, so the streams
 * and groups are gone afterwards: the bus must reconnect, recreate its group and keep consuming.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisBus } from '../../src/redis/index.js';
import { CHECK_DUE, checkDue, closeClients, recordingLogger, waitFor } from './helpers.js';
import { freePort } from '../support/net.js';


const processes = new Set<ChildProcess>();

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  processes.add(child);
  child.once('exit', () => processes.delete(child));
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => {});
  try {
    await waitFor('private redis-server', async () => {
      try {
        if (probe.status !== 'ready') await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        probe.disconnect();
        return false;
      }
    });
  } finally {
    probe.disconnect();
  }
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

afterEach(async () => {
  await Promise.all([...processes].map(stop));
});

describe('Redis bus across a Redis restart', () => {
  it('reconnects, recreates its lost group and keeps consuming; publish waits for the server rather than drop', async () => {
    const port = await freePort();
    let server = await startRedis(port);
    const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 100 });
    client.on('error', () => {});
    const logger = recordingLogger();
    const bus = createRedisBus({ client, logger, prefix: 'restart', blockMs: 500, claimIdleMs: 500, claimIntervalMs: 100 });
    try {
      const seen: string[] = [];
      await bus.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
      const before = checkDue();
      await bus.publish(before);
      await waitFor('event before the restart', () => seen.includes(before.id));

      await stop(server);
      const during = checkDue();
      // Taken while the server is down: ioredis queues it and sends it once the server is back.
      const publishing = bus.publish(during);
      await new Promise((resolve) => setTimeout(resolve, 300));
      server = await startRedis(port);
      await publishing;
      await waitFor('event published during the outage', () => seen.includes(during.id), 20_000);

      const after = checkDue();
      await bus.publish(after);
      await waitFor('event after the restart', () => seen.includes(after.id), 20_000);
      expect(seen.filter((id) => id === during.id)).toHaveLength(1);
      // The restarted server had no group: the bus recreated it rather than stall on NOGROUP.
      expect(logger.lines.some((line) => /recreating/.test(line.msg ?? ''))).toBe(true);
    } finally {
      await bus.close({ timeoutMs: 1000 });
      await closeClients([client]);
    }
  });
});

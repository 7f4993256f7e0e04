import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../../src/core/logger.js';
import { createEvent } from '../../src/events/envelope.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/** A client the test owns; quit it with `closeClients`. */
export function newClient(options: { connectionName?: string } = {}): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 3, ...options });
}

/** A unique key prefix per test, so parallel files and tests never share a stream. */
export function uniquePrefix(label: string): string {
  return `itest:${label}:${randomBytes(5).toString('hex')}`;
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Quits clients, falling back to disconnect for ones that are already down. */
export async function closeClients(clients: Iterable<Redis>): Promise<void> {
  await Promise.all(
    [...clients].map(async (client) => {
      if (client.status === 'end') return;
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    }),
  );
}

/** Polls `check` until it returns a truthy value, or fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A logger that keeps its lines, to assert on what was logged. */
export function recordingLogger(): Logger & { lines: Array<{ level: string; msg: string | undefined; obj: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string | undefined; obj: Record<string, unknown> }> = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) => void lines.push({ level, msg, obj });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A valid contract event, unique id unless given. */
export function checkDue(id?: string) {
  return createEvent('integration.sync.check-due', { timestamp: new Date().toISOString() }, id === undefined ? {} : { id });
}

export const CHECK_DUE = 'integration.sync.check-due';
export const REFRESHED = 'integration.token.refreshed';

export function refreshed(id?: string) {
  return createEvent(
    'integration.token.refreshed',
    { connectionId: 'c1', integrationId: 'i1', refreshedAt: new Date().toISOString() },
    id === undefined ? {} : { id },
  );
}

/** Pending count of a group on a stream (0 when the group or stream is gone). */
export async function pendingCount(redis: Redis, stream: string, group: string): Promise<number> {
  try {
    const summary = (await redis.xpending(stream, group)) as [number, ...unknown[]];
    return Number(summary[0]);
  } catch {
    return 0;
  }
}

/** Consumers of a group: name and pending count. */
export async function consumers(redis: Redis, stream: string, group: string): Promise<Array<{ name: string; pending: number }>> {
  const raw = (await redis.xinfo('CONSUMERS', stream, group)) as unknown[][];
  return raw.map((flat) => {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1]);
    return { name: String(fields.get('name')), pending: Number(fields.get('pending')) };
  });
}

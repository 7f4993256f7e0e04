/**
 * Adversarial tests of the Redis adapters on the real Redis: bad names and payloads, close()
 * in every phase, connections killed under load (only this file's own, found by client name),
 * 2 members x 2000 events with random failures, lease edge cases and secrets in logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { isIntegrationSyncError, NonRetryableError } from '../../src/core/errors.js';
import type { DeadLetterRecord } from '../../src/bus/types.js';
import { createRedisBus, createRedisIdempotencyStore, createRedisLease, redisStreamKey } from '../../src/redis/index.js';
import { CHECK_DUE, checkDue, checkDueWithSecret, delay, recordingAudit, recordingLogger, runExitChild, suffix, trapUnhandled, waitFor, expectHandledOnceOrDeadLettered } from './adapter-helpers.js';
import { freePort } from '../support/net.js';

const URL = 'redis://127.0.0.1:6379';
const unhandled = trapUnhandled();
const clients = new Set<Redis>();
const prefixes = new Set<string>();

function client(name?: string): Redis {
  const c = new Redis(URL, { maxRetriesPerRequest: null, ...(name ? { connectionName: name } : {}) });
  c.on('error', () => {});
  clients.add(c);
  return c;
}
const admin = client();
function prefix(label: string): string {
  const p = `brk:redis:${label}:${suffix()}`;
  prefixes.add(p);
  return p;
}

afterAll(async () => {
  for (const p of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
  }
  for (const c of clients) c.disconnect();
  unhandled.dispose();
  expect(unhandled.list).toEqual([]);
});

async function deadLetters(p: string): Promise<DeadLetterRecord[]> {
  const entries = await admin.xrange(`${p}:dead-letter`, '-', '+');
  return entries.map(([, fields]) => JSON.parse(fields[1] as string) as DeadLetterRecord);
}

/** Kills this file's connections named `name` from the server side (never anyone else's). */
async function killConnections(name: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  let killed = 0;
  for (const line of list.split('\n')) {
    if (!line.includes(` name=${name} `)) continue;
    const id = /id=(\d+)/.exec(line)?.[1];
    if (id) killed += Number(await admin.client('KILL', 'ID', id).catch(() => 0));
  }
  return killed;
}

describe('Redis bus: bad options and names', () => {
  it('rejects malformed subscribe options with ERR_INVALID_OPTION, not a bare TypeError', async () => {
    const bus = createRedisBus({ client: admin, prefix: prefix('opts') });
    const handler = async () => {};
    for (const bad of [
      { group: '   ', types: [CHECK_DUE], handler },
      { group: 'g', types: [], handler },
      { group: 'g', types: [''], handler },
      { group: 'g', types: [CHECK_DUE], handler: 'nope' },
    ]) {
      const error = await bus.subscribe(bad as never).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION'), String(error)).toBe(true);
    }
    await bus.close();
  });

  it('works end to end with groups and prefixes made of spaces, dots, wildcards, unicode and 1000 characters', async () => {
    const names = ['with space', 'a.b.c', '*', '>', '#', 'ünïcødé-☃', '{tag}', 'x'.repeat(1000)];
    for (const name of names) {
      const p = `${prefix('names')}:${name}`;
      const bus = createRedisBus({ client: admin, prefix: p, blockMs: 200 });
      const seen: string[] = [];
      await bus.subscribe({ group: name, types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
      await bus.subscribe({ group: `${name}-dl`, types: [CHECK_DUE], handler: async () => { throw new NonRetryableError('no'); } });
      const event = checkDue();
      await bus.publish(event);
      await waitFor(`delivery for group ${name.slice(0, 20)}`, () => seen.includes(event.id));
      await waitFor('dead letter', async () => (await deadLetters(p)).some((r) => r.eventId === event.id && r.group === `${name}-dl`));
      await bus.close();
      const groups = (await admin.xinfo('GROUPS', redisStreamKey(p, CHECK_DUE))) as unknown[][];
      expect(groups.map((g) => String(g[1])).sort()).toEqual([name, `${name}-dl`].sort());
    }
  });
});

describe('Redis bus: hostile stream entries', () => {
  it('dead-letters non-UTF-8, empty, 10 MB, non-event JSON, unsubscribed types and missing fields, and keeps consuming', async () => {
    const p = prefix('raw');
    const logger = recordingLogger();
    const bus = createRedisBus({ client: admin, prefix: p, blockMs: 200, logger });
    const seen: string[] = [];
    await bus.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    const stream = redisStreamKey(p, CHECK_DUE);
    await admin.xadd(stream, '*', 'event', Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]));
    await admin.xadd(stream, '*', 'event', '');
    await admin.xadd(stream, '*', 'event', Buffer.alloc(10 * 1024 * 1024, 0x01));
    await admin.xadd(stream, '*', 'event', JSON.stringify({ hello: 'world' }));
    await admin.xadd(stream, '*', 'event', JSON.stringify([1, 2, 3]));
    await admin.xadd(stream, '*', 'event', 'null');
    await admin.xadd(stream, '*', 'event', JSON.stringify({ ...checkDue(), type: 'integration.token.refreshed' }));
    await admin.xadd(stream, '*', 'other', 'field');
    await admin.xadd(stream, '*', 'event', '{"__proto__": {"polluted": 1}, "type": "x"}');
    const good = checkDue();
    await bus.publish(good);
    await waitFor('the good event after the junk', () => seen.includes(good.id), 40_000);
    await waitFor('9 dead letters', async () => (await deadLetters(p)).length === 9, 40_000);
    const records = await deadLetters(p);
    expect(records.every((r) => r.reason === 'unparsable' || r.reason === 'invalid')).toBe(true);
    // The 10 MB entry's record keeps only the start of it: escaped whole it would be 60 MB, and a
    // larger entry would make a record Redis refuses, claimed again and again.
    const big = records.find((r) => r.issues?.some((i) => i.message.includes(`${10 * 1024 * 1024} bytes`)));
    expect(big?.payload?.length).toBeLessThan(10_000);
    const sizes = (await admin.xrange(`${p}:dead-letter`, '-', '+')).map(([, fields]) => Buffer.byteLength(fields[1] as string));
    expect(Math.max(...sizes)).toBeLessThan(300 * 1024);
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
    expect(seen).toEqual([good.id]);
    await waitFor('nothing pending', async () => Number(((await admin.xpending(stream, 'g')) as [number])[0]) === 0);
    await bus.close();
  }, 60_000);
});

describe('Redis bus: close in every phase', () => {
  it('close while subscribe is pending, twice at once, with retries pending and a burst in flight: no hang, ERR_CLOSED after', async () => {
    const p = prefix('close');
    const c = client();
    const bus = createRedisBus({ client: c, prefix: p, blockMs: 200, retryBaseMs: 60_000, retryMaxMs: 60_000 });
    const attempts: number[] = [];
    await bus.subscribe({ group: 'fail', types: [CHECK_DUE], concurrency: 4, handler: async (_e, ctx) => { attempts.push(ctx.attempt); throw new Error('boom'); } });
    await Promise.all(Array.from({ length: 20 }, () => bus.publish(checkDue())));
    await waitFor('retry timers pending', () => attempts.length >= 4);
    const pendingSubscribe = bus.subscribe({ group: 'late', types: [CHECK_DUE, 'integration.token.refreshed'], handler: async () => {} });
    const burst = Array.from({ length: 50 }, () => bus.publish(checkDue()).then(() => 'ok', (e: { code?: string }) => e.code));
    const started = Date.now();
    await Promise.all([bus.close(), bus.close({ timeoutMs: 0 })]);
    expect(Date.now() - started).toBeLessThan(15_000);
    const late = await pendingSubscribe.then((s) => s.close().then(() => 'subscribed'), (e: { code?: string }) => e.code);
    expect(['subscribed', 'ERR_CLOSED']).toContain(late);
    for (const outcome of await Promise.all(burst)) expect(['ok', 'ERR_CLOSED']).toContain(outcome);
    await expect(bus.publish(checkDue())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(bus.subscribe({ group: 'x', types: [CHECK_DUE], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    // The failing entries stay pending for another member; no retry fired after close.
    const before = attempts.length;
    await delay(300);
    expect(attempts.length).toBe(before);
    expect(c.status).toBe('ready');
  });

  it('a child process that used the bus in every phase exits by itself after close()', async () => {
    const { code, out } = await runExitChild('redis', [prefix('exit')]);
    expect(out).toContain('closed');
    expect(out).not.toContain('UNHANDLED');
    expect(code).toBe(0);
  }, 40_000);
});

describe('Redis bus: connections killed under load', () => {
  it('loses nothing when its connections are killed mid-publish, mid-handler and mid-ack', async () => {
    const p = prefix('kill');
    const name = `brkkill${suffix()}`;
    const c = client(name);
    const store = createRedisIdempotencyStore({ client: admin, prefix: `${p}:handled` });
    const bus = createRedisBus({ client: c, prefix: p, idempotency: store, blockMs: 300, claimIdleMs: 1_000, claimIntervalMs: 200, retryBaseMs: 20, retryMaxMs: 200, maxAttempts: 50 });
    const handled = new Map<string, number>();
    await bus.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      concurrency: 8,
      handler: async (e) => {
        await delay(Math.random() * 5);
        handled.set(e.id, (handled.get(e.id) ?? 0) + 1);
      },
    });
    const ids: string[] = [];
    let killing = true;
    const killer = (async () => {
      let kills = 0;
      while (killing || kills < 4) {
        await delay(40 + Math.random() * 80);
        kills += await killConnections(name);
      }
      return kills;
    })();
    for (let i = 0; i < 300; i += 1) {
      const event = checkDue();
      // A killed publish may or may not have landed; publishing again is the contract (same id).
      for (let tries = 0; ; tries += 1) {
        try {
          await bus.publish(event);
          break;
        } catch (error) {
          if (tries > 20) throw error;
          await delay(20);
        }
      }
      ids.push(event.id);
    }
    killing = false;
    expect(await killer).toBeGreaterThan(3);
    const more = checkDue();
    await waitFor('publish after the last kill', () => bus.publish(more).then(() => true, () => false));
    ids.push(more.id);
    await waitFor('every event handled', () => ids.every((id) => handled.has(id)), 45_000);
    await bus.close();
    // At-least-once: a kill between the handler and its mark may repeat one, but rarely.
    const repeats = [...handled.values()].filter((n) => n > 1).length;
    expect(repeats).toBeLessThan(ids.length / 10);
  }, 60_000);
});

describe('Redis bus: two members, 2000 events, random failures', () => {
  it('ends every event handled exactly once or dead-lettered, none lost', async () => {
    const p = prefix('load');
    const handledKey = `${p}:record:handled`;
    const store = createRedisIdempotencyStore({ client: admin, prefix: `${p}:handled` });
    const members = [client(), client()].map((c) =>
      createRedisBus({ client: c, prefix: p, idempotency: store, blockMs: 300, claimIdleMs: 2_000, claimIntervalMs: 300, retryBaseMs: 10, retryMaxMs: 100, maxAttempts: 3 }),
    );
    const successes = new Map<string, number>();
    for (const bus of members) {
      await bus.subscribe({
        group: 'g',
        types: [CHECK_DUE],
        concurrency: 16,
        handler: async (e) => {
          await delay(Math.random() * 4);
          if (Math.random() < 0.1) throw new Error('random failure');
          successes.set(e.id, (successes.get(e.id) ?? 0) + 1);
          await admin.sadd(handledKey, e.id);
        },
      });
    }
    const ids: string[] = [];
    for (let i = 0; i < 2000; i += 100) {
      const batch = Array.from({ length: 100 }, () => checkDue());
      ids.push(...batch.map((e) => e.id));
      await Promise.all(batch.map((e, j) => members[j % 2]!.publish(e)));
    }
    const settled = async () => {
      const dead = new Set((await deadLetters(p)).map((r) => r.eventId));
      return ids.every((id) => successes.has(id) || dead.has(id)) ? dead : undefined;
    };
    const dead = await waitFor('every event handled or dead-lettered', settled, 50_000);
    await Promise.all(members.map((bus) => bus.close()));
    expectHandledOnceOrDeadLettered(ids, successes, dead);
    expect(await admin.scard(handledKey)).toBe(ids.length - dead.size);
  }, 60_000);
});

describe('Redis bus: secrets', () => {
  it('never echoes event data into logs or audit records of a dead-lettered event', async () => {
    const p = prefix('secret');
    const canary = `canary-${suffix()}`;
    const logger = recordingLogger();
    const audit = recordingAudit();
    const bus = createRedisBus({ client: admin, prefix: p, blockMs: 200, logger, audit, retryBaseMs: 5, retryMaxMs: 10, maxAttempts: 2 });
    await bus.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => { throw new Error('downstream refused'); } });
    const event = checkDueWithSecret(canary);
    await bus.publish(event);
    await waitFor('dead letter', async () => (await deadLetters(p)).some((r) => r.eventId === event.id));
    await bus.close();
    expect(JSON.stringify((await deadLetters(p))[0])).toContain(canary);
    expect(JSON.stringify(logger.lines)).not.toContain(canary);
    expect(JSON.stringify(audit.records)).not.toContain(canary);
    expect(audit.records.some((r) => r.kind === 'event.dead-lettered' && r.integrationId === 'int-1')).toBe(true);
  });

  it('does not put the password of the connection URL into its errors or logs', async () => {
    const logger = recordingLogger();
    const c = new Redis('redis://:hunter2-secret@127.0.0.1:1', { maxRetriesPerRequest: 1, retryStrategy: () => 50, lazyConnect: false });
    c.on('error', () => {});
    const bus = createRedisBus({ client: c, prefix: prefix('pw'), logger });
    const error = (await bus.publish(checkDue()).catch((e: unknown) => e)) as Error & { details?: unknown };
    expect(isIntegrationSyncError(error, 'ERR_PUBLISH_FAILED')).toBe(true);
    expect(`${error.message} ${JSON.stringify(error.details)} ${JSON.stringify(logger.lines)}`).not.toContain('hunter2');
    const lease = createRedisLease({ client: c });
    const leaseError = (await lease.tryAcquire('k', 1000).catch((e: unknown) => e)) as Error;
    expect(isIntegrationSyncError(leaseError, 'ERR_LEASE')).toBe(true);
    expect(leaseError.message).not.toContain('hunter2');
    await bus.close();
    c.disconnect();
  });
});

describe('Redis lease: edges', () => {
  it('an old holder cannot renew or release after expiry once a new holder took the key; tokens rise across expiry', async () => {
    const lease = createRedisLease({ client: admin, prefix: prefix('lease') });
    const tokens: number[] = [];
    let previous = await lease.tryAcquire('k', 100);
    expect(previous).not.toBeNull();
    tokens.push(previous!.token);
    for (let i = 0; i < 5; i += 1) {
      await delay(150);
      const next = await waitFor('key free after TTL', () => lease.tryAcquire('k', 5_000));
      tokens.push(next.token);
      expect(await lease.renew(previous!, 5_000)).toBeNull();
      await lease.release(previous!);
      // The old holder's release must not have freed the new holder's lease.
      expect(await lease.tryAcquire('k', 5_000)).toBeNull();
      expect(await lease.renew(next, 100)).not.toBeNull();
      previous = next;
    }
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('renew racing with expiry: exactly one of many concurrent acquirers wins, and a late renew loses', async () => {
    const lease = createRedisLease({ client: admin, prefix: prefix('race') });
    for (let round = 0; round < 10; round += 1) {
      const holder = await lease.tryAcquire(`k${round}`, 30);
      await delay(25 + Math.random() * 10);
      const [renewed, ...takers] = await Promise.all([lease.renew(holder!, 1_000), ...Array.from({ length: 10 }, () => lease.tryAcquire(`k${round}`, 1_000))]);
      const winners = takers.filter((t) => t !== null).length;
      expect(winners + (renewed === null ? 0 : 1)).toBeLessThanOrEqual(1);
      if (renewed === null) expect(winners).toBeLessThanOrEqual(1);
    }
  });
});

describe('Redis lease: a private Redis restart', () => {
  const processes = new Set<ChildProcess>();
  afterAll(() => {
    for (const p of processes) p.kill('SIGKILL');
  });
  async function start(port: number): Promise<ChildProcess> {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    processes.add(child);
    child.once('exit', () => processes.delete(child));
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    await waitFor('private redis', async () => {
      try {
        if (probe.status !== 'ready') await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        probe.disconnect();
        return false;
      }
    });
    probe.disconnect();
    return child;
  }
  const stop = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });

  it('close() returns while Redis is down, even on a client that queues commands until it reconnects', async () => {
    const port = await freePort();
    const server = await start(port);
    // maxRetriesPerRequest: null is what BullMQ-style hosts use: commands wait for the reconnect.
    const c = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 100, maxRetriesPerRequest: null });
    c.on('error', () => {});
    try {
      const bus = createRedisBus({ client: c, prefix: 'down', blockMs: 300 });
      const seen: string[] = [];
      await bus.subscribe({ group: 'g', types: [CHECK_DUE, 'integration.token.refreshed'], handler: async (e) => void seen.push(e.id) });
      const event = checkDue();
      await bus.publish(event);
      await waitFor('delivery', () => seen.includes(event.id));
      await stop(server);
      const closed = await Promise.race([bus.close().then(() => 'closed'), delay(12_000).then(() => 'hung')]);
      expect(closed).toBe('closed');
    } finally {
      c.disconnect();
    }
  });

  it('rides out CLIENT PAUSE longer than its blocking read: nothing lost, nothing unhandled', async () => {
    const port = await freePort();
    const server = await start(port);
    const c = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 100, maxRetriesPerRequest: null });
    c.on('error', () => {});
    const control = new Redis({ port, host: '127.0.0.1' });
    try {
      const bus = createRedisBus({ client: c, prefix: 'pause', blockMs: 200, claimIdleMs: 1_000, claimIntervalMs: 200 });
      const seen = new Set<string>();
      await bus.subscribe({ group: 'g', types: [CHECK_DUE], concurrency: 4, handler: async (e) => void seen.add(e.id) });
      const before = checkDue();
      await bus.publish(before);
      await waitFor('before the pause', () => seen.has(before.id));
      await control.client('PAUSE', 3_000, 'ALL');
      // Published during the pause: the write waits for it to end, then lands.
      const during = Array.from({ length: 20 }, () => checkDue());
      const publishing = Promise.all(during.map((e) => bus.publish(e)));
      await publishing;
      await waitFor('events published during the pause', () => during.every((e) => seen.has(e.id)), 20_000);
      await bus.close();
    } finally {
      control.disconnect();
      c.disconnect();
      await stop(server);
    }
  }, 40_000);

  it('keeps fencing tokens rising when a restart lost the counter', async () => {
    const port = await freePort();
    let server = await start(port);
    const c = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 100 });
    c.on('error', () => {});
    try {
      const lease = createRedisLease({ client: c });
      const before = await lease.tryAcquire('slot', 60_000);
      expect(before).not.toBeNull();
      await stop(server);
      server = await start(port);
      const after = await waitFor('lease after the restart', () => lease.tryAcquire('slot', 60_000).catch(() => null));
      // The old holder may still be writing with its token: the storage must be able to refuse it.
      expect(after.token).toBeGreaterThan(before!.token);
    } finally {
      c.disconnect();
      await stop(server);
    }
  });
});

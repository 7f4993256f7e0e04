/**
 * Redis-specific behaviour of the Streams bus, against the real Redis on 127.0.0.1:6379:
 * claiming a dead member's entries, consumer cleanup, trimmed pending entries, the separate
 * blocking connection, connection resets and half-open reads, lost groups, and the shared
 * idempotency store.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { CloudEvent } from '../../src/events/envelope.js';
import type { EventBus } from '../../src/bus/types.js';
import { createRedisBus, createRedisIdempotencyStore, redisStreamKey, type RedisBlockingClientLike, type RedisBusOptions } from '../../src/redis/index.js';
import {
  CHECK_DUE,
  REFRESHED,
  checkDue,
  closeClients,
  consumers,
  deleteKeys,
  newClient,
  pendingCount,
  recordingLogger,
  refreshed,
  uniquePrefix,
  waitFor,
} from './helpers.js';

const clients = new Set<Redis>();
const buses = new Set<EventBus>();
const prefixes = new Set<string>();

function client(options: { connectionName?: string } = {}): Redis {
  const c = newClient(options);
  clients.add(c);
  return c;
}

function prefix(label: string): string {
  const p = uniquePrefix(label);
  prefixes.add(p);
  return p;
}

function bus(options: Partial<RedisBusOptions> & { prefix: string }): ReturnType<typeof createRedisBus> {
  const b = createRedisBus({ client: options.client ?? client(), claimIdleMs: 500, claimIntervalMs: 100, blockMs: 1000, retryBaseMs: 20, ...options });
  buses.add(b);
  return b;
}

afterEach(async () => {
  await Promise.all([...buses].map((b) => b.close({ timeoutMs: 1000 })));
  buses.clear();
  const admin = newClient();
  for (const p of prefixes) await deleteKeys(admin, p);
  prefixes.clear();
  await closeClients([...clients, admin]);
  clients.clear();
});

describe('Redis Streams bus: layout and basics', () => {
  it('publishes to one stream per type and delivers to the group, acking after the handler', async () => {
    const p = prefix('basic');
    const redis = client();
    const b = bus({ prefix: p, client: redis });
    const seen: CloudEvent[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE, REFRESHED], handler: async (event) => void seen.push(event) });
    const one = checkDue();
    const two = refreshed();
    await b.publish(one);
    await b.publish(two);
    await waitFor('both events', () => seen.length === 2);
    expect(seen.map((e) => e.id).sort()).toEqual([one.id, two.id].sort());
    expect(b.streamKey(CHECK_DUE)).toBe(redisStreamKey(p, CHECK_DUE));
    expect(await redis.xlen(`${p}:stream:${CHECK_DUE}`)).toBe(1);
    expect(await redis.xlen(`${p}:stream:${REFRESHED}`)).toBe(1);
    await waitFor('acks', async () => (await pendingCount(redis, b.streamKey(CHECK_DUE), 'g')) === 0 && (await pendingCount(redis, b.streamKey(REFRESHED), 'g')) === 0);
  });

  it('rejects publish with ERR_PUBLISH_FAILED when Redis refuses it, and ERR_CLOSED after close', async () => {
    const p = prefix('pubfail');
    const redis = client();
    const b = bus({ prefix: p, client: redis });
    // A key of the wrong type makes XADD fail on the server.
    await redis.set(`${p}:stream:${CHECK_DUE}`, 'not a stream');
    await expect(b.publish(checkDue())).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
    await b.close();
    await expect(b.publish(refreshed())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('writes dead letters to <prefix>:dead-letter and acks the original', async () => {
    const p = prefix('dlq');
    const redis = client();
    const b = bus({ prefix: p, client: redis, maxAttempts: 2 });
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => Promise.reject(new Error('always fails')) });
    await redis.xadd(b.streamKey(CHECK_DUE), '*', 'event', '{not json');
    await b.publish(checkDue('evt-failing'));
    const records = await waitFor('two dead letters', async () => {
      const entries = await redis.xrange(b.deadLetterStream, '-', '+');
      return entries.length === 2 ? entries.map(([, fields]) => JSON.parse(fields[1] as string) as { reason: string; eventId?: string; attempts: number }) : undefined;
    });
    expect(records.map((r) => r.reason).sort()).toEqual(['max_attempts', 'unparsable']);
    expect(records.find((r) => r.reason === 'max_attempts')).toMatchObject({ eventId: 'evt-failing', attempts: 2 });
    await waitFor('acked', async () => (await pendingCount(redis, b.streamKey(CHECK_DUE), 'g')) === 0);
  });

  it('counts a local retry as a delivery in Redis (XCLAIM bumps the delivery count)', async () => {
    const p = prefix('retry');
    const redis = client();
    const b = bus({ prefix: p, client: redis });
    const attempts: number[] = [];
    await b.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async (_event, context) => {
        attempts.push(context.attempt);
        if (context.attempt < 3) throw new Error('not yet');
      },
    });
    await b.publish(checkDue());
    await waitFor('third attempt', () => attempts.length === 3);
    expect(attempts).toEqual([1, 2, 3]);
    await waitFor('acked', async () => (await pendingCount(redis, b.streamKey(CHECK_DUE), 'g')) === 0);
  });
});

describe('Redis Streams bus: dead members and trimming', () => {
  it("claims a dead consumer's pending entry (XAUTOCLAIM) and hands it to a live one with attempt 2", async () => {
    const p = prefix('claim');
    const redis = client();
    const publisher = bus({ prefix: p, client: redis });
    const stream = publisher.streamKey(CHECK_DUE);
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    const event = checkDue();
    await publisher.publish(event);
    // A member that read the entry and died before acking it.
    await redis.xreadgroup('GROUP', 'g', 'dead-member', 'COUNT', 1, 'STREAMS', stream, '>');
    expect(await pendingCount(redis, stream, 'g')).toBe(1);

    const live = bus({ prefix: p, claimIdleMs: 300 });
    const got: Array<{ id: string; attempt: number }> = [];
    await live.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e, context) => void got.push({ id: e.id, attempt: context.attempt }) });
    await waitFor('claimed delivery', () => got.length === 1);
    expect(got[0]).toEqual({ id: event.id, attempt: 2 });
    await waitFor('acked', async () => (await pendingCount(redis, stream, 'g')) === 0);
  });

  it('never removes a consumer that still has pending entries, but removes idle empty ones', async () => {
    const p = prefix('cleanup');
    const redis = client();
    const publisher = bus({ prefix: p, client: redis });
    const stream = publisher.streamKey(CHECK_DUE);
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    await publisher.publish(checkDue());
    await redis.xreadgroup('GROUP', 'g', 'dead-with-pending', 'COUNT', 1, 'STREAMS', stream, '>');
    await redis.xgroup('CREATECONSUMER', stream, 'g', 'dead-empty');
    await new Promise((resolve) => setTimeout(resolve, 50));

    // claimIdleMs is long, so the pending entry is not claimed while cleanup runs every tick.
    const live = bus({ prefix: p, claimIdleMs: 60_000, consumerCleanupIdleMs: 10 });
    await live.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => {} });
    await waitFor('empty consumer removed', async () => !(await consumers(redis, stream, 'g')).some((c) => c.name === 'dead-empty'));
    // Several more cleanup rounds pass; the consumer holding an entry must survive all of them.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const left = await consumers(redis, stream, 'g');
    expect(left).toContainEqual({ name: 'dead-with-pending', pending: 1 });
  });

  it('clears an entry trimmed away while pending without crashing the loop, and keeps consuming', async () => {
    const p = prefix('trim');
    const redis = client();
    const logger = recordingLogger();
    const publisher = bus({ prefix: p, client: redis });
    const stream = publisher.streamKey(CHECK_DUE);
    await redis.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
    await publisher.publish(checkDue());
    await redis.xreadgroup('GROUP', 'g', 'crashed', 'COUNT', 1, 'STREAMS', stream, '>');
    await redis.xtrim(stream, 'MAXLEN', 0);
    expect(await pendingCount(redis, stream, 'g')).toBe(1);

    const live = bus({ prefix: p, claimIdleMs: 200, logger });
    const seen: string[] = [];
    await live.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    await waitFor('trimmed entry cleared', async () => (await pendingCount(redis, stream, 'g')) === 0);
    expect(logger.lines.some((l) => l.level === 'error' && /trimmed/.test(l.msg ?? ''))).toBe(true);
    expect(seen).toEqual([]);
    const after = checkDue();
    await publisher.publish(after);
    await waitFor('later event handled', () => seen.includes(after.id));
  });

  it('leaves an unfinished entry pending on close (past the deadline) and another member claims it', async () => {
    const p = prefix('close');
    const redis = client();
    const first = bus({ prefix: p, client: redis, claimIdleMs: 300 });
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      release = resolve;
    });
    await first.subscribe({ group: 'g', types: [CHECK_DUE], handler: () => (release(), new Promise<void>(() => {})) });
    const event = checkDue();
    await first.publish(event);
    await started;
    await first.close({ timeoutMs: 50 });
    const stream = first.streamKey(CHECK_DUE);
    expect(await pendingCount(redis, stream, 'g')).toBe(1);

    const second = bus({ prefix: p, claimIdleMs: 300 });
    const got: number[] = [];
    await second.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (_e, context) => void got.push(context.attempt) });
    await waitFor('redelivered to the second member', () => got.length === 1);
    expect(got[0]).toBeGreaterThanOrEqual(2);
    await waitFor('acked', async () => (await pendingCount(redis, stream, 'g')) === 0);
  });

  it('recreates its group when the stream is deleted (NOGROUP) and delivers what is published after', async () => {
    const p = prefix('nogroup');
    const redis = client();
    const b = bus({ prefix: p, client: redis, blockMs: 200 });
    const seen: string[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    await redis.del(b.streamKey(CHECK_DUE));
    const event = checkDue();
    await b.publish(event);
    await waitFor('event after the stream was deleted', () => seen.includes(event.id), 20_000);
  });
});

describe('Redis Streams bus: long handlers, concurrency, options', () => {
  it('keeps a handler that outlives claimIdleMs to itself (keep-alive), so no other member takes it', async () => {
    const p = prefix('keepalive');
    const redis = client();
    const a = bus({ prefix: p, client: redis, claimIdleMs: 300, claimIntervalMs: 50 });
    const b = bus({ prefix: p, claimIdleMs: 300, claimIntervalMs: 50 });
    const seen: Array<{ member: string; attempt: number }> = [];
    let startedOnA = false;
    await a.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async (_e, context) => {
        seen.push({ member: 'a', attempt: context.attempt });
        startedOnA = true;
        await new Promise((resolve) => setTimeout(resolve, 1_500));
      },
    });
    await a.publish(checkDue());
    await waitFor('A started', () => startedOnA);
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (_e, context) => void seen.push({ member: 'b', attempt: context.attempt }) });
    await waitFor('acked by A', async () => (await pendingCount(redis, a.streamKey(CHECK_DUE), 'g')) === 0, 10_000);
    expect(seen).toEqual([{ member: 'a', attempt: 1 }]);
  });

  it('runs up to `concurrency` handlers at once in one member', async () => {
    const p = prefix('concurrency');
    const b = bus({ prefix: p });
    let running = 0;
    let peak = 0;
    let done = 0;
    await b.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      concurrency: 3,
      handler: async () => {
        running += 1;
        peak = Math.max(peak, running);
        await waitFor('three at once', () => peak >= 3, 5_000).catch(() => {});
        running -= 1;
        done += 1;
      },
    });
    for (let i = 0; i < 6; i += 1) await b.publish(checkDue());
    await waitFor('all handled', () => done === 6);
    expect(peak).toBe(3);
  });

  it('rejects bad options with ERR_INVALID_OPTION and an aborted publish with the signal reason', async () => {
    const redis = client();
    expect(() => createRedisBus({ client: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createRedisBus({ client: redis, claimIdleMs: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createRedisBus({ client: redis, startId: 'x' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    const b = bus({ prefix: prefix('abort'), client: redis });
    const reason = new Error('caller gave up');
    await expect(b.publish(checkDue(), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(b.publish({ type: CHECK_DUE } as never)).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
  });
});

describe('Redis Streams bus: connections', () => {
  it('publishes while a subscriber is blocked in XREADGROUP (the read has its own connection)', async () => {
    const p = prefix('block');
    const redis = client();
    // A read that blocks for minutes: had it shared the client, publish would queue behind it.
    const b = bus({ prefix: p, client: redis, blockMs: 600_000 });
    await b.subscribe({ group: 'g', types: [REFRESHED], handler: async () => {} });
    await waitFor('reader blocked', async () => ((await redis.client('LIST')) as string).includes('cmd=xreadgroup'));
    await b.publish(checkDue());
    expect(await redis.xlen(b.streamKey(CHECK_DUE))).toBe(1);
  });

  it('keeps consuming after the blocking connection is killed (CLIENT KILL) while blocked', async () => {
    const p = prefix('kill');
    const redis = client();
    const name = `blk-${p.replace(/[^a-z0-9]/gi, '')}`;
    const b = bus({ prefix: p, client: redis, blockMs: 30_000, createBlockingClient: () => client({ connectionName: name }) });
    const seen: string[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    const blockedId = async (): Promise<string | undefined> => {
      const list = (await redis.client('LIST')) as string;
      const line = list.split('\n').find((l) => l.includes(`name=${name} `) && l.includes('cmd=xreadgroup'));
      return line?.match(/\bid=(\d+)/)?.[1];
    };
    const id = await waitFor('blocked reader', blockedId);
    await redis.client('KILL', 'ID', id);
    const first = checkDue();
    await b.publish(first);
    await waitFor('event after the kill', () => seen.includes(first.id), 20_000);
    // And it is blocked again on a live connection, not spinning.
    const again = await waitFor('blocked reader again', blockedId);
    await redis.client('KILL', 'ID', again);
    const second = checkDue();
    await b.publish(second);
    await waitFor('event after the second kill', () => seen.includes(second.id), 20_000);
  });

  it('replaces a blocking connection whose read never answers (half-open socket)', async () => {
    const p = prefix('halfopen');
    let made = 0;
    let silentDisconnected = false;
    const silent: RedisBlockingClientLike = {
      xreadgroup: () => new Promise<never>(() => {}),
      disconnect: () => {
        silentDisconnected = true;
      },
      on: () => silent,
    };
    const b = bus({
      prefix: p,
      blockMs: 100,
      createBlockingClient: () => (made++ === 0 ? silent : client()),
    });
    const seen: string[] = [];
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void seen.push(e.id) });
    const event = checkDue();
    await b.publish(event);
    await waitFor('event through a fresh connection', () => seen.includes(event.id), 20_000);
    expect(silentDisconnected).toBe(true);
    expect(made).toBeGreaterThanOrEqual(2);
  });

  it('disconnects its blocking connections on close, leaves the host client open, and is idempotent', async () => {
    const p = prefix('closeconn');
    const redis = client();
    const name = `blk-${p.replace(/[^a-z0-9]/gi, '')}`;
    const b = bus({ prefix: p, client: redis, createBlockingClient: () => client({ connectionName: name }) });
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => {} });
    await waitFor('blocked reader', async () => ((await redis.client('LIST')) as string).includes(`name=${name} `));
    await Promise.all([b.close(), b.close()]);
    await waitFor('blocking connection gone', async () => !((await redis.client('LIST')) as string).includes(`name=${name} `));
    expect(await redis.ping()).toBe('PONG');
    // Its consumer had nothing pending, so it left the group.
    expect(await consumers(redis, b.streamKey(CHECK_DUE), 'g')).toEqual([]);
  });
});

describe('Redis idempotency store across buses', () => {
  it('does not handle twice an event whose member died after the handler but before the ack', async () => {
    const p = prefix('ackloss');
    const admin = client();
    const store = createRedisIdempotencyStore({ client: admin, prefix: `${p}:handled` });
    const clientA = client();
    const a = bus({ prefix: p, client: clientA, idempotency: store, claimIdleMs: 300 });
    const audits: Array<{ outcome: string; eventId?: string }> = [];
    let handled = 0;
    await a.subscribe({
      group: 'g',
      types: [CHECK_DUE],
      handler: async () => {
        handled += 1;
        // The work is done; the process loses Redis before it can ack.
        clientA.disconnect();
      },
    });
    const event = checkDue();
    await admin.xadd(a.streamKey(CHECK_DUE), '*', 'event', JSON.stringify(event));
    await waitFor('handled on A', () => handled === 1);
    const b = bus({ prefix: p, idempotency: store, claimIdleMs: 300, audit: { record: (r) => void audits.push(r) } });
    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async () => void (handled += 1) });
    await waitFor('claimed by B and skipped as a duplicate', () => audits.some((r) => r.eventId === event.id && r.outcome === 'duplicate') || handled > 1);
    await waitFor('acked', async () => (await pendingCount(admin, a.streamKey(CHECK_DUE), 'g')) === 0);
    expect(handled).toBe(1);
  });

  it('skips on one replica an event id another replica already handled', async () => {
    const p = prefix('idem');
    const redis = client();
    const store = createRedisIdempotencyStore({ client: redis, prefix: `${p}:handled` });
    const a = bus({ prefix: p, idempotency: store });
    const b = bus({ prefix: p, idempotency: store });
    const handledByA: string[] = [];
    const handledByB: string[] = [];
    const subA = await a.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void handledByA.push(e.id) });
    await a.publish(checkDue('same-id'));
    await waitFor('handled by A', () => handledByA.length === 1);
    await waitFor('acked', async () => (await pendingCount(redis, a.streamKey(CHECK_DUE), 'g')) === 0);
    await subA.close();

    await b.subscribe({ group: 'g', types: [CHECK_DUE], handler: async (e) => void handledByB.push(e.id) });
    await b.publish(checkDue('same-id'));
    const marker = checkDue();
    await b.publish(marker);
    await waitFor('B handled the later event', () => handledByB.includes(marker.id));
    await waitFor('duplicate acked', async () => (await pendingCount(redis, a.streamKey(CHECK_DUE), 'g')) === 0);
    expect(handledByB).toEqual([marker.id]);
    expect(await redis.exists(`${p}:handled:1:g:same-id`)).toBe(1);
  });
});

import { backoffDelay, sleep } from '../core/abort.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { encodeDeadLetter, type DeliveryOutcome, type DeliveryPipeline } from '../bus/delivery.js';
import type { CloseOptions, Subscription } from '../bus/types.js';
import type { RedisBlockingClientLike, RedisClientLike } from './redis-client.js';
import {
  isBusyGroupError,
  isNoGroupError,
  readAutoClaimReply,
  readConsumers,
  readDeliveryCount,
  readGroupReply,
  type StreamEntry,
} from './redis-replies.js';

/** Field of a stream entry that carries the event's JSON. */
export const EVENT_FIELD = 'event';

/** Deletes a consumer only when it has no pending entry, atomically (a consumer's PEL dies with it). */
const DELETE_IDLE_CONSUMER = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])`;

/** Settings a subscription takes from its bus. */
export interface RedisSubscriptionSettings {
  client: RedisClientLike;
  createBlockingClient: () => RedisBlockingClientLike;
  pipeline: DeliveryPipeline;
  /** Stream key per subscribed type, in the order of `pipeline.types`. */
  streams: readonly string[];
  deadLetterStream: string;
  deadLetterMaxLen: number;
  consumer: string;
  concurrency: number;
  blockMs: number;
  claimIdleMs: number;
  claimIntervalMs: number;
  consumerCleanupIdleMs: number | undefined;
  startId: string;
  closeTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  onClosed: (subscription: RedisSubscription) => void;
}

/** An entry this consumer holds: running, queued for a slot, or waiting for its retry. */
interface HeldEntry {
  stream: string;
  id: string;
  body: string;
  attempt: number;
  retryTimer: TimerHandle | undefined;
  /** When `progress()` last reset its idle time; calls closer together than claimIdleMs / 10 are skipped. */
  progressAt: number;
}

/** Grace beyond `BLOCK` before a silent blocking read is taken for a dead socket: `BLOCK` itself, within 1-10 s. */
function watchdogGraceMs(blockMs: number): number {
  return Math.max(1_000, Math.min(blockMs, 10_000));
}
const MAX_LOOP_BACKOFF_MS = 5_000;

/**
 * One subscription of the Redis bus: one consumer (unique name) in the group on every subscribed
 * type's stream. A read loop on its own connection takes new entries; a claim loop takes entries
 * idle longer than `claimIdleMs` from dead members (and from itself, when a reply was lost); a
 * keep-alive re-claims the entries it still works on, so a long handler is not taken elsewhere.
 *
 * @internal Created by `createRedisBus`.
 */
export class RedisSubscription implements Subscription {
  readonly group: string;
  readonly types: readonly string[];
  private readonly s: RedisSubscriptionSettings;
  private readonly held = new Map<string, HeldEntry>();
  private readonly queue: HeldEntry[] = [];
  private running = 0;
  private stopping = false;
  /** Set when close() gave up waiting: outcomes that arrive later are ignored, their entries stay pending. */
  private abandoned = false;
  private blocking: RedisBlockingClientLike | undefined;
  private readonly stopController = new AbortController();
  private readonly handlerController = new AbortController();
  private slotWaiter: (() => void) | undefined;
  private drainWaiter: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private claimTimer: TimerHandle | undefined;
  private keepAliveTimer: TimerHandle | undefined;
  private readonly claimCursors = new Map<string, string>();
  private lastCleanupAt = 0;
  private closePromise: Promise<void> | undefined;

  constructor(settings: RedisSubscriptionSettings) {
    this.s = settings;
    this.group = settings.pipeline.group;
    this.types = settings.pipeline.types;
  }

  /** Creates the group on each stream (a missing one is made), then starts the loops. */
  async start(): Promise<void> {
    await this.ensureGroups(this.s.startId);
    this.loopDone = this.readLoop();
    this.scheduleClaim();
    this.scheduleKeepAlive();
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closePromise ??= this.shutdown(options);
    return this.closePromise;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async shutdown(options: CloseOptions): Promise<void> {
    this.stopping = true;
    this.stopController.abort();
    this.s.clock.clearTimeout(this.claimTimer);
    this.claimTimer = undefined;
    // Queued and retry-waiting entries stay pending in Redis; another member claims them after claimIdleMs.
    for (const entry of this.queue.splice(0)) this.held.delete(key(entry.stream, entry.id));
    for (const [k, entry] of this.held) {
      if (entry.retryTimer !== undefined) {
        this.s.clock.clearTimeout(entry.retryTimer);
        this.held.delete(k);
      }
    }
    this.wakeReader();
    this.blocking?.disconnect();
    this.blocking = undefined;
    // The loop may sit in a command queued on a client that is reconnecting (Redis down): bounded.
    await settleWithin(this.loopDone, CLEANUP_TIMEOUT_MS);

    const drained = await this.waitForHandlers(options);
    if (!drained) {
      this.abandoned = true;
      this.handlerController.abort(new IntegrationSyncError('ERR_CLOSED', `subscription ${this.group} closed before its handler finished; the event will be redelivered`));
      this.s.logger.warn({ group: this.group, inFlight: this.running }, 'close deadline passed; unfinished events left pending for another member');
    }
    this.s.clock.clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (drained) await this.deleteOwnConsumer();
    this.s.onClosed(this);
  }

  /** Resolves true once no handler runs, false at the deadline or when `signal` aborts. */
  private waitForHandlers(options: CloseOptions): Promise<boolean> {
    if (this.running === 0) return Promise.resolve(true);
    const timeoutMs = options.timeoutMs ?? this.s.closeTimeoutMs;
    return new Promise<boolean>((resolve) => {
      const finish = (drained: boolean): void => {
        this.s.clock.clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.drainWaiter = undefined;
        resolve(drained);
      };
      const onAbort = (): void => finish(false);
      const timer = this.s.clock.setTimeout(() => finish(false), timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) finish(false);
      this.drainWaiter = () => finish(true);
    });
  }

  private async deleteOwnConsumer(): Promise<void> {
    for (const stream of this.s.streams) {
      try {
        // Best effort (cleanup removes idle consumers anyway): with Redis down, a client that queues
        // commands until it reconnects would otherwise hold close() for as long as the outage lasts.
        const removed = await settleWithin(this.s.client.eval(DELETE_IDLE_CONSUMER, 1, stream, this.group, this.s.consumer), CLEANUP_TIMEOUT_MS);
        if (removed === TIMED_OUT) {
          this.s.logger.debug({ group: this.group, stream }, 'Redis did not answer; leaving this consumer for the idle cleanup');
          return;
        }
      } catch (error) {
        this.s.logger.debug({ group: this.group, stream, err: summarizeError(error) }, 'could not remove this consumer from the group');
      }
    }
  }

  private async ensureGroups(startId: string): Promise<void> {
    for (const stream of this.s.streams) {
      try {
        await this.s.client.xgroup('CREATE', stream, this.group, startId, 'MKSTREAM');
      } catch (error) {
        if (!isBusyGroupError(error)) throw error;
      }
    }
  }

  /** Recreates groups after `NOGROUP` (stream deleted); from `0`, so entries added since are not skipped. */
  private async recoverGroups(): Promise<void> {
    this.s.logger.warn({ group: this.group, streams: this.s.streams }, 'stream or consumer group missing; recreating it');
    await this.ensureGroups('0');
  }

  // ---- reading new entries ------------------------------------------------------------------

  private load(): number {
    return this.running + this.queue.length;
  }

  private async readLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const free = this.s.concurrency - this.load();
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          this.slotWaiter = resolve;
        });
        continue;
      }
      try {
        const reply = await this.readOnce(free);
        failures = 0;
        for (const { stream, entries } of readGroupReply(reply)) {
          for (const entry of entries) void this.accept(stream, entry, 1);
        }
      } catch (error) {
        if (this.stopping) break;
        failures += 1;
        try {
          if (isNoGroupError(error)) await this.recoverGroups();
          else this.s.logger.warn({ group: this.group, failures, err: summarizeError(error) }, 'stream read failed; retrying');
        } catch (recoverError) {
          this.s.logger.warn({ group: this.group, err: summarizeError(recoverError) }, 'recreating the consumer group failed; retrying');
        }
        await sleep(backoffDelay(failures, 100, MAX_LOOP_BACKOFF_MS) + 50, this.stopController.signal, this.s.clock).catch(() => {});
      }
    }
  }

  private blockingClient(): RedisBlockingClientLike {
    if (this.blocking === undefined) {
      const connection = this.s.createBlockingClient();
      connection.on('error', (error) => {
        this.s.logger.debug({ group: this.group, err: summarizeError(error) }, 'blocking connection error');
      });
      this.blocking = connection;
    }
    return this.blocking;
  }

  /**
   * One blocking read. A read that outlives `BLOCK` by a wide margin means a half-open socket
   * (no reset ever arrives), so the connection is dropped and the next read opens a fresh one.
   */
  private readOnce(count: number): Promise<unknown> {
    const connection = this.blockingClient();
    const ids = this.s.streams.map(() => '>');
    const read = connection.xreadgroup('GROUP', this.group, this.s.consumer, 'COUNT', count, 'BLOCK', this.s.blockMs, 'STREAMS', ...this.s.streams, ...ids);
    return new Promise<unknown>((resolve, reject) => {
      const watchdog = this.s.clock.setTimeout(() => {
        if (this.blocking === connection) this.blocking = undefined;
        connection.disconnect();
        reject(new IntegrationSyncError('ERR_CLOSED', `blocking read of group ${this.group} got no answer; reconnecting`));
      }, this.s.blockMs + watchdogGraceMs(this.s.blockMs));
      read.then(
        (reply) => {
          this.s.clock.clearTimeout(watchdog);
          resolve(reply);
        },
        (error: unknown) => {
          this.s.clock.clearTimeout(watchdog);
          reject(error);
        },
      );
    });
  }

  private wakeReader(): void {
    const waiter = this.slotWaiter;
    this.slotWaiter = undefined;
    waiter?.();
  }

  // ---- running entries ------------------------------------------------------------------------

  private async accept(stream: string, entry: StreamEntry, attempt: number): Promise<void> {
    const k = key(stream, entry.id);
    if (this.held.has(k)) return;
    if (entry.fields === null) {
      await this.dropDeleted(stream, [entry.id]);
      return;
    }
    const held: HeldEntry = { stream, id: entry.id, body: entry.fields[EVENT_FIELD] ?? '', attempt, retryTimer: undefined, progressAt: 0 };
    this.held.set(k, held);
    this.enqueue(held);
  }

  private enqueue(entry: HeldEntry): void {
    if (this.stopping) {
      this.held.delete(key(entry.stream, entry.id));
      return;
    }
    if (this.running < this.s.concurrency) void this.run(entry);
    else this.queue.push(entry);
  }

  private async run(entry: HeldEntry): Promise<void> {
    this.running += 1;
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.s.pipeline.process({
        body: entry.body,
        attempt: entry.attempt,
        signal: this.handlerController.signal,
        progress: () => this.progress(entry),
      });
    } catch (error) {
      // process() never throws; should it ever, keep the entry pending rather than lose it.
      outcome = { action: 'retry', delayMs: this.s.pipeline.retryDelay(entry.attempt), error: summarizeError(error) };
    }
    if (this.abandoned) this.held.delete(key(entry.stream, entry.id));
    else await this.settle(entry, outcome);
    this.running -= 1;
    const next = this.stopping ? undefined : this.queue.shift();
    if (next !== undefined) void this.run(next);
    this.wakeReader();
    if (this.running === 0) this.drainWaiter?.();
  }

  private progress(entry: HeldEntry): void {
    const now = this.s.clock.now();
    if (now - entry.progressAt < this.s.claimIdleMs / 10) return;
    entry.progressAt = now;
    void this.keepAlive([entry]);
  }

  private async settle(entry: HeldEntry, outcome: DeliveryOutcome): Promise<void> {
    const k = key(entry.stream, entry.id);
    if (outcome.action === 'retry') {
      if (this.stopping) {
        this.held.delete(k);
        return;
      }
      entry.retryTimer = this.s.clock.setTimeout(() => void this.retry(entry), outcome.delayMs);
      return;
    }
    this.held.delete(k);
    try {
      if (outcome.action === 'dead-letter') {
        await this.s.client.xadd(this.s.deadLetterStream, 'MAXLEN', '~', this.s.deadLetterMaxLen, '*', 'record', encodeDeadLetter(outcome.record));
      }
      await this.s.client.xack(entry.stream, this.group, entry.id);
    } catch (error) {
      // Left pending: a claim redelivers it, and the idempotency store skips it if it was handled.
      this.s.logger.warn({ group: this.group, stream: entry.stream, entryId: entry.id, action: outcome.action, err: summarizeError(error) }, 'could not settle entry; it stays pending');
    }
  }

  /** Takes the entry again after its backoff; XCLAIM counts the delivery in Redis, as a claim elsewhere would. */
  private async retry(entry: HeldEntry): Promise<void> {
    entry.retryTimer = undefined;
    if (this.stopping) return;
    try {
      const claimed = await this.s.client.xclaim(entry.stream, this.group, this.s.consumer, 0, entry.id);
      if (!Array.isArray(claimed) || claimed.length === 0) {
        // Acked by someone else, or trimmed away while it waited.
        this.held.delete(key(entry.stream, entry.id));
        this.s.logger.warn({ group: this.group, stream: entry.stream, entryId: entry.id }, 'entry left the pending list while waiting for its retry');
        return;
      }
    } catch (error) {
      this.s.logger.warn({ group: this.group, entryId: entry.id, err: summarizeError(error) }, 'could not re-claim entry for its retry; retrying locally');
    }
    if (this.stopping) {
      this.held.delete(key(entry.stream, entry.id));
      return;
    }
    entry.attempt += 1;
    this.enqueue(entry);
  }

  // ---- keeping and claiming -------------------------------------------------------------------

  private scheduleKeepAlive(): void {
    const every = Math.max(30, Math.floor(this.s.claimIdleMs / 3));
    this.keepAliveTimer = this.s.clock.setTimeout(() => {
      void this.keepAlive([...this.held.values()]).finally(() => {
        // keepAlive() catches its own errors, so this chain never rejects.
        if (this.keepAliveTimer !== undefined) this.scheduleKeepAlive();
      });
    }, every);
  }

  /** Resets the idle time of held entries (JUSTID: the delivery count stays), so no claim takes them. */
  private async keepAlive(entries: HeldEntry[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const entry of entries) byStream.set(entry.stream, [...(byStream.get(entry.stream) ?? []), entry.id]);
    for (const [stream, ids] of byStream) {
      try {
        await this.s.client.xclaim(stream, this.group, this.s.consumer, 0, ...ids, 'JUSTID');
      } catch (error) {
        this.s.logger.warn({ group: this.group, stream, err: summarizeError(error) }, 'could not extend held entries');
      }
    }
  }

  private scheduleClaim(): void {
    this.claimTimer = this.s.clock.setTimeout(() => {
      void this.claimOnce()
        .catch((error: unknown) => this.s.logger.warn({ group: this.group, err: summarizeError(error) }, 'claim round failed'))
        .finally(() => {
          if (!this.stopping) this.scheduleClaim();
        });
    }, this.s.claimIntervalMs);
  }

  private async claimOnce(): Promise<void> {
    for (const stream of this.s.streams) {
      const free = this.s.concurrency - this.load();
      if (this.stopping || free <= 0) break;
      try {
        const cursor = this.claimCursors.get(stream) ?? '0-0';
        const reply = readAutoClaimReply(await this.s.client.xautoclaim(stream, this.group, this.s.consumer, this.s.claimIdleMs, cursor, 'COUNT', free));
        this.claimCursors.set(stream, reply.cursor);
        if (reply.deletedIds.length > 0) await this.dropDeleted(stream, reply.deletedIds);
        for (const entry of reply.entries) {
          if (this.held.has(key(stream, entry.id))) continue;
          const attempt = entry.fields === null ? 1 : await this.deliveryCount(stream, entry.id);
          if (this.stopping) break;
          this.s.logger.info({ group: this.group, stream, entryId: entry.id, attempt }, 'claimed an entry idle past claimIdleMs');
          await this.accept(stream, entry, attempt);
        }
      } catch (error) {
        if (this.stopping) break;
        if (isNoGroupError(error)) await this.recoverGroups().catch(() => {});
        else this.s.logger.warn({ group: this.group, stream, err: summarizeError(error) }, 'claiming idle entries failed');
      }
    }
    if (!this.stopping) await this.cleanupConsumers();
  }

  private async deliveryCount(stream: string, id: string): Promise<number> {
    try {
      return readDeliveryCount(await this.s.client.xpending(stream, this.group, id, id, 1)) ?? 2;
    } catch {
      // Claimed means delivered before; 2 is the least it can be.
      return 2;
    }
  }

  /**
   * Entries trimmed away (MAXLEN) while pending cannot be delivered: Redis 7 already drops them
   * from the pending list during XAUTOCLAIM, XACK covers Redis 6.2. Logged, since the event is lost.
   */
  private async dropDeleted(stream: string, ids: string[]): Promise<void> {
    this.s.logger.error({ group: this.group, stream, entryIds: ids.slice(0, 20), count: ids.length }, 'pending entries were trimmed from the stream before they were handled; raise maxLen');
    try {
      await this.s.client.xack(stream, this.group, ...ids);
    } catch (error) {
      this.s.logger.warn({ group: this.group, stream, err: summarizeError(error) }, 'could not clear trimmed entries');
    }
  }

  /** Removes consumers idle past `consumerCleanupIdleMs` that hold nothing (checked atomically). */
  private async cleanupConsumers(): Promise<void> {
    const idleMs = this.s.consumerCleanupIdleMs;
    if (idleMs === undefined) return;
    const now = this.s.clock.now();
    if (now - this.lastCleanupAt < Math.min(idleMs, 60_000)) return;
    this.lastCleanupAt = now;
    for (const stream of this.s.streams) {
      try {
        const consumers = readConsumers(await this.s.client.xinfo('CONSUMERS', stream, this.group));
        for (const consumer of consumers) {
          if (consumer.name === this.s.consumer || consumer.pending !== 0 || !(consumer.idle > idleMs)) continue;
          const removed = await this.s.client.eval(DELETE_IDLE_CONSUMER, 1, stream, this.group, consumer.name);
          if (removed !== -1) this.s.logger.info({ group: this.group, stream, consumer: consumer.name }, 'removed an idle consumer with no pending entries');
        }
      } catch (error) {
        this.s.logger.debug({ group: this.group, stream, err: summarizeError(error) }, 'consumer cleanup failed');
      }
    }
  }
}

/** How long close() waits for Redis on its own clean-up steps. */
const CLEANUP_TIMEOUT_MS = 2_000;
const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `promise`'s value, or {@link TIMED_OUT} after `ms`. Real timers on purpose: this bounds I/O,
 * and a fake test clock must not freeze it. Rejections pass through.
 */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function key(stream: string, id: string): string {
  return `${stream}\u0000${id}`;
}

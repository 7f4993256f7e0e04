import type { Clock } from '../core/clock.js';
import { backoffDelay, settleWithin, sleep } from '../core/abort.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { encodeDeadLetter, type DeliveryOutcome, type DeliveryPipeline } from '../bus/delivery.js';
import type { CloseOptions, Subscription } from '../bus/types.js';
import { CHANNEL_CLOSE_TIMEOUT_MS, closeChannel } from './close-channel.js';
import type { ConfirmPublisher } from './confirm-publisher.js';
import { declareGroupTopology, type GroupTopology, type TopologySettings } from './topology.js';
import type { AmqpChannel, AmqpMessage } from './types.js';

/** Header carrying the 1-based attempt of a message the adapter republished for retry. */
export const ATTEMPT_HEADER = 'x-attempt';

/** What the bus tells a host when the broker cancels a consumer (its queue was deleted, say). */
export interface ConsumerCancelledInfo {
  /** The consumer group whose consumer was cancelled. */
  group: string;
  /** The queue it consumed from; declaring it again lets the consumer resume. */
  queue: string;
}

/** Everything a subscription needs from its bus. */
export interface AmqpSubscriptionContext {
  /** Opens a channel on the bus's current connection (reconnecting first where the bus can). */
  openChannel(): Promise<AmqpChannel>;
  publisher: ConfirmPublisher;
  pipeline: DeliveryPipeline;
  names: GroupTopology;
  settings: TopologySettings;
  concurrency: number;
  logger: Logger;
  clock: Clock;
  closeTimeoutMs: number;
  reopenBaseMs: number;
  reopenMaxMs: number;
  /** False once reopening is hopeless: the bus is closing, or its fixed connection is gone. */
  canReopen(): boolean;
  onConsumerCancelled: ((info: ConsumerCancelledInfo) => void) | undefined;
  onClosed(subscription: AmqpSubscription): void;
}

/** One consumer channel and what is still running on it. */
interface Generation {
  channel: AmqpChannel;
  consumerTag: string | undefined;
  closed: boolean;
  /** True once we closed (or gave up on) it ourselves: its close must not trigger a reopen. */
  retired: boolean;
}

interface InFlight {
  generation: Generation;
  done: Promise<void>;
  controller: AbortController;
  /** Past the close deadline: whatever the handler does now, the message stays unacked. */
  abandoned: boolean;
}

/**
 * One `subscribe()` on the AMQP bus: a consumer on its own channel (prefetch = concurrency) that
 * feeds each message to the {@link DeliveryPipeline} and carries out its outcome. The channel is
 * reopened (with backoff) when the broker closes it, and the consumer re-established.
 */
export class AmqpSubscription implements Subscription {
  readonly group: string;
  readonly types: readonly string[];
  private readonly ctx: AmqpSubscriptionContext;
  private current: Generation | undefined;
  private readonly generations = new Set<Generation>();
  private readonly inFlight = new Set<InFlight>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private reopening: Promise<void> | undefined;
  private readonly stopReopen = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(ctx: AmqpSubscriptionContext) {
    this.ctx = ctx;
    this.group = ctx.pipeline.group;
    this.types = ctx.pipeline.types;
  }

  /** Declares the topology and starts consuming; rejects when the broker refuses either. */
  async start(): Promise<void> {
    try {
      await this.openGeneration('declare');
    } catch (cause) {
      const closedMeanwhile = this.state !== 'open';
      this.state = 'closed';
      this.stopReopen.abort();
      if (closedMeanwhile) throw new IntegrationSyncError('ERR_CLOSED', `subscribe: the AMQP bus closed while subscribing group ${this.group}`, { cause });
      const code = (cause as { code?: unknown }).code;
      const hint =
        code === 406
          ? `a queue of group ${this.group} already exists with other arguments (queue type, dead-letter settings); delete it or use the same queueType`
          : `check the connection and the broker permissions (${summarizeError(cause).message})`;
      throw new IntegrationSyncError(code === 406 ? 'ERR_INVALID_OPTION' : 'ERR_CLOSED', `subscribe: cannot consume from ${this.ctx.names.queue}: ${hint}`, { cause });
    }
  }

  /** Stops consuming, waits for in-flight handlers up to the deadline, acks what finished, leaves the rest unacked. Idempotent. */
  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(options);
    return this.closing;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Called by the bus when its fixed connection is gone: stop trying to reopen on it. */
  connectionLost(): void {
    this.stopReopen.abort();
  }

  private async doClose(options: CloseOptions): Promise<void> {
    this.state = 'closing';
    this.stopReopen.abort();
    const current = this.current;
    if (current && !current.closed && current.consumerTag !== undefined) {
      // A failed cancel means the channel is gone already: the broker stopped delivering anyway.
      await settleWithin([cancelConsumer(current)], CHANNEL_CLOSE_TIMEOUT_MS);
    }
    await this.reopening?.catch(() => {});
    await this.waitForInFlight(options);
    for (const entry of this.inFlight) {
      entry.abandoned = true;
      entry.controller.abort(new IntegrationSyncError('ERR_CLOSED', `subscription ${this.group} closed before the handler finished; the event will be redelivered`));
    }
    // Acks already written go out before channel.close on the same socket, so none is lost.
    await Promise.all([...this.generations].map((generation) => this.retireGeneration(generation)));
    this.state = 'closed';
    this.ctx.onClosed(this);
  }

  private async waitForInFlight(options: CloseOptions): Promise<void> {
    if (this.inFlight.size === 0) return;
    // Once their channels are gone nothing can be acked any more, and the broker has requeued it all.
    const ackable = [...this.inFlight].some((entry) => !entry.generation.closed);
    const timeoutMs = ackable ? (options.timeoutMs ?? this.ctx.closeTimeoutMs) : 0;
    await settleWithin([...this.inFlight].map((entry) => entry.done), timeoutMs, this.ctx.clock, options.signal);
  }

  /** Opens a channel and a consumer on it. `declare` asserts the topology; `passive` only checks the queue exists. */
  private async openGeneration(mode: 'declare' | 'passive'): Promise<void> {
    const { names } = this.ctx;
    const channel = await this.ctx.openChannel();
    const generation: Generation = { channel, consumerTag: undefined, closed: false, retired: false };
    this.generations.add(generation);
    channel.on('error', (error: Error) => {
      this.ctx.logger.warn({ group: this.group, queue: names.queue, err: summarizeError(error) }, 'AMQP consumer channel error');
    });
    channel.on('close', () => this.onChannelClosed(generation));
    try {
      if (mode === 'declare') await declareGroupTopology(channel, names, this.types, this.ctx.settings);
      else await channel.checkQueue(names.queue);
      await channel.prefetch(this.ctx.concurrency);
      if (this.state !== 'open') throw new IntegrationSyncError('ERR_CLOSED', `subscription ${this.group} is closing`);
      const { consumerTag } = await channel.consume(names.queue, (message) => this.onMessage(generation, message), { noAck: false });
      generation.consumerTag = consumerTag;
      this.current = generation;
    } catch (error) {
      await this.retireGeneration(generation);
      throw error;
    }
  }

  private async retireGeneration(generation: Generation): Promise<void> {
    generation.retired = true;
    if (this.current === generation) this.current = undefined;
    if (!generation.closed) await closeChannel(generation.channel);
    generation.closed = true;
    this.generations.delete(generation);
  }

  private onChannelClosed(generation: Generation): void {
    generation.closed = true;
    this.generations.delete(generation);
    if (generation.retired) return;
    if (this.current === generation) this.current = undefined;
    this.ctx.logger.warn({ group: this.group, queue: this.ctx.names.queue }, 'AMQP consumer channel closed; reopening');
    this.scheduleReopen('declare');
  }

  private scheduleReopen(mode: 'declare' | 'passive'): void {
    if (this.state !== 'open' || this.reopening || this.stopReopen.signal.aborted) return;
    const loop = this.reopenLoop(mode).finally(() => {
      this.reopening = undefined;
    });
    this.reopening = loop;
    loop.catch(() => {});
  }

  private async reopenLoop(mode: 'declare' | 'passive'): Promise<void> {
    const signal = this.stopReopen.signal;
    for (let attempt = 1; ; attempt++) {
      const delay = Math.max(this.ctx.reopenBaseMs, backoffDelay(attempt, this.ctx.reopenBaseMs, this.ctx.reopenMaxMs));
      try {
        await sleep(delay, signal, this.ctx.clock);
      } catch {
        return;
      }
      if (this.state !== 'open' || !this.ctx.canReopen()) return;
      try {
        await this.openGeneration(mode);
        this.ctx.logger.info({ group: this.group, queue: this.ctx.names.queue, attempt }, 'AMQP consumer re-established');
        return;
      } catch (error) {
        const level = mode === 'passive' && (error as { code?: unknown }).code === 404 ? 'debug' : 'warn';
        this.ctx.logger[level]({ group: this.group, queue: this.ctx.names.queue, attempt, err: summarizeError(error) }, 'AMQP consumer not re-established yet; retrying');
      }
    }
  }

  private onMessage(generation: Generation, message: AmqpMessage | null): void {
    if (message === null) {
      this.onCancelled(generation);
      return;
    }
    // After cancel() the broker may still deliver a few; leave them unacked, the close requeues them.
    if (this.state !== 'open' || generation.retired) return;
    const entry: InFlight = { generation, done: Promise.resolve(), controller: new AbortController(), abandoned: false };
    entry.done = this.handle(generation, message, entry)
      .catch((error: unknown) => {
        // Unreachable by contract (the pipeline never throws); kept so nothing escapes as an unhandled rejection.
        this.ctx.logger.error({ group: this.group, err: summarizeError(error) }, 'AMQP delivery failed; the broker redelivers the message');
      })
      .finally(() => {
        this.inFlight.delete(entry);
      });
    this.inFlight.add(entry);
  }

  private onCancelled(generation: Generation): void {
    const { names, logger } = this.ctx;
    logger.error({ group: this.group, queue: names.queue }, 'RabbitMQ cancelled the consumer (queue deleted?); waiting for the queue to come back');
    if (this.ctx.onConsumerCancelled) {
      try {
        this.ctx.onConsumerCancelled({ group: this.group, queue: names.queue });
      } catch (error) {
        logger.error({ group: this.group, err: summarizeError(error) }, 'onConsumerCancelled hook failed');
      }
    }
    if (this.state !== 'open') return;
    // The queue is gone with its messages, so nothing on this channel can still be acked.
    void this.retireGeneration(generation);
    // Passive: an operator deleted the queue; only resume once something declares it again.
    this.scheduleReopen('passive');
  }

  private async handle(generation: Generation, message: AmqpMessage, entry: InFlight): Promise<void> {
    const attempt = attemptOf(message);
    const outcome = await this.ctx.pipeline.process({ body: message.content, attempt, signal: entry.controller.signal });
    if (entry.abandoned) return;
    try {
      await this.carryOut(generation, message, attempt, outcome);
    } catch (error) {
      this.ctx.logger.error({ group: this.group, messageId: message.properties.messageId, err: summarizeError(error) }, 'AMQP delivery outcome failed; the broker will redeliver the message');
    }
  }

  private async carryOut(generation: Generation, message: AmqpMessage, attempt: number, outcome: DeliveryOutcome): Promise<void> {
    const { names, publisher } = this.ctx;
    if (generation.closed) {
      // The broker requeued the message when its channel closed; acting now would only duplicate it.
      this.ctx.logger.warn({ group: this.group, messageId: message.properties.messageId, action: outcome.action }, 'consumer channel closed before the outcome; the broker redelivers the message');
      return;
    }
    if (outcome.action === 'retry') {
      const { headers = {}, ...properties } = message.properties;
      // The broker's return count starts over for the copy; x-attempt carries the total.
      const { 'x-delivery-count': _returns, ...kept } = headers;
      try {
        // The copy is confirmed before the original is acked, so a crash in between only duplicates.
        await publisher.publish('', names.retryQueue, message.content, {
          ...definedOnly(properties),
          persistent: true,
          mandatory: true,
          expiration: String(Math.max(0, Math.round(outcome.delayMs))),
          headers: { ...kept, [ATTEMPT_HEADER]: attempt + 1 },
        });
      } catch (error) {
        this.ctx.logger.error({ group: this.group, messageId: message.properties.messageId, err: summarizeError(error) }, 'could not schedule the retry; requeueing the message after its backoff');
        await this.requeueLater(generation, message, outcome.delayMs);
        return;
      }
    } else if (outcome.action === 'dead-letter') {
      const { record } = outcome;
      try {
        await publisher.publish(names.deadLetterExchange, names.queue, Buffer.from(encodeDeadLetter(record)), {
          persistent: true,
          mandatory: true,
          contentType: 'application/json',
          // Properties are AMQP short strings: a rejected event's id or type past 255 bytes
          // would make the publish throw every time, so those stay in the record only.
          ...(record.eventId && Buffer.byteLength(record.eventId) <= 255 ? { messageId: record.eventId } : {}),
          ...(record.type && Buffer.byteLength(record.type) <= 255 ? { type: record.type } : {}),
          headers: { 'x-dead-letter-reason': record.reason, 'x-group': this.group, [ATTEMPT_HEADER]: record.attempts },
        });
      } catch (error) {
        this.ctx.logger.error({ group: this.group, messageId: message.properties.messageId, err: summarizeError(error) }, 'could not store the dead-letter record; requeueing the message after a backoff');
        await this.requeueLater(generation, message, this.ctx.pipeline.retryDelay(attempt));
        return;
      }
    }
    this.settle(generation, message, 'ack');
  }

  /**
   * The fallback when the retry copy or dead-letter record could not be stored. A requeue comes
   * straight back (and a classic queue does not count it), so without a pause a deleted retry
   * queue or dead-letter exchange would spin the handler at full speed: declare the topology
   * again, so the next attempt finds it, and hold the message for `delayMs` first.
   */
  private async requeueLater(generation: Generation, message: AmqpMessage, delayMs: number): Promise<void> {
    if (!generation.closed) {
      try {
        await declareGroupTopology(generation.channel, this.ctx.names, this.types, this.ctx.settings);
      } catch (error) {
        this.ctx.logger.warn({ group: this.group, err: summarizeError(error) }, 'could not declare the group topology again');
      }
    }
    await sleep(delayMs, this.stopReopen.signal, this.ctx.clock).catch(() => {});
    this.settle(generation, message, 'requeue');
  }

  private settle(generation: Generation, message: AmqpMessage, how: 'ack' | 'requeue'): void {
    if (generation.closed) {
      // The broker requeued it when the channel closed; the idempotency store skips a handled one.
      this.ctx.logger.warn({ group: this.group, messageId: message.properties.messageId }, `cannot ${how} on a closed channel; the broker redelivers the message`);
      return;
    }
    try {
      if (how === 'ack') generation.channel.ack(message);
      else generation.channel.nack(message, false, true);
    } catch (error) {
      this.ctx.logger.warn({ group: this.group, messageId: message.properties.messageId, err: summarizeError(error) }, `${how} failed; the broker redelivers the message`);
    }
  }
}

/**
 * The 1-based attempt: the `x-attempt` header of a retry copy (1 for an original) plus the
 * broker's own count of returns (quorum `x-delivery-count`; on classic queues only the
 * `redelivered` flag, counted as one).
 */
export function attemptOf(message: AmqpMessage): number {
  const headers = message.properties.headers ?? {};
  const base = toCount(headers[ATTEMPT_HEADER]) ?? 1;
  const returns = toCount(headers['x-delivery-count']) ?? (message.fields.redelivered ? 1 : 0);
  return Math.max(1, base) + returns;
}

function cancelConsumer(generation: Generation): Promise<unknown> {
  try {
    return generation.channel.cancel(generation.consumerTag as string);
  } catch (error) {
    return Promise.reject(error);
  }
}

function toCount(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== null)) as Partial<T>;
}

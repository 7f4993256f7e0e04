import { settleWithin, sleep } from '../core/abort.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { DeliveryOutcome, DeliveryPipeline } from '../bus/delivery.js';
import type { CloseOptions, DeadLetterRecord, Subscription } from '../bus/types.js';
import type { NatsConsumerConfigLike, NatsConsumerLike, NatsConsumerMessagesLike, NatsJsMsgLike } from './types.js';

/** One durable consumer (one event type of a group) a subscription pulls from. */
export interface NatsConsumerBinding {
  type: string;
  durable: string;
  config: NatsConsumerConfigLike;
  consumer: NatsConsumerLike;
}

/** What a {@link NatsSubscription} needs from its bus. Internal. */
export interface NatsSubscriptionContext {
  pipeline: DeliveryPipeline;
  bindings: NatsConsumerBinding[];
  concurrency: number;
  /** How long one pull request waits for a message before it is renewed. */
  pullExpiresMs: number;
  /** Interval of automatic `working()` calls while a handler runs; 0 turns them off. */
  progressIntervalMs: number;
  closeTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  isConnectionClosed(): boolean;
  /** Stores the record on the dead-letter subject; rejects when the broker did not take it. */
  publishDeadLetter(record: DeadLetterRecord, msg: NatsJsMsgLike): Promise<void>;
  /** Makes sure the durable consumer exists again (after a pull error: deleted consumer, restarted server). */
  recover(binding: NatsConsumerBinding): Promise<void>;
  onClosed(subscription: NatsSubscription): void;
}

interface ActiveDelivery {
  msg: NatsJsMsgLike;
  controller: AbortController;
  /** Set once the message was handed back (close past deadline): its outcome is then ignored. */
  abandoned: boolean;
  /** Ends the automatic `working()` calls. */
  stopProgress: () => void;
  done: Promise<void>;
}

/** Pause after a failed pull before trying again, so a broken consumer does not spin. */
const PULL_ERROR_PAUSE_MS = 1000;
/** An empty pull that ends sooner than this did not expire: something is wrong. */
const EARLY_END_MS = 250;
/** How long to wait for the server to confirm an ack. */
const ACK_TIMEOUT_MS = 5000;

/**
 * A subscription on the NATS bus: `concurrency` pull loops per durable consumer, each holding at
 * most one message, and a shared limit of `concurrency` handlers at once. A message that arrived
 * while every slot is busy waits, with `working()` calls so its ack wait does not run out.
 * Internal; made by `createNatsBus().subscribe()`.
 */
export class NatsSubscription implements Subscription {
  readonly group: string;
  readonly types: readonly string[];
  private readonly ctx: NatsSubscriptionContext;
  private readonly active = new Set<ActiveDelivery>();
  private readonly batches = new Set<NatsConsumerMessagesLike>();
  private readonly loops = new Set<Promise<void>>();
  private readonly slotWaiters: Array<() => void> = [];
  /** Aborts pauses and slot waits when the subscription closes. */
  private readonly stopping = new AbortController();
  private running = 0;
  /** Messages whose ack the server did not confirm; their pull loop checks the consumer before pulling again. */
  private readonly unsettled = new WeakSet<NatsJsMsgLike>();
  private closing: Promise<void> | undefined;

  constructor(context: NatsSubscriptionContext) {
    this.ctx = context;
    this.group = context.pipeline.group;
    this.types = context.pipeline.types;
  }

  /** Starts the pull loops. */
  start(): void {
    for (const binding of this.ctx.bindings) {
      for (let i = 0; i < this.ctx.concurrency; i += 1) {
        const loop = this.pullLoop(binding).catch((error: unknown) => {
          // pullLoop handles its own errors; this only guards against a bug turning into an unhandled rejection.
          this.ctx.logger.error({ group: this.group, durable: binding.durable, err: summarizeError(error) }, 'nats pull loop failed');
        });
        this.loops.add(loop);
        void loop.finally(() => this.loops.delete(loop));
      }
    }
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(options);
    return this.closing;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async pullLoop(binding: NatsConsumerBinding): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let batch: NatsConsumerMessagesLike;
      let msg: NatsJsMsgLike | undefined;
      try {
        batch = await binding.consumer.fetch({ max_messages: 1, expires: this.ctx.pullExpiresMs });
      } catch (error) {
        if (!(await this.pauseAfterError(binding, error))) return;
        continue;
      }
      if (signal.aborted) {
        batch.stop();
        return;
      }
      this.batches.add(batch);
      const pulledAt = this.ctx.clock.now();
      try {
        // One message at most: the batch ends after it, or when the pull request expires empty.
        for await (const m of batch) msg = m;
      } catch (error) {
        if (msg === undefined) {
          this.batches.delete(batch);
          if (!(await this.pauseAfterError(binding, error))) return;
          continue;
        }
      } finally {
        this.batches.delete(batch);
      }
      if (msg === undefined) {
        // An empty pull: expired, or ended because the connection closed under us.
        if (this.ctx.isConnectionClosed()) return this.connectionLost(binding);
        if (signal.aborted) return;
        // Ended long before it could expire without saying why: pause rather than spin.
        if (this.ctx.clock.now() - pulledAt < EARLY_END_MS && !(await this.pauseAfterError(binding, new Error('pull ended early')))) return;
        continue;
      }
      if (signal.aborted) {
        // Arrived while closing: hand it back at once rather than wait out its ack wait.
        safeCall(() => msg.nak());
        return;
      }
      await this.deliver(msg);
      // An ack the server did not answer usually means the consumer (or stream) was deleted
      // while the handler ran; check now rather than pull from it blind until the pull expires.
      if (this.unsettled.delete(msg) && !signal.aborted && !this.ctx.isConnectionClosed()) {
        await this.ctx.recover(binding).catch((error: unknown) => {
          this.ctx.logger.warn({ group: this.group, durable: binding.durable, err: summarizeError(error) }, 'nats consumer check failed');
        });
      }
    }
  }

  /** Logs a pull error and waits before the next pull; false when the loop should end. */
  private async pauseAfterError(binding: NatsConsumerBinding, error: unknown): Promise<boolean> {
    if (this.stopping.signal.aborted) return false;
    if (this.ctx.isConnectionClosed()) {
      this.connectionLost(binding);
      return false;
    }
    this.ctx.logger.warn({ group: this.group, durable: binding.durable, err: summarizeError(error) }, 'nats pull failed; retrying');
    try {
      await sleep(PULL_ERROR_PAUSE_MS, this.stopping.signal, this.ctx.clock);
      await this.ctx.recover(binding);
    } catch (recoverError) {
      if (this.stopping.signal.aborted) return false;
      this.ctx.logger.warn({ group: this.group, durable: binding.durable, err: summarizeError(recoverError) }, 'nats consumer check failed');
    }
    return !this.stopping.signal.aborted;
  }

  private connectionLost(binding: NatsConsumerBinding): void {
    this.ctx.logger.warn({ group: this.group, durable: binding.durable }, 'nats connection closed; subscription stops pulling');
  }

  private async deliver(msg: NatsJsMsgLike): Promise<void> {
    const delivery: ActiveDelivery = {
      msg,
      controller: new AbortController(),
      abandoned: false,
      stopProgress: this.startProgress(msg),
      done: Promise.resolve(),
    };
    let finish!: () => void;
    delivery.done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    this.active.add(delivery);
    try {
      if (!(await this.acquireSlot())) {
        // Closed before a slot freed up: never started, so hand it back now.
        delivery.abandoned = true;
        safeCall(() => msg.nak());
        return;
      }
      let outcome: DeliveryOutcome;
      try {
        outcome = await this.ctx.pipeline.process({
          body: msg.data,
          attempt: msg.info.deliveryCount,
          signal: delivery.controller.signal,
          progress: () => safeCall(() => msg.working()),
        });
      } finally {
        this.releaseSlot();
      }
      if (delivery.abandoned) return;
      await this.settle(msg, outcome);
    } finally {
      delivery.stopProgress();
      this.active.delete(delivery);
      finish();
    }
  }

  /** Carries out the pipeline's decision on the broker. Never throws. */
  private async settle(msg: NatsJsMsgLike, outcome: DeliveryOutcome): Promise<void> {
    const seq = msg.info.streamSequence;
    try {
      if (outcome.action === 'ack') {
        await ackConfirmed(msg);
      } else if (outcome.action === 'retry') {
        msg.nak(outcome.delayMs);
      } else {
        try {
          await this.ctx.publishDeadLetter(outcome.record, msg);
        } catch (error) {
          // Not stored anywhere yet: keep the original so the dead-letter is tried again later.
          this.ctx.logger.error({ group: this.group, seq, err: summarizeError(error) }, 'dead-letter publish failed; the event will be redelivered');
          msg.nak(this.ctx.pipeline.retryDelay(msg.info.deliveryCount));
          return;
        }
        // Acked rather than terminated so the server confirms it; the record is already stored.
        await ackConfirmed(msg);
      }
    } catch (error) {
      // Usually the connection closed under us: the server redelivers after the ack wait and
      // the idempotency store skips what was already handled.
      this.unsettled.add(msg);
      this.ctx.logger.warn({ group: this.group, seq, action: outcome.action, err: summarizeError(error) }, 'nats ack/nak failed; the event may be redelivered');
    }
  }

  /** Calls `working()` every `progressIntervalMs` until stopped, so JetStream keeps the message here. */
  private startProgress(msg: NatsJsMsgLike): () => void {
    const interval = this.ctx.progressIntervalMs;
    if (interval <= 0) return () => {};
    let timer: TimerHandle | undefined;
    let stopped = false;
    const tick = (): void => {
      if (stopped) return;
      if (!this.ctx.isConnectionClosed()) safeCall(() => msg.working());
      timer = this.ctx.clock.setTimeout(tick, interval);
    };
    timer = this.ctx.clock.setTimeout(tick, interval);
    return () => {
      stopped = true;
      this.ctx.clock.clearTimeout(timer);
    };
  }

  private acquireSlot(): Promise<boolean> {
    if (this.stopping.signal.aborted) return Promise.resolve(false);
    if (this.running < this.ctx.concurrency) {
      this.running += 1;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        const index = this.slotWaiters.indexOf(grant);
        if (index >= 0) this.slotWaiters.splice(index, 1);
        resolve(false);
      };
      const grant = (): void => {
        this.stopping.signal.removeEventListener('abort', onAbort);
        this.running += 1;
        resolve(true);
      };
      this.slotWaiters.push(grant);
      this.stopping.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaseSlot(): void {
    this.running -= 1;
    const next = this.slotWaiters.shift();
    if (next) next();
  }

  private async doClose(options: CloseOptions): Promise<void> {
    // With the connection gone no outcome can reach the server any more: do not wait for handlers.
    const timeoutMs = this.ctx.isConnectionClosed() ? 0 : (options.timeoutMs ?? this.ctx.closeTimeoutMs);
    // Stop taking messages: end every open pull and wake every waiter.
    this.stopping.abort(new IntegrationSyncError('ERR_CLOSED', `subscription ${this.group} closed`));
    for (const batch of this.batches) safeCall(() => batch.stop());
    this.batches.clear();

    const inFlight = [...this.active].map((d) => d.done);
    const timedOut = await settleWithin(inFlight, timeoutMs, this.ctx.clock, options.signal);
    if (timedOut) {
      for (const delivery of this.active) {
        if (delivery.abandoned) continue;
        delivery.abandoned = true;
        // A handler that ignores the abort must not keep the event (or the process) alive.
        delivery.stopProgress();
        delivery.controller.abort(new IntegrationSyncError('ERR_CLOSED', `subscription ${this.group} closed before the handler finished`));
        // Hand it back now; without this it would come back only after the ack wait.
        if (!this.ctx.isConnectionClosed()) safeCall(() => delivery.msg.nak());
      }
      this.ctx.logger.warn({ group: this.group, timeoutMs }, 'nats subscription closed with handlers still running; their events are redelivered');
    } else {
      // Loops whose message was handled end right after; wait for them so nothing dangles.
      await settleWithin([...this.loops], timeoutMs, this.ctx.clock, options.signal);
    }
    this.ctx.onClosed(this);
  }
}

/** Acks and, where the client can, waits for the server to confirm, so a lost ack is noticed. */
async function ackConfirmed(msg: NatsJsMsgLike): Promise<void> {
  if (typeof msg.ackAck === 'function') {
    const confirmed = await msg.ackAck({ timeout: ACK_TIMEOUT_MS });
    if (!confirmed) throw new IntegrationSyncError('ERR_CLOSED', 'the server did not confirm the ack');
    return;
  }
  msg.ack();
}

/** Runs a fire-and-forget broker call that throws when the connection is closed. */
function safeCall(fn: () => void): void {
  try {
    fn();
  } catch {
    // The connection is gone; the server redelivers after the ack wait.
  }
}

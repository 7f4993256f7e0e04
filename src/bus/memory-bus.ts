import { EventEmitter } from 'eventemitter3';
import { DEFAULT_STOP_TIMEOUT_MS, settleWithin, throwIfAborted } from '../core/abort.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import { childLogger, silentLogger, type Logger } from '../core/logger.js';
import { assertMs, assertOptionalFunction, assertOptionalMethods, assertOptions, assertPositiveInt, CLOCK_METHODS } from '../core/options.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, type CloudEvent } from '../events/envelope.js';
import { DeliveryPipeline, encodeForPublish, recordPublished, type BusOptions, type DeliveryOutcome } from './delivery.js';
import { createMemoryIdempotencyStore } from './idempotency.js';
import type { CloseOptions, DeadLetterRecord, EventBus, PublishOptions, SubscribeOptions, Subscription } from './types.js';

/** Options of {@link createMemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * Most undelivered events one consumer group may hold. Past it, `publish` rejects with
   * `ERR_PUBLISH_FAILED` rather than grow without bound (a group whose members all left keeps
   * collecting events, as a durable queue does). @default 100000
   */
  maxQueueLength?: number;
}

/**
 * The in-process "broker" behind memory buses. Each bus gets its own unless one is passed:
 * two buses on one broker behave as two replicas of a host (consumer groups are shared).
 */
export interface MemoryBroker {
  /**
   * Puts a raw payload on the broker for `type`, as a foreign producer would: nothing is checked,
   * so the consumers' validation and dead-lettering run on it. Meant for tests.
   */
  publishRaw(type: string, payload: string | Uint8Array): void;
  /** Undelivered events (queued or waiting for a retry) of a consumer group; 0 for unknown groups. */
  pending(group: string): number;
}

/** Options of {@link createMemoryBus}. */
export interface MemoryBusOptions extends BusOptions {
  /** Shares consumer groups with other buses on the same broker, as replicas share a real broker. @default a new broker */
  broker?: MemoryBroker;
  /** Dead-letter records kept for {@link MemoryEventBus.deadLetters}; the oldest are dropped first. @default 1000 */
  maxDeadLetters?: number;
}

/** The in-memory {@link EventBus}, with its dead-letter records readable. */
export interface MemoryEventBus extends EventBus {
  /** The most recent dead-letter records of this bus's subscriptions, oldest first (a copy). */
  deadLetters(): DeadLetterRecord[];
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

interface QueuedMessage {
  type: string;
  body: string | Uint8Array;
  attempt: number;
}

interface ActiveDelivery {
  message: QueuedMessage;
  controller: AbortController;
  /** Set once the delivery was handed back (close past deadline, crash): its outcome is ignored. */
  abandoned: boolean;
  done: Promise<void>;
}

interface Member {
  /** True when the member subscribed to `type`. */
  accepts(type: string): boolean;
  /** True when the member takes one more event now. */
  canTake(): boolean;
  start(message: QueuedMessage): void;
}

const DEFAULT_MAX_QUEUE_LENGTH = 100_000;
const DEFAULT_MAX_DEAD_LETTERS = 1000;

/** One consumer group: one queue, shared by its members. */
class GroupState {
  /**
   * The queue: `items[head..]`, oldest first. Taking from the front moves `head` instead of
   * shifting, which is O(n) once the backlog is large (V8 cannot trim big arrays in place).
   */
  private items: (QueuedMessage | undefined)[] = [];
  private head = 0;
  readonly types = new Set<string>();
  readonly members: Member[] = [];
  /** Events waiting in a member's retry timer; they count as pending. */
  retrying = 0;
  private next = 0;
  private pumpScheduled = false;

  constructor(readonly name: string) {}

  /** Events waiting in the queue. */
  get size(): number {
    return this.items.length - this.head;
  }

  enqueue(message: QueuedMessage): void {
    this.items.push(message);
    this.schedulePump();
  }

  /** Removes and returns the oldest queued event `member` accepts, if any. */
  private takeFor(member: Member): QueuedMessage | undefined {
    for (let i = this.head; i < this.items.length; i += 1) {
      const message = this.items[i] as QueuedMessage;
      if (!member.accepts(message.type)) continue;
      if (i === this.head) {
        this.items[i] = undefined;
        this.head += 1;
        if (this.head === this.items.length) {
          this.items = [];
          this.head = 0;
        } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
          this.items = this.items.slice(this.head);
          this.head = 0;
        }
      } else {
        this.items.splice(i, 1);
      }
      return message;
    }
    return undefined;
  }

  schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // A microtask, so handlers never run inside publish() and nothing keeps the process alive.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Hands queued events to members with free capacity, round-robin, oldest event first. */
  private pump(): void {
    let progressed = true;
    while (progressed && this.size > 0) {
      progressed = false;
      const count = this.members.length;
      for (let i = 0; i < count; i += 1) {
        const index = (this.next + i) % count;
        const member = this.members[index];
        if (member === undefined || !member.canTake()) continue;
        const message = this.takeFor(member);
        if (message === undefined) continue;
        this.next = (index + 1) % count;
        member.start(message as QueuedMessage);
        progressed = true;
        break;
      }
    }
  }
}

class MemoryBrokerImpl implements MemoryBroker {
  readonly groups = new Map<string, GroupState>();
  /** Fan-out by event type: each consumer group listens to the types its members take. */
  readonly emitter = new EventEmitter();
  readonly maxQueueLength: number;

  constructor(options: MemoryBrokerOptions) {
    options = assertOptions('createMemoryBroker', options);
    this.maxQueueLength = assertPositiveInt('maxQueueLength', options.maxQueueLength ?? DEFAULT_MAX_QUEUE_LENGTH);
  }

  group(name: string, types: readonly string[]): GroupState {
    let group = this.groups.get(name);
    if (group === undefined) {
      group = new GroupState(name);
      this.groups.set(name, group);
    }
    for (const type of types) {
      if (group.types.has(type)) continue;
      group.types.add(type);
      const target = group;
      this.emitter.on(type, (body: string | Uint8Array) => target.enqueue({ type, body, attempt: 1 }));
    }
    return group;
  }

  /** Throws `ERR_PUBLISH_FAILED` when a group taking `type` is full, before any group gets it. */
  assertRoom(type: string): void {
    for (const group of this.groups.values()) {
      if (group.types.has(type) && group.size >= this.maxQueueLength) {
        throw new IntegrationSyncError(
          'ERR_PUBLISH_FAILED',
          `publish: consumer group ${group.name} already holds ${group.size} undelivered events; start a consumer or raise maxQueueLength`,
          { details: { group: group.name, maxQueueLength: this.maxQueueLength } },
        );
      }
    }
  }

  publishRaw(type: string, payload: string | Uint8Array): void {
    this.emitter.emit(type, payload);
  }

  pending(group: string): number {
    const state = this.groups.get(group);
    return state === undefined ? 0 : state.size + state.retrying;
  }
}

/**
 * Creates a broker that several memory buses can share, so they act as replicas of one host.
 *
 * @example
 * const broker = createMemoryBroker();
 * const replicaA = createMemoryBus({ broker });
 * const replicaB = createMemoryBus({ broker });
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return new MemoryBrokerImpl(options);
}

function resolveCloseTimeout(options: CloseOptions, fallback: number): number {
  return options.timeoutMs === undefined ? fallback : assertMs('timeoutMs', options.timeoutMs, 0);
}

/** What a subscription needs from the bus that made it. */
interface SubscriptionHost {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default close deadline. */
  readonly closeTimeoutMs: number;
  keepDeadLetter(record: DeadLetterRecord): void;
  /** Called once the subscription has let go of everything. */
  released(subscription: MemorySubscription): void;
}

/** One member of a consumer group: runs the pipeline on the events the group hands it. */
class MemorySubscription implements Subscription, Member {
  readonly group: string;
  readonly types: readonly string[];
  private readonly typeSet: ReadonlySet<string>;
  private readonly active = new Set<ActiveDelivery>();
  private readonly retryTimers = new Map<TimerHandle, QueuedMessage>();
  private taking = true;
  private closePromise: Promise<void> | undefined;

  constructor(
    private readonly state: GroupState,
    private readonly pipeline: DeliveryPipeline,
    private readonly concurrency: number,
    private readonly host: SubscriptionHost,
  ) {
    this.group = pipeline.group;
    this.types = pipeline.types;
    this.typeSet = new Set(pipeline.types);
  }

  accepts(type: string): boolean {
    return this.typeSet.has(type);
  }

  canTake(): boolean {
    return this.taking && this.active.size < this.concurrency;
  }

  start(message: QueuedMessage): void {
    const delivery: ActiveDelivery = { message, controller: new AbortController(), abandoned: false, done: Promise.resolve() };
    this.active.add(delivery);
    delivery.done = this.run(delivery);
  }

  private async run(delivery: ActiveDelivery): Promise<void> {
    const { message } = delivery;
    let outcome: DeliveryOutcome;
    try {
      outcome = await this.pipeline.process({ body: message.body, attempt: message.attempt, signal: delivery.controller.signal });
    } catch (error) {
      // process() never throws; if it ever does, keep the event rather than lose it.
      outcome = { action: 'retry', delayMs: this.pipeline.retryDelay(message.attempt), error: summarizeError(error) };
    }
    this.active.delete(delivery);
    if (!delivery.abandoned) this.settle(message, outcome);
    this.state.schedulePump();
  }

  private settle(message: QueuedMessage, outcome: DeliveryOutcome): void {
    if (outcome.action === 'ack') return;
    if (outcome.action === 'dead-letter') {
      this.host.keepDeadLetter(outcome.record);
      return;
    }
    const next: QueuedMessage = { ...message, attempt: message.attempt + 1 };
    if (!this.taking) {
      this.state.enqueue(next);
      return;
    }
    this.state.retrying += 1;
    const handle = this.host.clock.setTimeout(() => {
      this.retryTimers.delete(handle);
      this.state.retrying -= 1;
      this.state.enqueue(next);
    }, outcome.delayMs);
    this.retryTimers.set(handle, next);
  }

  /** Stops taking events and hands pending retries back to the group at once. */
  private detach(): void {
    this.taking = false;
    const index = this.state.members.indexOf(this);
    if (index >= 0) this.state.members.splice(index, 1);
    for (const [handle, message] of this.retryTimers) {
      this.host.clock.clearTimeout(handle);
      this.state.retrying -= 1;
      this.state.enqueue(message);
    }
    this.retryTimers.clear();
  }

  /** Aborts what is still running and hands its events back with the next attempt number. */
  private abandonActive(reason: string): void {
    for (const delivery of this.active) {
      delivery.abandoned = true;
      this.state.enqueue({ ...delivery.message, attempt: delivery.message.attempt + 1 });
      delivery.controller.abort(new IntegrationSyncError('ERR_CLOSED', reason));
    }
    this.active.clear();
    this.state.schedulePump();
  }

  close(closeOptions: CloseOptions = {}): Promise<void> {
    closeOptions ??= {};
    if (this.closePromise === undefined) {
      let timeoutMs: number;
      try {
        timeoutMs = resolveCloseTimeout(closeOptions, this.host.closeTimeoutMs);
      } catch (error) {
        // A bad option leaves the subscription open, so a corrected close() still works.
        return Promise.reject(error);
      }
      this.closePromise = this.shutdown(timeoutMs, closeOptions.signal);
    }
    return this.closePromise;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  crash(): void {
    if (this.closePromise !== undefined && !this.taking && this.active.size === 0) return;
    this.detach();
    this.abandonActive('the consumer crashed; the event will be redelivered');
    this.closePromise ??= Promise.resolve();
    this.host.released(this);
  }

  private async shutdown(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    this.detach();
    if (this.active.size > 0) await this.waitForActive(timeoutMs, signal);
    if (this.active.size > 0) {
      this.host.logger.warn({ group: this.group, inFlight: this.active.size, timeoutMs }, 'close deadline passed; handing in-flight events back');
      this.abandonActive(`subscription closed after ${timeoutMs} ms; the event will be redelivered`);
    }
    this.host.released(this);
    this.state.schedulePump();
  }

  private async waitForActive(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    await settleWithin([...this.active].map((d) => d.done), timeoutMs, this.host.clock, signal);
  }
}

const crashHooks = new WeakMap<EventBus, () => Promise<void>>();

/**
 * Simulates the process dying: every in-flight handler of `bus` is dropped unacked (its signal
 * aborts and its outcome is ignored) and its event handed back for redelivery with the next
 * attempt number; the bus is closed at once, without waiting.
 *
 * @internal Testing only (the conformance harness); not part of the public API.
 */
export function crashMemoryBus(bus: EventBus): Promise<void> {
  const hook = crashHooks.get(bus);
  if (hook === undefined) return Promise.reject(new TypeError('crashMemoryBus: not a memory bus'));
  return hook();
}

function closedError(what: string): IntegrationSyncError {
  return new IntegrationSyncError('ERR_CLOSED', `${what}: the memory bus is closed; create a new bus`);
}

/**
 * Creates the in-memory {@link EventBus} (the embedded default), on eventemitter3.
 *
 * Semantics, as on every bus: `publish` serialises the event (handlers get their own copy, decoded
 * and validated like any broker's payload) and resolves once every consumer group taking its type
 * has it queued. A group only gets events published after its first member subscribed; once made,
 * a group keeps queuing even with no member, and a later member gets the backlog. Members of one
 * group share its queue round-robin, each up to its `concurrency`. A failed handler is retried
 * after the pipeline's backoff; invalid, unparsable and exhausted events are dead-lettered and kept
 * in {@link MemoryEventBus.deadLetters}. `close()` stops taking events, waits for in-flight
 * handlers up to the deadline, then aborts the rest and hands their events (and pending retries)
 * back to the group queue for another member.
 *
 * @example
 * const bus = createMemoryBus({ onDeadLetter: (record) => console.warn(record.reason) });
 * await bus.subscribe({ group: 'sync', types: ['integration.sync.scheduled'], handler: async (event) => {} });
 * await bus.publish(createEvent('integration.sync.scheduled', { integrationId, tenantId, trigger: 'manual', scheduledAt }));
 */
export function createMemoryBus(options: MemoryBusOptions = {}): MemoryEventBus {
  options = assertOptions('createMemoryBus', options);
  assertOptionalMethods('clock', options.clock, CLOCK_METHODS);
  assertOptionalMethods('audit', options.audit, ['record']);
  assertOptionalMethods('idempotency', options.idempotency, ['has', 'add']);
  assertOptionalFunction('onDeadLetter', options.onDeadLetter);
  // The pipeline reads these at subscribe(); checking them here makes a bad value fail at construction.
  if (options.maxAttempts != null) assertPositiveInt('maxAttempts', options.maxAttempts, 1000);
  if (options.retryBaseMs != null) assertMs('retryBaseMs', options.retryBaseMs, 0);
  if (options.retryMaxMs != null) assertMs('retryMaxMs', options.retryMaxMs, 0);
  if (options.idempotencyTtlMs != null) assertMs('idempotencyTtlMs', options.idempotencyTtlMs, 1, Number.MAX_SAFE_INTEGER);
  if (options.broker != null && !(options.broker instanceof MemoryBrokerImpl)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', 'broker must come from createMemoryBroker()');
  }
  const broker = (options.broker as MemoryBrokerImpl | undefined) ?? new MemoryBrokerImpl({});
  const maxDeadLetters = assertPositiveInt('maxDeadLetters', options.maxDeadLetters ?? DEFAULT_MAX_DEAD_LETTERS);
  const closeTimeoutMs = assertMs('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, 0);
  const maxPayloadBytes = assertPositiveInt('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
  const logger = childLogger(options.logger ?? silentLogger, { component: 'memory-bus' });
  // One store for all of this bus's subscriptions, so a re-published id is skipped in each group.
  const pipelineOptions: BusOptions = { ...options, logger, idempotency: options.idempotency ?? createMemoryIdempotencyStore() };
  const deadLetters: DeadLetterRecord[] = [];
  const subscriptions = new Set<MemorySubscription>();
  let closing: Promise<void> | undefined;

  const host: SubscriptionHost = {
    clock: options.clock ?? systemClock,
    logger,
    closeTimeoutMs,
    keepDeadLetter(record) {
      deadLetters.push(record);
      if (deadLetters.length > maxDeadLetters) deadLetters.splice(0, deadLetters.length - maxDeadLetters);
    },
    released(subscription) {
      subscriptions.delete(subscription);
    },
  };

  const bus: MemoryEventBus = {
    async publish(event: CloudEvent, publishOptions: PublishOptions = {}): Promise<void> {
      publishOptions ??= {};
      if (closing !== undefined) throw closedError('publish');
      throwIfAborted(publishOptions.signal);
      const text = encodeForPublish(event, maxPayloadBytes);
      broker.assertRoom(event.type);
      broker.publishRaw(event.type, text);
      recordPublished(event, { ...options, logger });
    },

    async subscribe(subscribeOptions: SubscribeOptions): Promise<Subscription> {
      if (closing !== undefined) throw closedError('subscribe');
      let pipeline: DeliveryPipeline;
      try {
        pipeline = new DeliveryPipeline(subscribeOptions, pipelineOptions);
      } catch (cause) {
        if (cause instanceof IntegrationSyncError) throw cause;
        throw new IntegrationSyncError('ERR_INVALID_OPTION', cause instanceof Error ? cause.message : 'subscribe: invalid options', { cause });
      }
      const concurrency = assertPositiveInt('concurrency', subscribeOptions.concurrency ?? 1, 10_000);
      const state = broker.group(pipeline.group, pipeline.types);
      const subscription = new MemorySubscription(state, pipeline, concurrency, host);
      state.members.push(subscription);
      subscriptions.add(subscription);
      state.schedulePump();
      return subscription;
    },

    close(closeOptions: CloseOptions = {}): Promise<void> {
      closeOptions ??= {};
      if (closing === undefined) {
        try {
          resolveCloseTimeout(closeOptions, closeTimeoutMs);
        } catch (error) {
          return Promise.reject(error);
        }
      }
      closing ??= Promise.all([...subscriptions].map((s) => s.close(closeOptions))).then(() => undefined);
      return closing;
    },

    deadLetters(): DeadLetterRecord[] {
      return [...deadLetters];
    },

    [Symbol.asyncDispose](): Promise<void> {
      return bus.close();
    },
  };

  crashHooks.set(bus, async () => {
    closing ??= Promise.resolve();
    for (const subscription of [...subscriptions]) subscription.crash();
  });
  return bus;
}

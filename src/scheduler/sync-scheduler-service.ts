import type { EventBus } from '../bus/types.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { childLogger, silentLogger } from '../core/logger.js';
import { assertNonEmptyString, assertOptionalMethods, LEASE_METHODS } from '../core/options.js';
import { createEvent, DEFAULT_SOURCE } from '../events/envelope.js';
import { EventTypes } from '../events/schemas.js';
import type { Lease } from '../leases/types.js';
import { holdsSlot, SlotTimer, type SlotTick } from './slot-timer.js';

/** Default period of {@link SyncSchedulerService}: one minute. */
export const DEFAULT_SYNC_CHECK_INTERVAL_MS = 60_000;

/** Options of {@link SyncSchedulerService}. */
export interface SyncSchedulerServiceOptions {
  /** Where `integration.sync.check-due` is published. */
  bus: EventBus;
  /** Tick period in ms (an integer from 1 to 2^31-1). @default 60000 */
  intervalMs?: number;
  /** Tick at once on `start()` as well as on every slot boundary. @default true */
  emitOnStart?: boolean;
  /**
   * Shared across replicas: only the replica that takes `<leaseKeyPrefix>:<slot>` emits for that
   * slot. Without it every replica emits, and consumers drop the duplicates by event id.
   */
  lease?: Lease;
  /** @default "scheduler:check-due" */
  leaseKeyPrefix?: string;
  /** CloudEvents `source`. @default "integration-sync" */
  source?: string;
  /** How long `stop()` waits for an in-flight publish. @default 10000 */
  stopTimeoutMs?: number;
  /** @default the system clock */
  clock?: Clock;
  /** pino-compatible. @default silent */
  logger?: Logger;
  /** Called with every failed tick (besides the log line); the scheduler keeps going. */
  onError?: (error: unknown, tick: { slot: number }) => void;
}

/**
 * Publishes `integration.sync.check-due` on every slot of `intervalMs` (default one minute), with
 * `data.timestamp` the tick time and the event id `check-due:<intervalMs>:<slot>`, so replicas
 * that tick the same slot publish the same id.
 *
 * Ticks sit on absolute slot boundaries (no drift), a slow publish skips the next slot rather
 * than stacking (no overlap), a stalled process ticks once on waking (no burst), and a failed
 * publish is logged and survived.
 *
 * @example
 * const scheduler = new SyncSchedulerService({ bus, lease: redisLease });
 * scheduler.start();
 * process.on('SIGTERM', () => void scheduler.stop());
 */
export class SyncSchedulerService {
  private readonly timer: SlotTimer;
  private readonly bus: EventBus;
  private readonly lease: Lease | undefined;
  private readonly leaseKeyPrefix: string;
  private readonly source: string;
  private readonly logger: Logger;

  constructor(options: SyncSchedulerServiceOptions) {
    if (typeof options?.bus?.publish !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'SyncSchedulerService: bus must be an EventBus (an object with publish())');
    }
    this.bus = options.bus;
    this.lease = assertOptionalMethods('lease', options.lease, LEASE_METHODS) ?? undefined;
    this.leaseKeyPrefix = assertNonEmptyString('leaseKeyPrefix', options.leaseKeyPrefix ?? 'scheduler:check-due');
    this.source = assertNonEmptyString('source', options.source ?? DEFAULT_SOURCE);
    this.logger = childLogger(options.logger ?? silentLogger, { component: 'SyncSchedulerService' });
    this.timer = new SlotTimer({
      intervalMs: options.intervalMs ?? DEFAULT_SYNC_CHECK_INTERVAL_MS,
      emitOnStart: options.emitOnStart ?? true,
      clock: options.clock ?? systemClock,
      logger: this.logger,
      onTick: (tick) => this.tick(tick),
      ...(options.stopTimeoutMs !== undefined ? { stopTimeoutMs: options.stopTimeoutMs } : {}),
      ...(options.onError !== undefined ? { onError: options.onError } : {}),
    });
  }

  /** The validated tick period. */
  get intervalMs(): number {
    return this.timer.intervalMs;
  }

  /** True between `start()` and `stop()`. */
  get isRunning(): boolean {
    return this.timer.isRunning;
  }

  /** Starts ticking; a second call does nothing. */
  start(): void {
    this.timer.start();
  }

  /** Stops ticking and waits for an in-flight publish (up to `stopTimeoutMs`). Idempotent. */
  stop(): Promise<void> {
    return this.timer.stop();
  }

  /** Same as {@link SyncSchedulerService.stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async tick({ slot, now, signal }: SlotTick): Promise<void> {
    if (!(await holdsSlot(this.lease, this.leaseKeyPrefix, { slot }, this.intervalMs, this.logger))) return;
    const time = new Date(now);
    const event = createEvent(
      EventTypes.SyncCheckDue,
      { timestamp: time.toISOString() },
      { id: `check-due:${this.intervalMs}:${slot}`, source: this.source, time },
    );
    await this.bus.publish(event, { signal });
    this.logger.debug({ slot, eventId: event.id }, 'check-due published');
  }
}

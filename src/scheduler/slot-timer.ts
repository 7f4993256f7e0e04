import { DEFAULT_STOP_TIMEOUT_MS, settleWithin } from '../core/abort.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { safeLogger, silentLogger } from '../core/logger.js';
import { assertMs, assertOptionalBoolean, assertOptionalFunction, assertOptionalMethods, CLOCK_METHODS } from '../core/options.js';
import type { Lease } from '../leases/types.js';

/** What a tick callback receives. */
export interface SlotTick {
  /** `floor(now / intervalMs)`: the same number on every replica for the same period. */
  slot: number;
  /** Clock time at which the tick runs (epoch ms). */
  now: number;
  /** Aborts when `stop()` gives up waiting for this tick. */
  signal: AbortSignal;
}

/** Options of {@link SlotTimer}. */
export interface SlotTimerOptions {
  /** Period, in ms: a finite integer from 1 to 2^31-1. */
  intervalMs: number;
  /** Work of one tick. It may be slow: the next slot is skipped rather than stacked. */
  onTick: (tick: SlotTick) => Promise<void>;
  /** Run a tick at once on `start()`, not only at the next slot boundary. @default true */
  emitOnStart?: boolean;
  /** How long `stop()` waits for an in-flight tick before aborting it. @default 10000 */
  stopTimeoutMs?: number;
  /** @default the system clock */
  clock?: Clock;
  /** @default silent */
  logger?: Logger;
  /** Called (besides the log line) with every error a tick throws; its own errors are ignored. */
  onError?: (error: unknown, tick: { slot: number }) => void;
}

/** Default deadline of {@link SlotTimer.stop} for an in-flight tick. */
export const DEFAULT_SLOT_TIMER_STOP_TIMEOUT_MS = DEFAULT_STOP_TIMEOUT_MS;

/**
 * A timer that fires on absolute slots (`slot = floor(now / intervalMs)`), the engine of both
 * periodic services.
 *
 * - No drift: every wake-up is re-aimed at the next slot boundary read from the clock, so late
 *   timers do not add up.
 * - No overlap: a slot that comes while the previous tick is still running is skipped (logged),
 *   never stacked.
 * - No burst: after an event-loop stall or a machine sleep the timer fires once, for the current
 *   slot, with the current time; missed slots are not replayed.
 * - A tick that throws is logged, passed to `onError`, and the timer goes on.
 */
export class SlotTimer {
  /** The slot length in ms; replicas agree on slot numbers only when they use the same value. */
  readonly intervalMs: number;
  private readonly onTick: SlotTimerOptions['onTick'];
  private readonly emitOnStart: boolean;
  private readonly stopTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onError: SlotTimerOptions['onError'];
  private timer: TimerHandle | undefined;
  private running = false;
  private lastSlot = Number.NEGATIVE_INFINITY;
  private inFlight: { promise: Promise<void>; controller: AbortController } | undefined;
  private skipped = 0;

  constructor(options: SlotTimerOptions) {
    this.intervalMs = assertMs('intervalMs', options.intervalMs);
    if (typeof options.onTick !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'SlotTimer: onTick must be a function');
    }
    this.onTick = options.onTick;
    this.emitOnStart = assertOptionalBoolean('emitOnStart', options.emitOnStart) ?? true;
    this.stopTimeoutMs = assertMs('stopTimeoutMs', options.stopTimeoutMs ?? DEFAULT_SLOT_TIMER_STOP_TIMEOUT_MS, 0);
    this.clock = assertOptionalMethods('clock', options.clock, CLOCK_METHODS) ?? systemClock;
    this.logger = safeLogger(options.logger ?? silentLogger);
    this.onError = assertOptionalFunction('onError', options.onError);
  }

  /** True between `start()` and `stop()`. */
  get isRunning(): boolean {
    return this.running;
  }

  /** Slots skipped so far because the previous tick was still running. */
  get skippedTicks(): number {
    return this.skipped;
  }

  /** Starts ticking. Calling it while running does nothing (one timer, never two). */
  start(): void {
    if (this.running) return;
    this.running = true;
    // Without emitOnStart the current slot counts as done, so the first tick is the next boundary.
    this.lastSlot = this.emitOnStart ? Number.NEGATIVE_INFINITY : this.slotOf(this.clock.now());
    if (this.emitOnStart) this.fire();
    this.schedule();
  }

  /**
   * Stops ticking: clears the timer, then waits for an in-flight tick up to `stopTimeoutMs`
   * and aborts it past that. Idempotent; nothing is left to keep the process alive.
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const current = this.inFlight;
    if (current === undefined) return;
    if (await settleWithin([current.promise], this.stopTimeoutMs, this.clock)) {
      this.logger.warn({ intervalMs: this.intervalMs, stopTimeoutMs: this.stopTimeoutMs }, 'tick still running at stop deadline; aborting it');
      current.controller.abort();
      // Given up on: a tick that ignores its signal must not block every slot after a restart.
      if (this.inFlight === current) this.inFlight = undefined;
    }
  }

  private slotOf(now: number): number {
    return Math.floor(now / this.intervalMs);
  }

  private schedule(): void {
    if (!this.running) return;
    const now = this.clock.now();
    const nextBoundary = (this.slotOf(now) + 1) * this.intervalMs;
    // At least 1 ms so a clock that reads exactly on a boundary cannot spin.
    this.timer = this.clock.setTimeout(() => this.wake(), Math.max(1, nextBoundary - now));
  }

  private wake(): void {
    this.timer = undefined;
    if (!this.running) return;
    this.fire();
    this.schedule();
  }

  private fire(): void {
    const now = this.clock.now();
    const slot = this.slotOf(now);
    // A timer that fires early (coarse clocks, clock steps backwards) must not tick a slot twice.
    if (slot <= this.lastSlot) return;
    if (this.inFlight !== undefined) {
      this.lastSlot = slot;
      this.skipped += 1;
      this.logger.warn({ slot, intervalMs: this.intervalMs }, 'previous tick still running; skipping this slot');
      return;
    }
    this.lastSlot = slot;
    const controller = new AbortController();
    const promise = this.runTick({ slot, now, signal: controller.signal }).finally(() => {
      if (this.inFlight?.controller === controller) this.inFlight = undefined;
    });
    this.inFlight = { promise, controller };
  }

  private async runTick(tick: SlotTick): Promise<void> {
    try {
      await this.onTick(tick);
    } catch (error) {
      this.logger.error({ slot: tick.slot, intervalMs: this.intervalMs, err: summarizeError(error) }, 'tick failed');
      try {
        this.onError?.(error, { slot: tick.slot });
      } catch {
        // A failing error hook must not take the timer down with it.
      }
    }
  }
}

/**
 * Decides whether this replica emits for `slot`: true without a lease, true for the one replica
 * that takes `<prefix>:<slot>`, false for the others. A lease that fails (its store is down)
 * counts as taken by us: the event id is derived from the slot, so a duplicate is dropped
 * downstream, while a skipped slot would be lost.
 * @internal
 */
export async function holdsSlot(
  lease: Lease | undefined,
  prefix: string,
  tick: { slot: number },
  ttlMs: number,
  logger: Logger,
): Promise<boolean> {
  if (lease === undefined) return true;
  const key = `${prefix}:${tick.slot}`;
  try {
    // Never released: the key must stay taken for the whole slot, and it expires on its own.
    const handle = await lease.tryAcquire(key, ttlMs);
    if (handle === null) {
      logger.debug({ slot: tick.slot, leaseKey: key }, 'another replica holds this slot');
      return false;
    }
    return true;
  } catch (error) {
    logger.warn({ slot: tick.slot, leaseKey: key, err: summarizeError(error) }, 'slot lease unavailable; emitting anyway (the slot-derived id dedupes)');
    return true;
  }
}

import { describe, expect, it, vi } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { SlotTimer, type SlotTick } from '../../src/scheduler/slot-timer.js';
import { FakeClock } from './fake-clock.js';

const INTERVAL = 1_000;

function recorder(): { ticks: SlotTick[]; onTick: (tick: SlotTick) => Promise<void> } {
  const ticks: SlotTick[] = [];
  return { ticks, onTick: async (tick) => void ticks.push(tick) };
}

function capturingLogger(): Logger & { lines: { level: string; obj: Record<string, unknown>; msg?: string }[] } {
  const lines: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('SlotTimer', () => {
  it('ticks on slot boundaries without drift, even when every timer fires late', async () => {
    const clock = new FakeClock(5_000_123, 37);
    const { ticks, onTick } = recorder();
    const timer = new SlotTimer({ intervalMs: INTERVAL, onTick, clock });
    timer.start();
    await clock.advance(500 * INTERVAL);
    await timer.stop();
    // One at start, then one per boundary: 5001..5500.
    expect(ticks).toHaveLength(501);
    expect(ticks[0]).toMatchObject({ slot: 5000, now: 5_000_123 });
    ticks.slice(1).forEach((tick, i) => {
      expect(tick.slot).toBe(5001 + i);
      // Lateness stays 37 ms on the 500th tick: it never accumulates.
      expect(tick.now).toBe((5001 + i) * INTERVAL + 37);
    });
  });

  it('waits for the next boundary when emitOnStart is false', async () => {
    const clock = new FakeClock(10_400);
    const { ticks, onTick } = recorder();
    const timer = new SlotTimer({ intervalMs: INTERVAL, onTick, clock, emitOnStart: false });
    timer.start();
    await clock.advance(599);
    expect(ticks).toHaveLength(0);
    await clock.advance(1);
    expect(ticks.map((t) => t.slot)).toEqual([11]);
    await timer.stop();
  });

  it('skips slots while a slow tick runs instead of stacking them', async () => {
    const clock = new FakeClock(0);
    let running = 0;
    let maxRunning = 0;
    let release!: () => void;
    const calls: number[] = [];
    const logger = capturingLogger();
    const timer = new SlotTimer({
      intervalMs: INTERVAL,
      clock,
      logger,
      onTick: async ({ slot }) => {
        calls.push(slot);
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (calls.length === 1) await new Promise<void>((r) => (release = r));
        running--;
      },
    });
    timer.start();
    await clock.advance(5 * INTERVAL);
    expect(calls).toEqual([0]);
    expect(timer.skippedTicks).toBe(5);
    expect(logger.lines.filter((l) => l.level === 'warn')).toHaveLength(5);
    release();
    await clock.advance(INTERVAL);
    expect(calls).toEqual([0, 6]);
    expect(maxRunning).toBe(1);
    await timer.stop();
  });

  it('ticks once with the current time after a long stall, then resumes on boundaries', async () => {
    const clock = new FakeClock(0);
    const { ticks, onTick } = recorder();
    const timer = new SlotTimer({ intervalMs: INTERVAL, onTick, clock });
    timer.start();
    await clock.advance(INTERVAL);
    expect(ticks).toHaveLength(2);
    clock.jump(3_600_000 + 250); // an hour asleep
    await clock.advance(0);
    expect(ticks).toHaveLength(3);
    expect(ticks[2]).toMatchObject({ slot: 3_601, now: 3_601_250 });
    await clock.advance(750);
    expect(ticks.map((t) => t.slot).slice(2)).toEqual([3_601, 3_602]);
    expect(clock.pending).toBe(1);
    await timer.stop();
  });

  it('reports a failing tick to the logger and onError, and keeps ticking', async () => {
    const clock = new FakeClock(0);
    const logger = capturingLogger();
    const onError = vi.fn();
    let n = 0;
    const timer = new SlotTimer({
      intervalMs: INTERVAL,
      clock,
      logger,
      onError,
      onTick: async () => {
        n++;
        if (n <= 2) throw new Error(`boom ${n}`);
      },
    });
    timer.start();
    await clock.advance(3 * INTERVAL);
    expect(n).toBe(4);
    expect(onError).toHaveBeenCalledTimes(2);
    expect(onError.mock.calls[0]?.[1]).toEqual({ slot: 0 });
    expect(logger.lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual(['tick failed', 'tick failed']);
    await timer.stop();
  });

  it('survives an onError hook that throws and a tick that throws synchronously', async () => {
    const clock = new FakeClock(0);
    let n = 0;
    const timer = new SlotTimer({
      intervalMs: INTERVAL,
      clock,
      onError: () => {
        throw new Error('hook broke');
      },
      onTick: (() => {
        n++;
        throw new Error('sync throw');
      }) as unknown as () => Promise<void>,
    });
    timer.start();
    await clock.advance(2 * INTERVAL);
    expect(n).toBe(3);
    await timer.stop();
  });

  it('keeps one timer when started twice', async () => {
    const clock = new FakeClock(0);
    const { ticks, onTick } = recorder();
    const timer = new SlotTimer({ intervalMs: INTERVAL, onTick, clock });
    timer.start();
    timer.start();
    expect(clock.pending).toBe(1);
    await clock.advance(3 * INTERVAL);
    expect(ticks.map((t) => t.slot)).toEqual([0, 1, 2, 3]);
    await timer.stop();
  });

  it('stop clears the timer, is idempotent and can be followed by a restart', async () => {
    const clock = new FakeClock(0);
    const { ticks, onTick } = recorder();
    const timer = new SlotTimer({ intervalMs: INTERVAL, onTick, clock });
    timer.start();
    await timer.stop();
    await timer.stop();
    expect(clock.pending).toBe(0);
    expect(timer.isRunning).toBe(false);
    await clock.advance(10 * INTERVAL);
    expect(ticks).toHaveLength(1);
    timer.start();
    expect(ticks).toHaveLength(2);
    await timer.stop();
    expect(clock.pending).toBe(0);
  });

  it('stop waits for the in-flight tick', async () => {
    const clock = new FakeClock(0);
    let release!: () => void;
    const timer = new SlotTimer({ intervalMs: INTERVAL, clock, onTick: () => new Promise<void>((r) => (release = r)) });
    timer.start();
    let stopped = false;
    const stopping = timer.stop().then(() => (stopped = true));
    await clock.advance(100);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(stopped).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('stop gives up at its deadline, aborts the tick and leaves no timer', async () => {
    const clock = new FakeClock(0);
    let signal: AbortSignal | undefined;
    const timer = new SlotTimer({
      intervalMs: INTERVAL,
      clock,
      stopTimeoutMs: 500,
      onTick: (tick) => {
        signal = tick.signal;
        return new Promise<void>(() => {});
      },
    });
    timer.start();
    let stopped = false;
    const stopping = timer.stop().then(() => (stopped = true));
    await clock.advance(499);
    expect(stopped).toBe(false);
    await clock.advance(1);
    await stopping;
    expect(signal?.aborted).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it.each([0, -1, -1000, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, 1.5, '1000', null, {}])(
    'rejects intervalMs %s at construction with ERR_INVALID_OPTION',
    (intervalMs) => {
      const build = () => new SlotTimer({ intervalMs: intervalMs as number, onTick: async () => {} });
      expect(build).toThrow();
      try {
        build();
      } catch (error) {
        expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
      }
    },
  );

  it('accepts the largest timer delay, 2^31-1', () => {
    expect(new SlotTimer({ intervalMs: 2 ** 31 - 1, onTick: async () => {} }).intervalMs).toBe(2 ** 31 - 1);
  });
});

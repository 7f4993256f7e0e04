import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotTimer } from '../../src/scheduler/slot-timer.js';
import { FakeClock } from './fake-clock.js';

describe('SlotTimer invariants under random load, lateness and stalls', () => {
  it('never overlaps, never repeats or reorders a slot, and leaves nothing behind', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5_000 }),
        fc.integer({ min: 0, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 12_000 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.oneof(fc.constant({ jump: 0 }), fc.record({ jump: fc.integer({ min: 0, max: 100_000 }) })), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        async (intervalMs, lateness, durations, steps, emitOnStart) => {
          const clock = new FakeClock(1_000_000, lateness);
          const ticks: { slot: number; now: number }[] = [];
          let running = 0;
          let maxRunning = 0;
          const timer = new SlotTimer({
            intervalMs,
            clock,
            emitOnStart,
            stopTimeoutMs: 1_000_000,
            onTick: async ({ slot, now }) => {
              ticks.push({ slot, now });
              running++;
              maxRunning = Math.max(maxRunning, running);
              const duration = durations[ticks.length % durations.length] as number;
              // The tick's work takes fake time, so slow ticks really span slot boundaries.
              await new Promise<void>((r) => clock.setTimeout(r, duration));
              running--;
            },
          });
          timer.start();
          for (const step of steps) {
            clock.jump(step.jump);
            // Timers fire up to `lateness` ms late, so each step must cover that too.
            await clock.advance(intervalMs + lateness);
          }
          const stopping = timer.stop();
          await clock.advance(20_000);
          await stopping;
          // At least one boundary is crossed by the first step, whatever emitOnStart says.
          expect(ticks.length).toBeGreaterThanOrEqual(1);
          expect(maxRunning).toBeLessThanOrEqual(1);
          for (let i = 0; i < ticks.length; i++) {
            const tick = ticks[i] as { slot: number; now: number };
            expect(tick.slot).toBe(Math.floor(tick.now / intervalMs));
            if (i > 0) expect(tick.slot).toBeGreaterThan((ticks[i - 1] as { slot: number }).slot);
          }
          expect(timer.isRunning).toBe(false);
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});

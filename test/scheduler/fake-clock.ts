import type { Clock, TimerHandle } from '../../src/core/clock.js';
import type { EventBus } from '../../src/bus/types.js';
import type { CloudEvent } from '../../src/events/envelope.js';

/** Lets pending promise callbacks (and their follow-ups) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * A manual clock. `advance` runs due timers in time order, each `lateness` ms after its due
 * time (a busy event loop); `jump` moves time without running anything (a stalled process).
 */
export class FakeClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void }>();
  private seq = 0;
  constructor(
    private nowMs: number,
    public lateness = 0,
  ) {}

  now(): number {
    return this.nowMs;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.nowMs + ms, fn });
    return id;
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }
  get pending(): number {
    return this.timers.size;
  }

  async advance(ms: number): Promise<void> {
    const target = this.nowMs + ms;
    // Real timers never fire in the same macrotask that set them.
    await flush();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (next === undefined || entry[1].at < next[1].at) next = entry;
      if (next === undefined || next[1].at + this.lateness > target) break;
      this.timers.delete(next[0]);
      this.nowMs = Math.max(this.nowMs, next[1].at + this.lateness);
      next[1].fn();
      await flush();
    }
    this.nowMs = target;
    await flush();
  }

  jump(ms: number): void {
    this.nowMs += ms;
  }
}

/** A bus that records what is published (the scheduler's only use of the bus). */
export function collectingBus(publish?: (event: CloudEvent) => Promise<void>): EventBus & { events: CloudEvent[] } {
  const events: CloudEvent[] = [];
  return {
    events,
    async publish(event) {
      if (publish) await publish(event);
      events.push(event);
    },
    async subscribe() {
      throw new Error('not used');
    },
    async close() {},
  };
}

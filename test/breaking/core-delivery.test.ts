import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { DeliveryPipeline } from '../../src/bus/delivery.js';
import { createMemoryBus, type MemoryEventBus } from '../../src/bus/memory-bus.js';
import { isNonRetryable, summarizeError } from '../../src/core/errors.js';
import { createEvent } from '../../src/events/envelope.js';
import { taskErrorText } from '../../src/tasks/task-error.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

const buses: MemoryEventBus[] = [];
afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.close({ timeoutMs: 50 })));
});

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const checkDue = (): ReturnType<typeof createEvent> =>
  createEvent('integration.sync.check-due', { timestamp: new Date().toISOString() });

/** Thrown values whose getters, prototype or string conversion throw. */
const hostile: Record<string, () => unknown> = {
  'a null-prototype object': () => Object.create(null),
  'an Error whose message getter throws': () => {
    class Hostile extends Error {
      override get message(): string {
        throw new Error('message getter');
      }
    }
    return new Hostile();
  },
  'an object whose retryable getter throws': () => ({
    get retryable(): boolean {
      throw new Error('retryable getter');
    },
  }),
  'a Proxy that throws on every trap': () =>
    new Proxy(
      {},
      {
        get() {
          throw new Error('get trap');
        },
        getPrototypeOf() {
          throw new Error('prototype trap');
        },
      },
    ),
  'an object whose toString throws': () => ({
    toString() {
      throw new Error('toString');
    },
  }),
};

describe('hostile thrown values', () => {
  for (const [name, make] of Object.entries(hostile)) {
    it(`summarizeError, isNonRetryable and taskErrorText never throw for ${name}`, () => {
      const value = make();
      const summary = summarizeError(value);
      expect(typeof summary.name).toBe('string');
      expect(typeof summary.message).toBe('string');
      expect(typeof isNonRetryable(value)).toBe('boolean');
      expect(typeof taskErrorText(value)).toBe('string');
    });

    it(`DeliveryPipeline.process never throws and dead-letters after maxAttempts for ${name}`, async () => {
      const pipeline = new DeliveryPipeline(
        {
          group: 'g',
          types: ['integration.sync.check-due'],
          handler: () => {
            throw make();
          },
        },
        { maxAttempts: 2, retryBaseMs: 1, retryMaxMs: 1 },
      );
      const body = JSON.stringify(checkDue());
      const first = await pipeline.process({ body, attempt: 1 });
      expect(first.action).toBe('retry');
      const last = await pipeline.process({ body, attempt: 2 });
      expect(last.action).toBe('dead-letter');
    });

    it(`the memory bus dead-letters after maxAttempts (never retries forever) for ${name}`, async () => {
      const bus = createMemoryBus({ maxAttempts: 3, retryBaseMs: 1, retryMaxMs: 2 });
      buses.push(bus);
      let calls = 0;
      await bus.subscribe({
        group: 'g',
        types: ['integration.sync.check-due'],
        handler: () => {
          calls += 1;
          throw make();
        },
      });
      await bus.publish(checkDue());
      await until(() => bus.deadLetters().length === 1);
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBe(3);
      expect(bus.deadLetters()[0]?.reason).toBe('max_attempts');
    });
  }
});

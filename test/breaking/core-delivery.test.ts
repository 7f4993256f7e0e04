import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryPipeline } from '../../src/bus/delivery.js';
import { createMemoryBus, type MemoryEventBus } from '../../src/bus/memory-bus.js';
import { isNonRetryable, summarizeError } from '../../src/core/errors.js';
import { createEvent } from '../../src/events/envelope.js';
import { taskErrorText } from '../../src/tasks/task-error.js';
import { failOnUnhandledRejections } from '../support/unhandled.js';

failOnUnhandledRejections();

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

describe('hooks that throw, reject or hang', () => {
  const throwingLogger = {
    debug: () => {
      throw new Error('log');
    },
    info: () => {
      throw new Error('log');
    },
    warn: () => {
      throw new Error('log');
    },
    error: () => {
      throw new Error('log');
    },
  };
  const rejectingLogger = {
    debug: () => Promise.reject(new Error('log')),
    info: () => Promise.reject(new Error('log')),
    warn: () => Promise.reject(new Error('log')),
    error: () => Promise.reject(new Error('log')),
  } as unknown as typeof throwingLogger;
  const cases: Record<string, Parameters<typeof createMemoryBus>[0]> = {
    'a logger that throws': { logger: throwingLogger },
    'a logger that returns rejecting promises': { logger: rejectingLogger },
    'an audit sink and logger that both throw': {
      logger: throwingLogger,
      audit: {
        record: () => {
          throw new Error('audit');
        },
      },
    },
    'an audit sink that rejects': { audit: { record: () => Promise.reject(new Error('audit')) } },
    'an audit sink that never settles': { audit: { record: () => new Promise<void>(() => {}) } },
    'an onDeadLetter that throws': {
      onDeadLetter: () => {
        throw new Error('dl');
      },
    },
    'an onDeadLetter that rejects': { onDeadLetter: () => Promise.reject(new Error('dl')) },
  };
  for (const [name, options] of Object.entries(cases)) {
    it(`${name}: publish resolves, handled events ack, failing ones dead-letter after maxAttempts`, async () => {
      const bus = createMemoryBus({ maxAttempts: 2, retryBaseMs: 1, retryMaxMs: 2, ...options });
      buses.push(bus);
      let good = 0;
      let bad = 0;
      await bus.subscribe({ group: 'good', types: ['integration.sync.check-due'], handler: async () => void (good += 1) });
      await bus.subscribe({
        group: 'bad',
        types: ['integration.sync.check-due'],
        handler: async () => {
          bad += 1;
          throw new Error('handler');
        },
      });
      await expect(bus.publish(checkDue())).resolves.toBeUndefined();
      await until(() => bus.deadLetters().length === 1 && good === 1);
      await new Promise((r) => setTimeout(r, 30));
      expect(bad).toBe(2);
      expect(good).toBe(1);
    });
  }

  it('an idempotency store that hangs cannot hold close() past its deadline', async () => {
    const bus = createMemoryBus({ idempotency: { has: () => new Promise<boolean>(() => {}), add: async () => {} } });
    await bus.subscribe({ group: 'g', types: ['integration.sync.check-due'], handler: async () => {} });
    await bus.publish(checkDue());
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await bus.close({ timeoutMs: 50 });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a handler that resolves after close() does not ack or lose its event', async () => {
    const bus = createMemoryBus();
    let handled = 0;
    await bus.subscribe({
      group: 'g',
      types: ['integration.sync.check-due'],
      handler: async () => {
        await new Promise((r) => setTimeout(r, 100));
        handled += 1;
      },
    });
    await bus.publish(checkDue());
    await new Promise((r) => setTimeout(r, 20));
    await bus.close({ timeoutMs: 10 });
    await new Promise((r) => setTimeout(r, 150));
    expect(handled).toBe(1);
    await expect(bus.publish(checkDue())).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('a publish storm during close: every publish resolves or rejects ERR_CLOSED, none hangs', async () => {
    const bus = createMemoryBus();
    await bus.subscribe({ group: 'g', types: ['integration.sync.check-due'], handler: async () => {}, concurrency: 4 });
    const publishes = Array.from({ length: 500 }, (_, i) => (i === 250 ? bus.close() : bus.publish(checkDue())));
    const results = await Promise.allSettled(publishes);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ERR_CLOSED' });
    await expect(bus.subscribe({ group: 'late', types: ['integration.sync.check-due'], handler: async () => {} })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});

describe('oversized payloads', () => {
  it('a 10 MB payload is dead-lettered with only its start kept (memory and the hook)', async () => {
    const { createMemoryBroker } = await import('../../src/bus/memory-bus.js');
    const broker = createMemoryBroker();
    const hooked: unknown[] = [];
    const bus = createMemoryBus({ broker, onDeadLetter: (r) => void hooked.push(r) });
    buses.push(bus);
    let calls = 0;
    await bus.subscribe({ group: 'g', types: ['integration.sync.check-due'], handler: async () => void (calls += 1) });
    broker.publishRaw('integration.sync.check-due', `{"data":"${'a'.repeat(10 * 1024 * 1024)}"}`);
    broker.publishRaw('integration.sync.check-due', new Uint8Array(10 * 1024 * 1024).fill(0x61));
    await until(() => bus.deadLetters().length === 2);
    for (const record of [...bus.deadLetters(), ...hooked]) {
      expect((record as { reason: string }).reason).toBe('unparsable');
      expect(((record as { payload?: string }).payload ?? '').length).toBeLessThanOrEqual(4097);
    }
    expect(calls).toBe(0);
  });
});

describe('concurrency edges', () => {
  for (const concurrency of [1, 10_000]) {
    it(`concurrency ${concurrency}: 2000 events handled exactly once each`, async () => {
      const bus = createMemoryBus();
      buses.push(bus);
      const seen = new Map<string, number>();
      let active = 0;
      let peak = 0;
      await bus.subscribe({
        group: 'g',
        types: ['integration.sync.check-due'],
        concurrency,
        handler: async (event) => {
          active += 1;
          peak = Math.max(peak, active);
          await new Promise((r) => setImmediate(r));
          seen.set(event.id, (seen.get(event.id) ?? 0) + 1);
          active -= 1;
        },
      });
      await Promise.all(Array.from({ length: 2000 }, () => bus.publish(checkDue())));
      await until(() => seen.size === 2000, 20_000);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      expect(peak).toBeLessThanOrEqual(concurrency);
    });
  }

  it('concurrency 0, -1, 1.5 and 10001 are refused with ERR_INVALID_OPTION', async () => {
    const bus = createMemoryBus();
    buses.push(bus);
    for (const concurrency of [0, -1, 1.5, 10_001, Number.NaN]) {
      await expect(bus.subscribe({ group: 'g', types: ['x'], handler: async () => {}, concurrency })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    }
  });
});

describe('an onDeadLetter hook that never settles', () => {
  it('does not hold the dead letter (or the member) forever', async () => {
    const bus = createMemoryBus({ maxAttempts: 1, closeTimeoutMs: 100, onDeadLetter: () => new Promise<void>(() => {}) });
    buses.push(bus);
    let calls = 0;
    await bus.subscribe({
      group: 'g',
      types: ['integration.sync.check-due'],
      handler: async () => {
        calls += 1;
        throw new Error('always');
      },
    });
    await bus.publish(checkDue());
    await bus.publish(checkDue());
    await until(() => bus.deadLetters().length === 2, 5000);
    expect(calls).toBe(2);
  });
});

describe('DeliveryPipeline.process with an already-decoded hostile body', () => {
  const bodies: Record<string, () => object> = {
    'getters that throw on type, id and data': () => ({
      specversion: '1.0',
      source: 's',
      get type(): string {
        throw new Error('type');
      },
      get id(): string {
        throw new Error('id');
      },
      get data(): unknown {
        throw new Error('data');
      },
    }),
    'invalid envelope whose data getters throw': () => ({
      specversion: '2.0',
      id: 'x',
      type: 'integration.sync.check-due',
      data: {
        get integrationId(): string {
          throw new Error('integrationId');
        },
      },
    }),
    'a Proxy': () =>
      new Proxy(
        {},
        {
          get() {
            throw new Error('get');
          },
          ownKeys() {
            throw new Error('ownKeys');
          },
          getOwnPropertyDescriptor() {
            throw new Error('descriptor');
          },
        },
      ),
  };
  for (const [name, make] of Object.entries(bodies)) {
    it(`${name}: dead-lettered as invalid, never throws`, async () => {
      const pipeline = new DeliveryPipeline({ group: 'g', types: ['integration.sync.check-due'], handler: async () => {} }, { audit: { record: () => {} } });
      const outcome = await pipeline.process({ body: make(), attempt: 1 });
      expect(outcome.action).toBe('dead-letter');
    });
  }
});

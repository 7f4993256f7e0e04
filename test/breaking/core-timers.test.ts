import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EventBus } from '../../src/bus/types.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { SyncSchedulerService } from '../../src/scheduler/sync-scheduler-service.js';
import { TokenRefreshService } from '../../src/tokens/token-refresh-service.js';
import { failOnUnhandledRejections } from '../support/unhandled.js';

failOnUnhandledRejections();

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A bus whose publish hangs (ignoring its signal) while `hang` is true. */
function hangingBus(): { bus: EventBus; published: CloudEvent[]; setHang(v: boolean): void } {
  let hang = true;
  const published: CloudEvent[] = [];
  const bus: EventBus = {
    publish: (event) => {
      if (hang) return new Promise<void>(() => {});
      published.push(event);
      return Promise.resolve();
    },
    subscribe: () => Promise.reject(new Error('unused')),
    close: () => Promise.resolve(),
  };
  return { bus, published, setHang: (v) => (hang = v) };
}

describe('timers: stop while a publish hangs, then start again', () => {
  it('SyncSchedulerService ticks again after a restart', async () => {
    const { bus, published, setHang } = hangingBus();
    const scheduler = new SyncSchedulerService({ bus, intervalMs: 40, stopTimeoutMs: 20 });
    scheduler.start();
    await new Promise((r) => setTimeout(r, 30));
    await scheduler.stop();
    setHang(false);
    scheduler.start();
    await until(() => published.length >= 2);
    await scheduler.stop();
    await scheduler.stop();
    expect(scheduler.isRunning).toBe(false);
  });

  it('TokenRefreshService ticks again after a restart', async () => {
    const { bus, published, setHang } = hangingBus();
    const http = { request: async () => ({ status: 200, headers: {}, text: '', attempts: 1 }) };
    const tokens = new TokenRefreshService({ bus, http, baseUrl: 'http://127.0.0.1:9', intervalMs: 40, stopTimeoutMs: 20 });
    tokens.start();
    await new Promise((r) => setTimeout(r, 30));
    await tokens.stop();
    setHang(false);
    tokens.start();
    await until(() => published.length >= 2);
    await tokens.stop();
  });
});

function runFixture(mode: 'stop' | 'sigterm'): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const script = fileURLToPath(new URL('./core-loop.fixture.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (mode === 'sigterm' && stdout.includes('ready\n') && !child.killed) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // Killed by the watchdog means something kept the event loop alive after the shutdown.
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 25_000);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

describe('the whole loop in a child process', () => {
  for (const mode of ['stop', 'sigterm'] as const) {
    it(`exits on its own after the README shutdown sequence (${mode})`, async () => {
      const result = await runFixture(mode);
      expect({ code: result.code, signal: result.signal, stderr: result.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      const summary = JSON.parse(result.stdout.replace('ready\n', '').trim()) as { syncs: number; refreshed: number; tasks: number };
      expect(summary.syncs).toBeGreaterThan(0);
      expect(summary.tasks).toBeGreaterThan(0);
      if (mode === 'stop') expect(summary.refreshed).toBeGreaterThan(0);
    }, 40_000);
  }
});

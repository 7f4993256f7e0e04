/**
 * Runs the demo host as a user would (`npm run demo`, shortened) in its own process and checks
 * its summary: the whole loop ran, all seven event types appeared, the process ended by itself,
 * and no token or secret reached its output.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '../..');

function runDemo(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/main.ts', ...args], { cwd: root, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`demo did not exit by itself within ${timeoutMs} ms:\n${output.slice(-2000)}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, output, signal });
    });
  });
}

function figure(output: string, pattern: RegExp): number {
  const match = pattern.exec(output);
  if (!match?.[1]) throw new Error(`summary line ${pattern} not found in:\n${output.slice(-1500)}`);
  return Number(match[1]);
}

describe('npm run demo', () => {
  it('runs the whole loop on the memory bus and exits 0 with a complete summary', async () => {
    const { code, output } = await runDemo(['--duration', '6000', '--webhooks', '30'], 90_000);
    expect(code, output.slice(-3000)).toBe(0);
    expect(output).toContain('all seven event types appeared');
    for (const type of ['check-due', 'check-expiring', 'token.refreshed', 'refresh.failed', 'sync.scheduled', 'webhook.received', 'refresh-requested']) {
      expect(figure(output, new RegExp(`integration\\.[\\w.-]*${type.replace('.', '\\.')}\\s+(\\d+)`)), type).toBeGreaterThan(0);
    }
    // Refreshes went through the real OAuth server: three live grants, one revoked (invalid_grant).
    expect(figure(output, /token refreshes: ok (\d+)/)).toBeGreaterThanOrEqual(3);
    expect(figure(output, /failed (\d+), skipped/)).toBeGreaterThanOrEqual(1);
    expect(figure(output, /(\d+) invalid_grant/)).toBeGreaterThanOrEqual(1);
    // The webhook storm was coalesced: far fewer sync runs than webhooks.
    const received = figure(output, /webhooks: (\d+) received/);
    const runs = figure(output, /(\d+) sync runs/);
    expect(received).toBe(30);
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThan(received / 3);
    // The sync service really paged the provider with live access tokens.
    expect(figure(output, /provider pages served: (\d+)/)).toBeGreaterThan(0);
    // Nothing left hanging at shutdown.
    expect(figure(output, /^\s+pending\s+(\d+)$/m)).toBe(0);
    expect(figure(output, /^\s+running\s+(\d+)$/m)).toBe(0);
    // No refresh token, client secret, service credential or JWT in anything printed.
    expect(output).not.toMatch(/rt-[0-9a-f]{8}-|demo-secret-|svc-[0-9a-f]{8}|eyJ[A-Za-z0-9_-]{10,}|Bearer /);
  }, 120_000);

  for (const bus of ['redis://127.0.0.1:6379', 'nats://127.0.0.1:4222', 'amqp://guest:guest@127.0.0.1:5672']) {
    it(`runs the same loop with --bus ${bus.replace(/\/\/.*@/, '//')}`, async () => {
      const { code, output } = await runDemo(['--duration', '5000', '--quiet', '--bus', bus], 90_000);
      expect(code, output.slice(-3000)).toBe(0);
      expect(output).toContain('all seven event types appeared');
      expect(output).toMatch(new RegExp(`bus (Redis Streams|NATS JetStream|RabbitMQ) at`));
      expect(figure(output, /token refreshes: ok (\d+)/)).toBeGreaterThanOrEqual(3);
      expect(figure(output, /^\s+pending\s+(\d+)$/m)).toBe(0);
      expect(figure(output, /^\s+running\s+(\d+)$/m)).toBe(0);
    }, 100_000);
  }

  it('fails fast, says why and exits by itself when the broker cannot be reached', async () => {
    for (const bus of ['redis://127.0.0.1:1', 'nats://127.0.0.1:1', 'amqp://user:hunter2@127.0.0.1:1']) {
      const { code, output } = await runDemo(['--bus', bus], 45_000);
      expect(code, output).toBe(1);
      expect(output).toMatch(/demo failed: cannot reach (Redis|NATS|RabbitMQ)/);
      expect(output).not.toContain('hunter2');
    }
  }, 150_000);

  it('rejects a bad --duration with a clear message and exit code 2', async () => {
    const { code, output } = await runDemo(['--duration', 'soon'], 60_000);
    expect(code).toBe(2);
    expect(output).toMatch(/--duration must be/);
    expect(output).toMatch(/usage: npm run demo/);
  }, 70_000);
});

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('./fixtures/start-stop.ts', import.meta.url));

describe('real timers', () => {
  it('ticks, stops, and lets the process exit on its own', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(killer);
    // Killed by the watchdog means something kept the event loop alive after stop().
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const counts = JSON.parse(stdout.trim()) as { checkDue: number; checkExpiring: number };
    expect(counts.checkDue).toBeGreaterThanOrEqual(2);
    expect(counts.checkExpiring).toBeGreaterThanOrEqual(2);
  });
});

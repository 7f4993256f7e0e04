/**
 * Shared pieces of the adapter-breaking tests: unique names, poll-until, a recording logger, an
 * unhandled-rejection trap and a child-process exit check.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../src/core/logger.js';
import type { AuditRecord, AuditSink } from '../../src/audit/types.js';
import { createEvent } from '../../src/events/envelope.js';
import { expect } from 'vitest';

export const CHECK_DUE = 'integration.sync.check-due';

/** A short random suffix for names no other test file uses. */
export function suffix(): string {
  return randomBytes(5).toString('hex');
}

/** A valid contract event. */
export function checkDue(id?: string) {
  return createEvent(CHECK_DUE, { timestamp: new Date().toISOString() }, id === undefined ? {} : { id });
}

/** A valid check-due event whose data carries `canary` where a secret would sit (extra fields are kept). */
export function checkDueWithSecret(canary: string) {
  return createEvent(CHECK_DUE, { timestamp: new Date().toISOString(), integrationId: 'int-1', accessToken: canary, nested: { refreshToken: canary } } as never);
}

/** Polls `check` until truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A logger that keeps every line. */
export function recordingLogger(): Logger & { lines: Array<{ level: string; msg: string | undefined; obj: unknown }> } {
  const lines: Array<{ level: string; msg: string | undefined; obj: unknown }> = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) => void lines.push({ level, msg, obj });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** An audit sink that keeps every record. */
export function recordingAudit(): AuditSink & { records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  return { records, record: (r: AuditRecord) => void records.push(r) };
}

/** Collects unhandled rejections for the whole file; assert `list` is empty at the end. */
export function trapUnhandled(): { list: unknown[]; dispose(): void } {
  const list: unknown[] = [];
  const onRejection = (reason: unknown): void => void list.push(reason);
  process.on('unhandledRejection', onRejection);
  return { list, dispose: () => process.off('unhandledRejection', onRejection) };
}

/**
 * Runs test/breaking/adapter-exit-child.ts for `kind` and resolves with its exit code and output;
 * kills it (and resolves code null) when it does not exit by itself within `timeoutMs`.
 */
export function runExitChild(kind: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
  const script = fileURLToPath(new URL('./adapter-exit-child.ts', import.meta.url));
  const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(tsx, [script, kind, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal === 'SIGKILL' ? null : code, out });
    });
  });
}

/** Under load with random failures: every event was either handled exactly once or dead-lettered, never both, never lost. */
export function expectHandledOnceOrDeadLettered(ids: readonly string[], successes: ReadonlyMap<string, number>, dead: ReadonlySet<string | undefined>): void {
  for (const id of ids) expect(Number(successes.has(id)) + Number(dead.has(id)), id).toBe(1);
  expect([...successes.values()].every((n) => n === 1)).toBe(true);
}

/** Deletes every key under `prefix` (in batches) and drops the client. */
export async function deleteKeysAndDisconnect(redis: { keys(pattern: string): Promise<string[]>; del(...keys: string[]): Promise<number>; disconnect(): void }, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  redis.disconnect();
}

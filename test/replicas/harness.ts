/**
 * The multi-process harness of the replica tests: spawns replica workers, publishes a batch,
 * SIGKILLs one replica while it has handlers in flight, waits for the rest to finish the work,
 * stops the survivors with SIGTERM and reads back, from Redis, what every replica handled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { EventBus } from '../../src/bus/types.js';
import { createEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import type { WorkerConfig } from './replica-worker.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const NATS_URL = 'nats://127.0.0.1:4222';
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

const WORKER = fileURLToPath(new URL('./replica-worker.ts', import.meta.url));
/** The scheduler replica (scheduler-worker.ts). */
export const SCHEDULER_WORKER = fileURLToPath(new URL('./scheduler-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A short unique name for this run (lowercase letters and digits only, valid on every broker). */
export function uniqueNamespace(label: string): string {
  return `${label}${randomBytes(4).toString('hex')}`;
}

/** Polls `check` until it is truthy; throws after `timeoutMs` with `what`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A running replica process. */
export interface Replica {
  readonly child: ChildProcess;
  readonly pid: number;
  /** States the worker reported on stdout (`ready`, `closed`, `error`). */
  readonly states: string[];
  /** Its stderr, for failure messages. */
  stderr(): string;
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

/** Every replica spawned by this test file, so `killAll()` can reap them even after a failure. */
const spawned = new Set<Replica>();

/** Starts `worker` (default: the consumer replica) with `config` as its JSON argument. */
export function spawnReplica(config: object, worker: string = WORKER): Replica {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, JSON.stringify(config)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const states: string[] = [];
  let err = '';
  let out = '';
  let done = false;
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      try {
        const message = JSON.parse(line) as { state: string; message?: string };
        states.push(message.state);
        if (message.message) err += `${message.message}\n`;
      } catch {
        // Not a protocol line (a stray log): ignore.
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err = (err + chunk).slice(-8_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  const replica: Replica = {
    child,
    pid: child.pid ?? -1,
    states,
    stderr: () => err,
    exited,
    hasExited: () => done,
  };
  spawned.add(replica);
  void exited.then(() => spawned.delete(replica));
  return replica;
}

/** SIGKILLs every replica still running (afterAll, and on any failure path). */
export async function killAll(): Promise<void> {
  const running = [...spawned];
  for (const replica of running) if (!replica.hasExited()) replica.child.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
}

export async function waitReady(replica: Replica, timeoutMs = 45_000): Promise<void> {
  await until(
    () => {
      if (replica.states.includes('error') || replica.hasExited()) {
        throw new Error(`replica ${replica.pid} failed to start: ${replica.stderr()}`);
      }
      return replica.states.includes('ready');
    },
    timeoutMs,
    `replica ${replica.pid} ready`,
  );
}

/** Waits for `replica` to exit, failing (with its stderr) after `timeoutMs`. */
export async function exitWithin(replica: Replica, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      replica.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`replica ${replica.pid} did not exit within ${timeoutMs} ms: ${replica.stderr()}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One record of the handlers' log. */
export interface LogRecord {
  /** `start`/`done` from consumer replicas, `pub` from scheduler replicas. */
  phase: 'start' | 'done' | 'pub';
  id: string;
  pid: number;
  at: number;
}

export async function readLog(redis: Redis, key: string): Promise<LogRecord[]> {
  const lines = await redis.lrange(key, 0, -1);
  return lines.map((line) => {
    const [phase, id, pid, at] = line.split('|');
    return { phase: phase as LogRecord['phase'], id: id!, pid: Number(pid), at: Number(at) };
  });
}

/** Deletes every Redis key under `pattern` (SCAN, so it never blocks the server). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** What one kill scenario measured. */
export interface KillReport {
  published: number;
  /** Distinct ids with a `done` record. */
  handled: number;
  lost: string[];
  /** Ids the killed replica had started and not finished when it died. */
  inFlightAtKill: string[];
  /** Ids the killed replica had finished (recorded `done`) whose ack died with it: handled again. */
  handledTwice: string[];
  /** Ids whose handler started more than once (in flight at the kill, or done but unacked). */
  startedTwice: string[];
  /** Ids a surviving replica started (or finished) more than once, or two survivors both ran. */
  survivorRepeats: string[];
  /** Ms from the SIGKILL to the last of the killed replica's unfinished ids done elsewhere. */
  recoveryMs: number;
  /** Already-handled ids published again to the survivors after the run. */
  republished: number;
  /** Of those, the ids a handler ran again (must be none: the survivors share one idempotency store). */
  rerunAfterRepublish: string[];
  /** Ms from SIGTERM to exit, per survivor. */
  shutdownMs: number[];
  exits: Array<{ code: number | null; signal: NodeJS.Signals | null }>;
  victimDoneBeforeKill: number;
}

export interface KillScenario {
  broker: WorkerConfig['broker'];
  namespace: string;
  /** The test process's own bus on the same broker namespace. */
  publisher: EventBus;
  /** True when the broker holds nothing more for the group (nothing undelivered, nothing unacked). */
  drained: () => Promise<boolean>;
  redis: Redis;
  events?: number;
  concurrency?: number;
  handlerMs?: number;
  /** NATS names. */
  stream?: string;
  subjectPrefix?: string;
}

/**
 * Three replicas, one group; N events; SIGKILL one replica mid-handler; SIGTERM the others once
 * every event is done and the broker is drained. Returns what happened, for the test to assert.
 */
export async function runKillScenario(scenario: KillScenario): Promise<KillReport> {
  const { namespace, redis } = scenario;
  const events = scenario.events ?? 300;
  const concurrency = scenario.concurrency ?? 3;
  const logKey = `${namespace}:log`;
  const config: WorkerConfig = {
    broker: scenario.broker,
    namespace,
    group: 'replicas',
    types: [EventTypes.SyncScheduled],
    logKey,
    concurrency,
    // Long enough that a replica is almost always mid-handler when the kill lands, even on a loaded machine.
    handlerMs: scenario.handlerMs ?? 150,
    redisUrl: REDIS_URL,
    natsUrl: NATS_URL,
    amqpUrl: AMQP_URL,
    stream: scenario.stream ?? '',
    subjectPrefix: scenario.subjectPrefix ?? '',
  };

  // The first replica creates the stream / queue / group; the other two join it.
  const first = spawnReplica(config);
  await waitReady(first);
  const others = [spawnReplica(config), spawnReplica(config)];
  await Promise.all(others.map((r) => waitReady(r)));
  const replicas = [first, ...others];
  const victim = replicas[1]!;

  const ids = Array.from({ length: events }, (_, i) => `${namespace}-${String(i).padStart(4, '0')}`);
  const scheduledAt = new Date().toISOString();
  const publishAll = async (batch: string[]): Promise<void> => {
    for (let i = 0; i < batch.length; i += 20) {
      await Promise.all(
        batch.slice(i, i + 20).map((id) =>
          scenario.publisher.publish(
            createEvent(EventTypes.SyncScheduled, { integrationId: 'int_crm', tenantId: `tenant_${id.slice(-2)}`, trigger: 'schedule', scheduledAt }, { id, source: '/replica-test' }),
          ),
        ),
      );
    }
  };
  const publishing = publishAll(ids);
  // A publish failure must fail the test, not float away as an unhandled rejection.
  publishing.catch(() => {});

  // Kill the victim once it has finished a few and has some in flight.
  let killedAt = 0;
  let victimDoneBeforeKill = 0;
  await until(
    async () => {
      const log = await readLog(redis, logKey);
      const started = new Set(log.filter((r) => r.pid === victim.pid && r.phase === 'start').map((r) => r.id));
      const done = new Set(log.filter((r) => r.pid === victim.pid && r.phase === 'done').map((r) => r.id));
      const inFlight = [...started].filter((id) => !done.has(id));
      if (done.size >= 5 && inFlight.length > 0) {
        victim.child.kill('SIGKILL');
        killedAt = Date.now();
        victimDoneBeforeKill = done.size;
        return true;
      }
      return false;
    },
    30_000,
    `replica ${victim.pid} to handle a few events and have more in flight`,
  );
  const killed = await victim.exited;
  if (killed.signal !== 'SIGKILL') throw new Error(`victim ended with ${JSON.stringify(killed)}, not SIGKILL`);
  await publishing;
  const publishedAt = Date.now();

  const survivors = replicas.filter((r) => r !== victim);
  await until(
    async () => {
      for (const r of survivors) if (r.hasExited()) throw new Error(`replica ${r.pid} died: ${r.stderr()}`);
      const log = await readLog(redis, logKey);
      return new Set(log.filter((r) => r.phase === 'done').map((r) => r.id)).size >= events;
    },
    60_000,
    `all ${events} events handled`,
  );
  // Every id is done; let redeliveries of already-done ids (skipped as duplicates) settle too.
  await until(scenario.drained, 30_000, 'the broker to hold nothing more for the group');

  // Publish already-handled ids again (as a retrying producer would): whichever survivor gets one,
  // the shared idempotency store knows it, so no handler runs. The first ids mix every replica's work.
  const again = ids.slice(0, 30);
  // Past the NATS test stream's 1 s duplicate window, so JetStream delivers them rather than dropping them itself.
  await until(() => Date.now() - publishedAt > 1_500, 5_000, 'the duplicate window to pass');
  const republishedAt = Date.now();
  await publishAll(again);
  await until(scenario.drained, 30_000, 'the republished events to be taken and acked');

  const shutdownMs: number[] = [];
  const exits = await Promise.all(
    survivors.map(async (r) => {
      const sentAt = Date.now();
      r.child.kill('SIGTERM');
      const exit = await exitWithin(r, 20_000);
      shutdownMs.push(Date.now() - sentAt);
      if (!r.states.includes('closed')) throw new Error(`replica ${r.pid} exited without closing: ${r.stderr()}`);
      return exit;
    }),
  );

  const log = await readLog(redis, logKey);
  const victimStarted = new Set(log.filter((r) => r.pid === victim.pid && r.phase === 'start' && r.at <= killedAt).map((r) => r.id));
  const victimDone = new Set(log.filter((r) => r.pid === victim.pid && r.phase === 'done').map((r) => r.id));
  const inFlightAtKill = [...victimStarted].filter((id) => !victimDone.has(id));
  const count = (phase: LogRecord['phase'], filter: (r: LogRecord) => boolean = () => true): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const r of log) if (r.phase === phase && filter(r)) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    return counts;
  };
  const done = count('done');
  const started = count('start');
  const survivorStarted = count('start', (r) => r.pid !== victim.pid);
  const survivorDone = count('done', (r) => r.pid !== victim.pid);
  const repeated = (m: Map<string, number>): string[] => [...m].filter(([, n]) => n > 1).map(([id]) => id);
  const rerunAfterRepublish = [...new Set(log.filter((r) => r.phase === 'start' && r.at >= republishedAt && again.includes(r.id)).map((r) => r.id))];
  const lastRecovered = Math.max(killedAt, ...log.filter((r) => r.phase === 'done' && r.pid !== victim.pid && inFlightAtKill.includes(r.id)).map((r) => r.at));

  return {
    published: events,
    handled: done.size,
    lost: ids.filter((id) => !done.has(id)),
    inFlightAtKill,
    handledTwice: repeated(done),
    startedTwice: repeated(started),
    survivorRepeats: [...new Set([...repeated(survivorStarted), ...repeated(survivorDone)])],
    recoveryMs: lastRecovered - killedAt,
    republished: again.length,
    rerunAfterRepublish,
    shutdownMs,
    exits,
    victimDoneBeforeKill,
  };
}

/** The checks every broker must pass; returns the figures for the report line. */
export function describeReport(broker: string, report: KillReport): string {
  return (
    `${broker}: published ${report.published}, handled ${report.handled}, lost ${report.lost.length}, ` +
    `in flight at kill ${report.inFlightAtKill.length}, handled twice ${report.handledTwice.length}, ` +
    `started twice ${report.startedTwice.length}, re-run of ${report.republished} republished ${report.rerunAfterRepublish.length}, recovery ${report.recoveryMs} ms, shutdown ${report.shutdownMs.join('/')} ms`
  );
}

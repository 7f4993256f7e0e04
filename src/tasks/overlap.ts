import { abortReason } from '../core/abort.js';
import { IntegrationSyncError } from '../core/errors.js';
import type { SyncTask } from './types.js';

/**
 * What happens to a sync that arrives while another runs for the same integration and tenant.
 *
 * | policy | arrivals while a sync runs | syncs for N arrivals |
 * |---|---|---|
 * | `coalesce` (default) | the first waits as the one follow-up run; later ones merge into it and are recorded `skipped` | 2 |
 * | `queue` | each waits its turn and runs, in arrival order | N |
 * | `skip` | recorded `skipped` at once | 1 |
 */
export type OverlapPolicy = 'coalesce' | 'queue' | 'skip';

/** The overlap policies, for option checks. */
export const OVERLAP_POLICIES: readonly OverlapPolicy[] = ['coalesce', 'queue', 'skip'];

/** What {@link SyncOverlapRunner.submit} did with a task. */
export type OverlapOutcome =
  /** The task ran (after waiting its turn, if it had to) and `run` resolved. */
  | {
      /** The task ran. */
      outcome: 'ran';
      /** The task that ran. */
      task: SyncTask;
    }
  /**
   * Merged into the waiting follow-up `into` (policy `coalesce`). `widened` is true when this
   * merge cleared the follow-up's `entityType` and `filters` (scopes differed: full sync).
   */
  | {
      /** The task merged into a waiting one and will not run itself. */
      outcome: 'coalesced';
      /** The waiting follow-up task that will run in its place. */
      into: SyncTask;
      /** True when the merge turned the follow-up into a full sync. */
      widened: boolean;
    }
  /** Dropped because `runningTaskId` was running (policy `skip`). */
  | {
      /** The task was dropped. */
      outcome: 'skipped';
      /** Id of the task that was running for the same integration and tenant. */
      runningTaskId: string;
    };

/** Runs one task; the runner calls it at most once per submitted task. */
export type OverlapRunFn = (task: SyncTask, signal: AbortSignal) => Promise<void>;

/** Options of {@link SyncOverlapRunner}. */
export interface SyncOverlapRunnerOptions {
  /** @default 'coalesce' */
  policy?: OverlapPolicy;
  /** Runs a task: the consumer's status bookkeeping around `IntegrationSyncService.execute`. */
  run: OverlapRunFn;
}

interface Waiter {
  task: SyncTask;
  signal: AbortSignal;
  resolve(outcome: OverlapOutcome): void;
  reject(error: unknown): void;
  detach(): void;
}

interface KeyState {
  running: SyncTask;
  waiting: Waiter[];
}

const neverAborted = new AbortController().signal;

/**
 * One sync per (integrationId, tenantId) at a time in this process; what arrives meanwhile
 * follows the {@link OverlapPolicy}. Keys are independent: different integrations or tenants run
 * in parallel. Waiting is only in memory, so a waiting task's event must stay unacked until
 * {@link SyncOverlapRunner.submit} settles (the consumer's handler awaits it): if the process
 * dies, the broker redelivers it.
 */
export class SyncOverlapRunner {
  /** The policy in force. */
  readonly policy: OverlapPolicy;
  private readonly runFn: OverlapRunFn;
  private readonly states = new Map<string, KeyState>();
  private readonly held = new WeakMap<SyncTask, Promise<void>>();

  constructor(options: SyncOverlapRunnerOptions) {
    const policy = options.policy ?? 'coalesce';
    if (!OVERLAP_POLICIES.includes(policy)) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `overlap must be one of ${OVERLAP_POLICIES.join(', ')}; got ${String(policy).slice(0, 40)}`);
    }
    if (typeof options.run !== 'function') throw new IntegrationSyncError('ERR_INVALID_OPTION', 'SyncOverlapRunner: run must be a function');
    this.policy = policy;
    this.runFn = options.run;
  }

  /** Keys with a sync running now. */
  get activeKeys(): number {
    return this.states.size;
  }

  /** True while a sync runs for this integration and tenant. */
  isRunning(integrationId: string, tenantId: string): boolean {
    return this.states.has(overlapKey(integrationId, tenantId));
  }

  /**
   * Runs `task` now, later, or not at all, per the policy. Resolves once that is settled (for a
   * task that runs: once `run` resolved); rejects with `run`'s error, or with `signal`'s reason
   * when it aborts while the task waits (the task then never runs here).
   */
  submit(task: SyncTask, signal: AbortSignal = neverAborted): Promise<OverlapOutcome> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    const key = overlapKey(task.integrationId, task.tenantId);
    const state = this.states.get(key);
    if (state === undefined) {
      const fresh: KeyState = { running: task, waiting: [] };
      this.states.set(key, fresh);
      return this.execute(key, fresh, task, signal);
    }
    if (this.policy === 'skip') return Promise.resolve({ outcome: 'skipped', runningTaskId: state.running.id });
    if (this.policy === 'coalesce' && state.waiting.length > 0) {
      const followUp = state.waiting[0] as Waiter;
      const widened = !sameScope(followUp.task, task) && hasScope(followUp.task);
      if (widened) followUp.task = withoutScope(followUp.task);
      return Promise.resolve({ outcome: 'coalesced', into: followUp.task, widened });
    }
    return this.wait(state, task, signal);
  }

  private wait(state: KeyState, task: SyncTask, signal: AbortSignal): Promise<OverlapOutcome> {
    return new Promise<OverlapOutcome>((resolve, reject) => {
      const onAbort = (): void => {
        const index = state.waiting.indexOf(waiter);
        if (index !== -1) state.waiting.splice(index, 1);
        reject(abortReason(signal));
      };
      const waiter: Waiter = {
        task,
        signal,
        resolve,
        reject,
        detach: () => signal.removeEventListener('abort', onAbort),
      };
      signal.addEventListener('abort', onAbort, { once: true });
      state.waiting.push(waiter);
    });
  }

  private async execute(key: string, state: KeyState, task: SyncTask, signal: AbortSignal): Promise<OverlapOutcome> {
    try {
      await this.runFn(task, signal);
      return { outcome: 'ran', task };
    } finally {
      const held = this.held.get(task);
      this.held.delete(task);
      if (held === undefined) this.next(key, state);
      else void held.then(() => this.next(key, state));
    }
  }

  /**
   * Keeps `task`'s key busy after its `run` settles, until `until` settles: for a sync that was
   * given up on (timeout, lost lease) but ignores its signal, so the next one cannot run beside it.
   * Call it from `run`, before it settles.
   */
  holdKeyUntil(task: SyncTask, until: Promise<unknown>): void {
    this.held.set(task, until.then(() => undefined, () => undefined));
  }

  private next(key: string, state: KeyState): void {
    const waiter = state.waiting.shift();
    if (waiter === undefined) {
      this.states.delete(key);
      return;
    }
    waiter.detach();
    state.running = waiter.task;
    this.execute(key, state, waiter.task, waiter.signal).then(waiter.resolve, waiter.reject);
  }
}

/** The overlap key of an integration and tenant (unambiguous for any id strings). */
export function overlapKey(integrationId: string, tenantId: string): string {
  return JSON.stringify([integrationId, tenantId]);
}

function hasScope(task: SyncTask): boolean {
  return task.entityType !== undefined || task.filters !== undefined;
}

function withoutScope(task: SyncTask): SyncTask {
  const { entityType: _entityType, filters: _filters, ...rest } = task;
  return rest;
}

/** True when two tasks ask for the same entity type and equal filters (key order ignored). */
export function sameScope(a: Pick<SyncTask, 'entityType' | 'filters'>, b: Pick<SyncTask, 'entityType' | 'filters'>): boolean {
  return a.entityType === b.entityType && stableJson(a.filters) === stableJson(b.filters);
}

function stableJson(value: unknown): string {
  if (value === undefined) return 'undefined';
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    return v;
  });
}

import type { SignalOptions } from '../core/abort.js';

/** Status of a {@link SyncTask}. `skipped`: coalesced into another run or superseded. */
export type SyncTaskStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/** One sync run for an integration and tenant. */
export interface SyncTask {
  /** Derived from the consumer group and event id by default, so a redelivered event finds its task again. */
  id: string;
  /** The integration to sync. */
  integrationId: string;
  /** The tenant whose data to sync; with `integrationId`, the key runs are serialised on. */
  tenantId: string;
  /** Why it runs: `schedule`, `manual`, `webhook`... */
  trigger: string;
  /** Limits the sync to one entity type; absent means a full sync. */
  entityType?: string;
  /** Provider-specific criteria narrowing the sync; absent means none. */
  filters?: Record<string, unknown>;
  /** Where the task is in its lifecycle. */
  status: SyncTaskStatus;
  /** Id of the event that created the task. */
  eventId?: string;
  /** ISO times. */
  createdAt: string;
  /** ISO time of the last change. */
  updatedAt: string;
  /** ISO time the sync service was last called for it. */
  startedAt?: string;
  /** ISO time it reached `succeeded`, `failed` or `skipped`. */
  finishedAt?: string;
  /** Short, secret-free error (failed) or reason (skipped). */
  error?: string;
  /** What the sync service returned (counts...), if anything. */
  result?: Record<string, unknown>;
}

/**
 * Fields a store update may change. A key that is present with the value `undefined` clears the
 * field (the consumer clears `entityType` and `filters` when it widens a coalesced run to a full
 * sync); absent keys are left alone. Without `updatedAt`, the store sets it to now.
 */
export type SyncTaskPatch = Partial<
  Pick<SyncTask, 'status' | 'startedAt' | 'finishedAt' | 'error' | 'result' | 'updatedAt' | 'entityType' | 'filters'>
>;

/** Filter of {@link SyncTaskStore.list}. */
export interface SyncTaskFilter {
  /** Only tasks of this integration. */
  integrationId?: string;
  /** Only tasks of this tenant. */
  tenantId?: string;
  /** Only tasks in this status (e.g. `failed`, to find what needs attention). */
  status?: SyncTaskStatus;
  /** Most tasks returned, newest first. @default 100 */
  limit?: number;
}

/** Where sync tasks live. Memory by default; PostgreSQL (`integration-sync/postgres`) for durability. */
export interface SyncTaskStore {
  /** Stores a new task. Rejects with `ERR_STORE` when a task with that id exists. */
  create(task: SyncTask): Promise<void>;
  /** Applies `patch`; returns the updated task, or `undefined` when no such task exists. */
  update(id: string, patch: SyncTaskPatch): Promise<SyncTask | undefined>;
  /** The task with this id, or `undefined`. */
  get(id: string): Promise<SyncTask | undefined>;
  /** Tasks matching every given field of `filter`, newest first, at most `limit`. */
  list(filter?: SyncTaskFilter): Promise<SyncTask[]>;
}

/**
 * The host's sync: fetch and store what a task asks for. Called once per task; throw to fail it.
 * Honour `signal`: it aborts on shutdown.
 */
export interface IntegrationSyncService {
  /** Runs the sync `task` describes; a plain object it resolves with becomes the task's `result`. */
  execute(task: SyncTask, options: Required<SignalOptions>): Promise<void | Record<string, unknown>>;
}

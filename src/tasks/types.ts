import type { SignalOptions } from '../core/abort.js';

/** Status of a {@link SyncTask}. `skipped`: coalesced into another run or superseded. */
export type SyncTaskStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/** One sync run for an integration and tenant. */
export interface SyncTask {
  id: string;
  integrationId: string;
  tenantId: string;
  /** Why it runs: `schedule`, `manual`, `webhook`... */
  trigger: string;
  entityType?: string;
  filters?: Record<string, unknown>;
  status: SyncTaskStatus;
  /** Id of the event that created the task. */
  eventId?: string;
  /** ISO times. */
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
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
  integrationId?: string;
  tenantId?: string;
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
  get(id: string): Promise<SyncTask | undefined>;
  list(filter?: SyncTaskFilter): Promise<SyncTask[]>;
}

/**
 * The host's sync: fetch and store what a task asks for. Called once per task; throw to fail it.
 * Honour `signal`: it aborts on shutdown.
 */
export interface IntegrationSyncService {
  execute(task: SyncTask, options: Required<SignalOptions>): Promise<void | Record<string, unknown>>;
}

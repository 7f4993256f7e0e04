import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import { assertOptionalMethods, assertOptions, assertPositiveInt, CLOCK_METHODS } from '../core/options.js';
import type { SyncTask, SyncTaskFilter, SyncTaskPatch, SyncTaskStatus, SyncTaskStore } from './types.js';

/** Options of {@link createMemorySyncTaskStore}. */
export interface MemorySyncTaskStoreOptions {
  /**
   * Most tasks kept. Past it, the oldest finished task (succeeded, failed, skipped) is evicted
   * first; only when every task is still pending or running does the oldest of those go.
   * @default 10000
   */
  maxTasks?: number;
  /** Time source of `updatedAt` when a patch does not set it. @default the system clock */
  clock?: Clock;
}

const FINISHED: ReadonlySet<SyncTaskStatus> = new Set(['succeeded', 'failed', 'skipped']);
const PATCH_KEYS = ['status', 'startedAt', 'finishedAt', 'error', 'result', 'updatedAt', 'entityType', 'filters'] as const;

/** Default page size of `list()`. */
export const DEFAULT_TASK_LIST_LIMIT = 100;

/**
 * The in-process {@link SyncTaskStore} (the consumer's default): bounded, lost on restart, not
 * shared between replicas. Use the PostgreSQL store (`integration-sync/postgres`) for history
 * that survives. Tasks are copied in and out, so a caller can never change a stored task by
 * mutating an object it holds.
 *
 * @example
 * const store = createMemorySyncTaskStore({ maxTasks: 50_000 });
 * const failed = await store.list({ integrationId: 'int_crm', status: 'failed', limit: 20 });
 */
export function createMemorySyncTaskStore(options: MemorySyncTaskStoreOptions = {}): SyncTaskStore {
  options = assertOptions('createMemorySyncTaskStore', options);
  const maxTasks = assertPositiveInt('maxTasks', options.maxTasks ?? 10_000);
  const clock = assertOptionalMethods('clock', options.clock, CLOCK_METHODS) ?? systemClock;
  // Insertion order doubles as creation order, which breaks ties between equal `createdAt`s.
  const tasks = new Map<string, { task: SyncTask; seq: number }>();
  let seq = 0;

  const evict = (): void => {
    while (tasks.size > maxTasks) {
      let victim: string | undefined;
      for (const [id, entry] of tasks) {
        if (FINISHED.has(entry.task.status)) {
          victim = id;
          break;
        }
      }
      tasks.delete(victim ?? (tasks.keys().next().value as string));
    }
  };

  return {
    async create(task) {
      if (typeof task !== 'object' || task === null || typeof task.id !== 'string' || task.id === '') {
        throw new IntegrationSyncError('ERR_STORE', 'SyncTaskStore.create: task.id must be a non-empty string');
      }
      if (tasks.has(task.id)) {
        throw new IntegrationSyncError('ERR_STORE', `SyncTaskStore.create: task ${task.id} already exists; get() it instead`, {
          details: { reason: 'conflict', taskId: task.id },
        });
      }
      tasks.set(task.id, { task: structuredClone(task), seq: seq++ });
      evict();
    },

    async update(id, patch: SyncTaskPatch) {
      const entry = tasks.get(id);
      if (entry === undefined) return undefined;
      const next: SyncTask = { ...entry.task };
      for (const key of PATCH_KEYS) {
        if (!Object.prototype.hasOwnProperty.call(patch, key)) continue;
        const value = patch[key];
        if (value === undefined) delete (next as unknown as Record<string, unknown>)[key];
        else (next as unknown as Record<string, unknown>)[key] = structuredClone(value);
      }
      if (patch.updatedAt === undefined) next.updatedAt = new Date(clock.now()).toISOString();
      entry.task = next;
      return structuredClone(next);
    },

    async get(id) {
      const entry = tasks.get(id);
      return entry === undefined ? undefined : structuredClone(entry.task);
    },

    async list(filter: SyncTaskFilter = {}) {
      filter ??= {};
      const limit = assertPositiveInt('SyncTaskStore.list: limit', filter.limit ?? DEFAULT_TASK_LIST_LIMIT);
      const matches: { task: SyncTask; seq: number }[] = [];
      for (const entry of tasks.values()) {
        const { task } = entry;
        if (filter.integrationId !== undefined && task.integrationId !== filter.integrationId) continue;
        if (filter.tenantId !== undefined && task.tenantId !== filter.tenantId) continue;
        if (filter.status !== undefined && task.status !== filter.status) continue;
        matches.push(entry);
      }
      matches.sort((a, b) => {
        const byTime = Date.parse(b.task.createdAt) - Date.parse(a.task.createdAt);
        return byTime !== 0 && !Number.isNaN(byTime) ? byTime : b.seq - a.seq;
      });
      return matches.slice(0, limit).map((entry) => structuredClone(entry.task));
    },
  };
}

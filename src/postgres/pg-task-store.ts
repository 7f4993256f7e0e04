import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { IntegrationSyncError } from '../core/errors.js';
import { assertPositiveInt } from '../core/options.js';
import type { SyncTask, SyncTaskFilter, SyncTaskPatch, SyncTaskStatus, SyncTaskStore } from '../tasks/types.js';
import { DEFAULT_TASK_LIST_LIMIT } from '../tasks/memory-task-store.js';
import { assertQueryable, fromJson, msColumn, msToIso, pgError, pgJson, pgNames, pgText, type PostgresOptions } from './pg-client.js';

/** Options of {@link createPostgresSyncTaskStore}. Run {@link migrate} once before using it. */
export interface PostgresSyncTaskStoreOptions extends PostgresOptions {
  /** Time source of `updatedAt` when a patch does not set it. @default the system clock */
  clock?: Clock;
}

/** Patchable fields and their columns; `json` ones are stored as jsonb, `time` ones as timestamptz. */
const PATCH_COLUMNS: ReadonlyArray<readonly [keyof SyncTaskPatch, string, 'text' | 'time' | 'json']> = [
  ['status', 'status', 'text'],
  ['startedAt', 'started_at', 'time'],
  ['finishedAt', 'finished_at', 'time'],
  ['error', 'error', 'text'],
  ['result', 'result', 'json'],
  ['updatedAt', 'updated_at', 'time'],
  ['entityType', 'entity_type', 'text'],
  ['filters', 'filters', 'json'],
];

const SELECT_COLUMNS = [
  'id',
  'integration_id',
  'tenant_id',
  'trigger',
  'entity_type',
  'filters',
  'status',
  'event_id',
  msColumn('created_at'),
  msColumn('updated_at'),
  msColumn('started_at'),
  msColumn('finished_at'),
  'error',
  'result',
].join(', ');

function toTask(row: Record<string, unknown>): SyncTask {
  const task: SyncTask = {
    id: String(row.id),
    integrationId: String(row.integration_id),
    tenantId: String(row.tenant_id),
    trigger: String(row.trigger),
    status: String(row.status) as SyncTaskStatus,
    createdAt: msToIso(row.created_at_ms),
    updatedAt: msToIso(row.updated_at_ms),
  };
  if (row.entity_type !== null && row.entity_type !== undefined) task.entityType = String(row.entity_type);
  const filters = fromJson(row.filters);
  if (filters !== undefined) task.filters = filters;
  if (row.event_id !== null && row.event_id !== undefined) task.eventId = String(row.event_id);
  if (row.started_at_ms !== null && row.started_at_ms !== undefined) task.startedAt = msToIso(row.started_at_ms);
  if (row.finished_at_ms !== null && row.finished_at_ms !== undefined) task.finishedAt = msToIso(row.finished_at_ms);
  if (row.error !== null && row.error !== undefined) task.error = String(row.error);
  const result = fromJson(row.result);
  if (result !== undefined) task.result = result;
  return task;
}

function json(value: unknown): string | null {
  return pgJson(value);
}

/**
 * A time column's value: an ISO date-time (or null). Checked here because PostgreSQL also takes
 * words such as 'infinity' or 'yesterday', and an infinite time would make every read of the row throw.
 */
function time(value: unknown, field: string): unknown {
  if (value === undefined || value === null) return null;
  if (Number.isNaN(Date.parse(String(value)))) {
    throw new IntegrationSyncError('ERR_STORE', `SyncTaskStore: ${field} must be an ISO date-time string`);
  }
  return value;
}

/** A free-text column's value, storable whatever the source wrote into it. */
function text(value: unknown): unknown {
  return typeof value === 'string' ? pgText(value) : (value ?? null);
}

function assertTask(task: unknown): SyncTask {
  const t = task as Partial<SyncTask> | null;
  if (typeof t !== 'object' || t === null) throw new IntegrationSyncError('ERR_STORE', 'SyncTaskStore.create: task must be an object');
  for (const field of ['id', 'integrationId', 'tenantId', 'trigger', 'status', 'createdAt', 'updatedAt'] as const) {
    if (typeof t[field] !== 'string' || t[field] === '') {
      throw new IntegrationSyncError('ERR_STORE', `SyncTaskStore.create: task.${field} must be a non-empty string`);
    }
  }
  return t as SyncTask;
}

/**
 * A durable {@link SyncTaskStore} on PostgreSQL: task history survives restarts and is shared by
 * every replica. `filters` and `result` are jsonb; times are timestamptz and come back as
 * `Date#toISOString()` text (an offset such as `+01:00` is normalised to `Z`, the same instant).
 * Old rows are the host's to prune (`DELETE ... WHERE finished_at < ...`).
 *
 * @example
 * await migrate(pool);
 * const consumer = new SyncTaskEventConsumer({ bus, syncService, tokenRefresh,
 *   store: createPostgresSyncTaskStore({ pool }) });
 */
export function createPostgresSyncTaskStore(options: PostgresSyncTaskStoreOptions): SyncTaskStore {
  const pool = assertQueryable(options?.pool, 'createPostgresSyncTaskStore');
  const names = pgNames(options);
  const clock = options.clock ?? systemClock;
  const tasks = names.table('sync_tasks');

  return {
    async create(input) {
      const task = assertTask(input);
      let rowCount: number | null;
      try {
        ({ rowCount } = await pool.query(
          `INSERT INTO ${tasks} (id, integration_id, tenant_id, trigger, entity_type, filters, status, event_id, ` +
            `created_at, updated_at, started_at, finished_at, error, result) ` +
            `VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14::jsonb) ON CONFLICT (id) DO NOTHING`,
          [
            task.id,
            task.integrationId,
            task.tenantId,
            text(task.trigger),
            text(task.entityType),
            json(task.filters),
            task.status,
            task.eventId ?? null,
            time(task.createdAt, 'createdAt'),
            time(task.updatedAt, 'updatedAt'),
            time(task.startedAt, 'startedAt'),
            time(task.finishedAt, 'finishedAt'),
            text(task.error),
            json(task.result),
          ],
        ));
      } catch (error) {
        throw pgError('ERR_STORE', 'SyncTaskStore.create', error, names);
      }
      if (rowCount === 0) {
        throw new IntegrationSyncError('ERR_STORE', `SyncTaskStore.create: task ${task.id} already exists; get() it instead`, {
          details: { reason: 'conflict', taskId: task.id },
        });
      }
    },

    async update(id, patch: SyncTaskPatch) {
      if (typeof patch !== 'object' || patch === null) throw new IntegrationSyncError('ERR_STORE', 'SyncTaskStore.update: patch must be an object');
      const sets: string[] = [];
      const values: unknown[] = [id];
      for (const [key, column, kind] of PATCH_COLUMNS) {
        if (!Object.prototype.hasOwnProperty.call(patch, key)) continue;
        const value = patch[key];
        // updatedAt cannot be cleared: a missing one is set to now below.
        if (key === 'updatedAt' && value === undefined) continue;
        values.push(kind === 'json' ? json(value) : kind === 'time' ? time(value, key) : text(value));
        sets.push(`${column} = $${values.length}${kind === 'json' ? '::jsonb' : ''}`);
      }
      if (patch.updatedAt === undefined) {
        values.push(new Date(clock.now()).toISOString());
        sets.push(`updated_at = $${values.length}`);
      }
      try {
        const { rows } = await pool.query(`UPDATE ${tasks} SET ${sets.join(', ')} WHERE id = $1 RETURNING ${SELECT_COLUMNS}`, values);
        return rows[0] === undefined ? undefined : toTask(rows[0]);
      } catch (error) {
        throw pgError('ERR_STORE', 'SyncTaskStore.update', error, names);
      }
    },

    async get(id) {
      try {
        const { rows } = await pool.query(`SELECT ${SELECT_COLUMNS} FROM ${tasks} WHERE id = $1`, [id]);
        return rows[0] === undefined ? undefined : toTask(rows[0]);
      } catch (error) {
        throw pgError('ERR_STORE', 'SyncTaskStore.get', error, names);
      }
    },

    async list(filter: SyncTaskFilter = {}) {
      const limit = assertPositiveInt('SyncTaskStore.list: limit', filter.limit ?? DEFAULT_TASK_LIST_LIMIT);
      const where: string[] = [];
      const values: unknown[] = [];
      for (const [key, column] of [
        ['integrationId', 'integration_id'],
        ['tenantId', 'tenant_id'],
        ['status', 'status'],
      ] as const) {
        const value = filter[key];
        if (value === undefined) continue;
        values.push(value);
        where.push(`${column} = $${values.length}`);
      }
      values.push(limit);
      const sql =
        `SELECT ${SELECT_COLUMNS} FROM ${tasks}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ` +
        `ORDER BY created_at DESC, seq DESC LIMIT $${values.length}`;
      try {
        const { rows } = await pool.query(sql, values);
        return rows.map(toTask);
      } catch (error) {
        throw pgError('ERR_STORE', 'SyncTaskStore.list', error, names);
      }
    },
  };
}

import { normalizeAuditQuery } from '../audit/memory-sink.js';
import type { AuditKind, AuditQuery, AuditRecord, AuditStore } from '../audit/types.js';
import { IntegrationSyncError } from '../core/errors.js';
import { assertQueryable, fromJson, msColumn, msToIso, pgError, pgJson, pgNames, pgText, type PostgresOptions } from './pg-client.js';

/** Options of {@link createPostgresAuditStore}. Run {@link migrate} once before using it. */
export type PostgresAuditStoreOptions = PostgresOptions;

/** A durable, queryable {@link AuditStore}, with pruning for retention. */
export interface PostgresAuditStore extends AuditStore {
  /** Deletes records older than `before` (exclusive); resolves to how many went. Call it on a schedule for retention. */
  prune(before: Date | string): Promise<number>;
}

/** Record fields with their own column; any other field is kept in the `extra` jsonb column. */
const COLUMNS: ReadonlyArray<readonly [keyof AuditRecord, string]> = [
  ['kind', 'kind'],
  ['outcome', 'outcome'],
  ['eventType', 'event_type'],
  ['eventId', 'event_id'],
  ['group', 'group_name'],
  ['integrationId', 'integration_id'],
  ['connectionId', 'connection_id'],
  ['tenantId', 'tenant_id'],
  ['taskId', 'task_id'],
  ['reason', 'reason'],
  ['attempt', 'attempt'],
];
const KNOWN = new Set<string>(['at', ...COLUMNS.map(([field]) => field)]);
const FILTERS: ReadonlyArray<readonly [keyof AuditQuery, string]> = [
  ['integrationId', 'integration_id'],
  ['connectionId', 'connection_id'],
  ['tenantId', 'tenant_id'],
  ['kind', 'kind'],
  ['eventType', 'event_type'],
];

function toRecord(row: Record<string, unknown>): AuditRecord {
  const record = { ...(fromJson(row.extra) ?? {}) } as Record<string, unknown>;
  record.kind = String(row.kind) as AuditKind;
  record.at = msToIso(row.at_ms);
  for (const [field, column] of COLUMNS) {
    const value = row[column];
    if (value === null || value === undefined) continue;
    record[field] = field === 'attempt' ? Number(value) : String(value);
  }
  return record as unknown as AuditRecord;
}

/**
 * A durable {@link AuditStore} on PostgreSQL: one row per record, indexed for queries by
 * integration, connection, tenant, kind, event type and time; shared by every replica and kept
 * across restarts. Times come back as `Date#toISOString()` text (same instant, offset
 * normalised to `Z`). Fields a newer record carries are kept in a jsonb column and returned.
 *
 * `record()` rejects with `ERR_STORE` when the write fails; the buses and services call sinks
 * through `safeAudit`, which logs that and never lets it reach delivery.
 *
 * @example
 * await migrate(pool);
 * const audit = createPostgresAuditStore({ pool });
 * const bus = createMemoryBus({ audit });
 * const trail = await audit.query({ connectionId: 'conn-1', from: '2026-12-01T00:00:00Z' });
 */
export function createPostgresAuditStore(options: PostgresAuditStoreOptions): PostgresAuditStore {
  const pool = assertQueryable(options?.pool, 'createPostgresAuditStore');
  const names = pgNames(options);
  const audit = names.table('audit');
  const insertColumns = ['at', ...COLUMNS.map(([, column]) => column), 'extra'];
  const insertSql =
    `INSERT INTO ${audit} (${insertColumns.join(', ')}) ` +
    `VALUES (${insertColumns.map((_, i) => `$${i + 1}${insertColumns[i] === 'extra' ? '::jsonb' : ''}`).join(', ')})`;
  const selectColumns = `${msColumn('at')}, ${COLUMNS.map(([, column]) => column).join(', ')}, extra`;

  return {
    async record(record) {
      if (typeof record !== 'object' || record === null || typeof record.kind !== 'string' || typeof record.outcome !== 'string') {
        throw new IntegrationSyncError('ERR_STORE', 'audit record must be an object with string kind and outcome');
      }
      if (typeof record.at !== 'string' || Number.isNaN(Date.parse(record.at))) {
        throw new IntegrationSyncError('ERR_STORE', 'audit record at must be an ISO date-time string');
      }
      const extra: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(record)) if (!KNOWN.has(key) && value !== undefined) extra[key] = value;
      const values = [
        new Date(record.at).toISOString(),
        ...COLUMNS.map(([field]) => {
          const value = record[field];
          if (value === undefined || value === null) return null;
          // Audit text is descriptive (ids of a rejected event included): keep the record, never fail it on a NUL.
          return field === 'attempt' ? Math.trunc(Number(value)) : pgText(String(value));
        }),
        Object.keys(extra).length > 0 ? pgJson(extra) : null,
      ];
      try {
        await pool.query(insertSql, values);
      } catch (error) {
        throw pgError('ERR_STORE', 'audit record', error, names);
      }
    },

    async query(query: AuditQuery = {}) {
      const { from, to, limit } = normalizeAuditQuery(query);
      const where: string[] = [];
      const values: unknown[] = [];
      for (const [field, column] of FILTERS) {
        const value = query[field];
        if (value === undefined) continue;
        values.push(value);
        where.push(`${column} = $${values.length}`);
      }
      if (Number.isFinite(from)) {
        values.push(new Date(from).toISOString());
        where.push(`at >= $${values.length}`);
      }
      if (Number.isFinite(to)) {
        values.push(new Date(to).toISOString());
        where.push(`at <= $${values.length}`);
      }
      values.push(limit);
      const sql =
        `SELECT ${selectColumns} FROM ${audit}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ` +
        `ORDER BY at, id LIMIT $${values.length}`;
      try {
        const { rows } = await pool.query(sql, values);
        return rows.map(toRecord);
      } catch (error) {
        throw pgError('ERR_STORE', 'audit query', error, names);
      }
    },

    async prune(before) {
      const ms = before instanceof Date ? before.getTime() : typeof before === 'string' ? Date.parse(before) : Number.NaN;
      if (Number.isNaN(ms)) throw new IntegrationSyncError('ERR_INVALID_OPTION', 'prune: before must be a Date or an ISO date-time string');
      try {
        const { rowCount } = await pool.query(`DELETE FROM ${audit} WHERE at < $1`, [new Date(ms).toISOString()]);
        return rowCount ?? 0;
      } catch (error) {
        throw pgError('ERR_STORE', 'audit prune', error, names);
      }
    },
  };
}

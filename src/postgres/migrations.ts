import { assertQueryable, pgError, pgNames, type PgQueryable, type PostgresTableOptions } from './pg-client.js';

/** Version of the schema {@link migrate} creates; recorded in the `<prefix>migrations` table. */
export const SCHEMA_VERSION = 1;

/**
 * The DDL {@link migrate} runs, for hosts that apply migrations with their own tool. Every
 * statement is idempotent (`IF NOT EXISTS`). Tables, with the default prefix
 * `integration_sync_`: `leases`, `sync_tasks`, `audit`, `migrations`, and the sequence
 * `lease_seq` that issues fencing tokens.
 */
export function migrationSql(options: PostgresTableOptions = {}): string {
  const n = pgNames(options);
  return [
    `CREATE SCHEMA IF NOT EXISTS "${n.schema}"`,
    `CREATE TABLE IF NOT EXISTS ${n.table('migrations')} (
      version integer PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`,
    // Leases: one row per held (or expired, not yet re-taken) key.
    `CREATE SEQUENCE IF NOT EXISTS ${n.table('lease_seq')} AS bigint`,
    `CREATE TABLE IF NOT EXISTS ${n.table('leases')} (
      key text PRIMARY KEY,
      owner text NOT NULL,
      token bigint NOT NULL,
      expires_at timestamptz NOT NULL
    )`,
    // Sync tasks; seq breaks ties between equal created_at for newest-first listing.
    `CREATE TABLE IF NOT EXISTS ${n.table('sync_tasks')} (
      id text PRIMARY KEY,
      seq bigserial NOT NULL,
      integration_id text NOT NULL,
      tenant_id text NOT NULL,
      trigger text NOT NULL,
      entity_type text,
      filters jsonb,
      status text NOT NULL,
      event_id text,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      started_at timestamptz,
      finished_at timestamptz,
      error text,
      result jsonb
    )`,
    `CREATE INDEX IF NOT EXISTS ${n.local('t_created_idx')} ON ${n.table('sync_tasks')} (created_at DESC, seq DESC)`,
    `CREATE INDEX IF NOT EXISTS ${n.local('t_int_idx')} ON ${n.table('sync_tasks')} (integration_id, tenant_id, created_at DESC, seq DESC)`,
    `CREATE INDEX IF NOT EXISTS ${n.local('t_ten_idx')} ON ${n.table('sync_tasks')} (tenant_id, created_at DESC, seq DESC)`,
    `CREATE INDEX IF NOT EXISTS ${n.local('t_status_idx')} ON ${n.table('sync_tasks')} (status, created_at DESC, seq DESC)`,
    // Audit trail; extra keeps fields a newer record type adds.
    `CREATE TABLE IF NOT EXISTS ${n.table('audit')} (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL,
      kind text NOT NULL,
      outcome text NOT NULL,
      event_type text,
      event_id text,
      group_name text,
      integration_id text,
      connection_id text,
      tenant_id text,
      task_id text,
      reason text,
      attempt integer,
      extra jsonb
    )`,
    `CREATE INDEX IF NOT EXISTS ${n.local('a_at_idx')} ON ${n.table('audit')} (at, id)`,
    `CREATE INDEX IF NOT EXISTS ${n.local('a_int_idx')} ON ${n.table('audit')} (integration_id, at) WHERE integration_id IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS ${n.local('a_conn_idx')} ON ${n.table('audit')} (connection_id, at) WHERE connection_id IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS ${n.local('a_ten_idx')} ON ${n.table('audit')} (tenant_id, at) WHERE tenant_id IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS ${n.local('a_kind_idx')} ON ${n.table('audit')} (kind, at)`,
    `CREATE INDEX IF NOT EXISTS ${n.local('a_type_idx')} ON ${n.table('audit')} (event_type, at) WHERE event_type IS NOT NULL`,
    `INSERT INTO ${n.table('migrations')} (version) VALUES (${SCHEMA_VERSION}) ON CONFLICT (version) DO NOTHING`,
  ].join(';\n');
}

/**
 * Creates the schema, tables, sequence and indexes of the lease, the task store and the audit
 * store, if they do not exist yet. Safe to call on every start and from many replicas at once:
 * everything runs as one statement batch, which PostgreSQL executes as one transaction, under a
 * transaction-scoped advisory lock keyed by the schema (every prefix in it: they share the
 * `CREATE SCHEMA`), so concurrent calls run one after another (concurrent `CREATE ... IF NOT
 * EXISTS` alone can still collide) and a failure leaves nothing half made.
 *
 * @example
 * import pg from 'pg';
 * import { migrate } from 'integration-sync/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool);
 */
export async function migrate(pool: PgQueryable, options: PostgresTableOptions = {}): Promise<void> {
  const client = assertQueryable(pool, 'migrate');
  const names = pgNames(options);
  // Identifiers are validated above, so this literal cannot break out of its quotes.
  const lock = `SELECT pg_advisory_xact_lock(hashtextextended('integration-sync:migrate:${names.schema}', 0))`;
  // No parameters: the simple-query protocol runs the whole batch on one connection, as one transaction.
  try {
    await client.query(`${lock};\n${migrationSql(options)}`);
  } catch (error) {
    throw pgError('ERR_STORE', 'migrate', error, names);
  }
}

/**
 * PostgreSQL adapters: a `Lease` with fencing tokens, a durable `SyncTaskStore` and a durable,
 * queryable `AuditStore`. They take the host's pool (`pg.Pool` fits) and never
 * import `pg`. Create the tables once with {@link migrate}.
 *
 * @example
 * import pg from 'pg';
 * import { migrate, createPostgresLease, createPostgresSyncTaskStore, createPostgresAuditStore } from 'integration-sync/postgres';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool);
 * const lease = createPostgresLease({ pool });
 * const store = createPostgresSyncTaskStore({ pool });
 * const audit = createPostgresAuditStore({ pool });
 *
 * @module integration-sync/postgres
 */
export type { PgQueryable, PgQueryResult, PostgresOptions, PostgresTableOptions } from './pg-client.js';
export { DEFAULT_TABLE_PREFIX } from './pg-client.js';
export * from './migrations.js';
export * from './pg-lease.js';
export * from './pg-task-store.js';
export * from './pg-audit-store.js';

import { afterAll, describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createPostgresSyncTaskStore, migrate, migrationSql, SCHEMA_VERSION } from '../../src/postgres/index.js';
import { dropSchema, newPool, uniqueSchema } from './helpers.js';

const pool = newPool(8);
const schemas: string[] = [];

afterAll(async () => {
  for (const schema of schemas) await dropSchema(pool, schema);
  await pool.end();
});

function fresh(): string {
  const schema = uniqueSchema('pgm');
  schemas.push(schema);
  return schema;
}

async function tables(schema: string): Promise<string[]> {
  const { rows } = await pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema]);
  return rows.map((r: { table_name: string }) => r.table_name);
}

describe('migrate', () => {
  it('creates the schema, tables, sequence and indexes, and is idempotent', async () => {
    const schema = fresh();
    await migrate(pool, { schema });
    await migrate(pool, { schema });
    expect(await tables(schema)).toEqual([
      'integration_sync_audit',
      'integration_sync_leases',
      'integration_sync_migrations',
      'integration_sync_sync_tasks',
    ]);
    const { rows: versions } = await pool.query(`SELECT version FROM "${schema}".integration_sync_migrations`);
    expect(versions).toEqual([{ version: SCHEMA_VERSION }]);
    const { rows: indexes } = await pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1`, [schema]);
    const names = indexes.map((r: { indexname: string }) => r.indexname);
    for (const expected of ['a_int_idx', 'a_conn_idx', 'a_ten_idx', 'a_kind_idx', 'a_type_idx', 'a_at_idx', 't_int_idx', 't_status_idx']) {
      expect(names).toContain(`integration_sync_${expected}`);
    }
  });

  it('is safe when many replicas migrate the same schema at once', async () => {
    const schema = fresh();
    // Separate pools: separate sessions, as separate processes would have.
    const pools = Array.from({ length: 6 }, () => newPool(1));
    try {
      const results = await Promise.allSettled(pools.map((p) => migrate(p, { schema })));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    expect(await tables(schema)).toHaveLength(4);
    const store = createPostgresSyncTaskStore({ pool, schema });
    const at = new Date().toISOString();
    await store.create({ id: 'x', integrationId: 'i', tenantId: 't', trigger: 'manual', status: 'pending', createdAt: at, updatedAt: at });
    expect(await store.get('x')).toBeDefined();
  });

  it('keeps two prefixes in one schema apart', async () => {
    const schema = fresh();
    await migrate(pool, { schema, tablePrefix: 'app_a_' });
    await migrate(pool, { schema, tablePrefix: 'app_b_' });
    const at = new Date().toISOString();
    await createPostgresSyncTaskStore({ pool, schema, tablePrefix: 'app_a_' }).create({
      id: 'only-a',
      integrationId: 'i',
      tenantId: 't',
      trigger: 'manual',
      status: 'pending',
      createdAt: at,
      updatedAt: at,
    });
    expect(await createPostgresSyncTaskStore({ pool, schema, tablePrefix: 'app_b_' }).get('only-a')).toBeUndefined();
    expect((await tables(schema)).length).toBe(8);
  });

  it('refuses identifiers that are not plain lowercase names before touching the database', async () => {
    for (const options of [{ schema: 'x"; DROP SCHEMA public CASCADE; --' }, { tablePrefix: 'Bad-Prefix' }, { schema: 'a'.repeat(42) }]) {
      const error = await migrate(pool, options).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
      expect(() => migrationSql(options)).toThrow(/must match/);
    }
    await expect(migrate({} as never)).rejects.toThrow(/pool/);
  });

  it('reports a failure as ERR_STORE and leaves nothing half made', async () => {
    const schema = fresh();
    // A table squatting on one of the names makes a later statement fail; the batch rolls back.
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await pool.query(`CREATE VIEW "${schema}".integration_sync_audit AS SELECT 1 AS x`);
    await expect(migrate(pool, { schema })).rejects.toMatchObject({ code: 'ERR_STORE' });
    expect(await tables(schema)).toEqual(['integration_sync_audit']);
  });
});

import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import { migrate } from '../../src/postgres/index.js';
import pg from 'pg';

export const DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

export function newPool(max = 5): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max });
  // An idle client that errors (server restart) must not crash the test process.
  pool.on('error', () => {});
  return pool;
}

/** A schema name no other test file uses. */
export function uniqueSchema(prefix = 'pgt'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/**
 * Migrated schemas for one test file, all named `<root>_<suffix>`: `migrated(suffix)` creates and
 * migrates one, `drop(suffix)` removes it, and an `afterAll` drops what is left and ends the pool.
 */
export function migratedSchemas(pool: pg.Pool, prefix: string): {
  migrated(suffix: string): Promise<string>;
  drop(suffix: string): Promise<void>;
} {
  const root = uniqueSchema(prefix);
  const schemas = new Set<string>();
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(pool, schema);
    await pool.end();
  });
  return {
    async migrated(suffix) {
      const schema = `${root}_${suffix}`;
      schemas.add(schema);
      await migrate(pool, { schema });
      return schema;
    },
    async drop(suffix) {
      await dropSchema(pool, `${root}_${suffix}`);
      schemas.delete(`${root}_${suffix}`);
    },
  };
}

import { randomBytes } from 'node:crypto';
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

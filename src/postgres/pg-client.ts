import { IntegrationSyncError, type ErrorCode } from '../core/errors.js';

/** What a query answers: the rows and how many rows the statement touched. */
export interface PgQueryResult {
  /** Result rows keyed by column name. */
  rows: Array<Record<string, unknown>>;
  /** Rows inserted, updated or deleted (or returned); `null` for statements without a count. */
  rowCount: number | null;
}

/**
 * The one method this adapter needs from the host's PostgreSQL client. A `pg.Pool` or `pg.Client`
 * fits as is, so the host keeps its own pooling, TLS and credentials, and this package never
 * imports `pg`. Each call must run on one connection (both `pg` classes do so).
 */
export interface PgQueryable {
  /** Runs one parameterised statement (`$1`, `$2`... bound from `values`). */
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
}

/** Where the tables live. Both are interpolated into SQL, so both must match `/^[a-z_][a-z0-9_]{0,40}$/`. */
export interface PostgresTableOptions {
  /** Schema of the tables; `migrate` creates it when missing. @default "public" */
  schema?: string;
  /** Prefix of every table, sequence and index name. @default "integration_sync_" */
  tablePrefix?: string;
}

/** Options every PostgreSQL store and the lease take. */
export interface PostgresOptions extends PostgresTableOptions {
  /** The host's pool or client (`pg.Pool` fits). */
  pool: PgQueryable;
}

/** Default {@link PostgresTableOptions.tablePrefix}. */
export const DEFAULT_TABLE_PREFIX = 'integration_sync_';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

/** @internal Validated, quoted names of the adapter's objects. */
export interface PgNames {
  schema: string;
  prefix: string;
  /** `"schema"."<prefix><name>"` */
  table(name: string): string;
  /** `"<prefix><name>"`, for index names (which take no schema). */
  local(name: string): string;
}

/** @internal Validates `schema` and `tablePrefix` (ERR_INVALID_OPTION) and builds quoted names. */
export function pgNames(options: PostgresTableOptions = {}): PgNames {
  const schema = options.schema ?? 'public';
  const prefix = options.tablePrefix ?? DEFAULT_TABLE_PREFIX;
  for (const [name, value] of [
    ['schema', schema],
    ['tablePrefix', prefix],
  ] as const) {
    if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
      throw new IntegrationSyncError(
        'ERR_INVALID_OPTION',
        `${name} must match /^[a-z_][a-z0-9_]{0,40}$/ (lowercase letters, digits, underscores) because it becomes part of SQL identifiers; got ${typeof value === 'string' ? JSON.stringify(value.slice(0, 60)) : typeof value}`,
      );
    }
  }
  return {
    schema,
    prefix,
    table: (name) => `"${schema}"."${prefix}${name}"`,
    local: (name) => `"${prefix}${name}"`,
  };
}

/** @internal Checks the pool option at construction. */
export function assertQueryable(pool: unknown, where: string): PgQueryable {
  if (typeof pool !== 'object' || pool === null || typeof (pool as PgQueryable).query !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${where}: pool must be a PostgreSQL pool or client with query(text, values) (a pg.Pool fits)`);
  }
  return pool as PgQueryable;
}

/**
 * @internal Wraps a driver error. Never quotes the SQL values (they may be ids a host considers
 * private); names the missing-table case, the usual first-run mistake.
 */
export function pgError(code: ErrorCode, what: string, error: unknown, names: PgNames): IntegrationSyncError {
  const sqlState = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const missing = sqlState === '42P01' || sqlState === '3F000';
  const message = missing
    ? `${what} failed: the tables of schema "${names.schema}" with prefix "${names.prefix}" do not exist; run migrate(pool, { schema, tablePrefix }) first`
    : sqlState === '22021' || sqlState === '22P05'
      ? `${what} failed: a key or id contains a NUL character (\\u0000), which PostgreSQL text cannot store`
      : `${what} failed${typeof sqlState === 'string' ? ` (SQLSTATE ${sqlState})` : ''}; check the database connection and the error cause`;
  return new IntegrationSyncError(code, message, { cause: error, details: { ...(typeof sqlState === 'string' ? { sqlState } : {}) } });
}

/** Characters PostgreSQL refuses: NUL anywhere, lone UTF-16 surrogates in jsonb. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * @internal A descriptive text value PostgreSQL can store: NUL (which text refuses) and lone
 * surrogates become U+FFFD, so an error message cut mid-character never fails the write.
 */
export function pgText(value: string): string {
  return value.replace(UNSTORABLE, '\ufffd');
}

/** @internal JSON for a jsonb parameter, with {@link pgText} applied to every string and key. */
export function pgJson(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return pgText(v);
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).some((k) => pgText(k) !== k)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [pgText(k), x]));
    }
    return v;
  });
}

/** @internal Epoch milliseconds from a numeric column (pg returns float8 as number, numeric and bigint as string). */
export function toMs(value: unknown): number {
  const ms = typeof value === 'number' ? value : Number(value);
  return Math.round(ms);
}

/** @internal ISO text of an epoch-milliseconds column. */
export function msToIso(value: unknown): string {
  return new Date(toMs(value)).toISOString();
}

/** @internal A jsonb column, whatever the host's type parsers turned it into. */
export function fromJson(value: unknown): Record<string, unknown> | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return JSON.parse(value) as Record<string, unknown>;
  return value as Record<string, unknown>;
}

/** @internal SQL that reads a timestamptz column as epoch milliseconds (a float8 pg parses itself). */
export function msColumn(column: string, alias = `${column}_ms`): string {
  return `(extract(epoch from ${column}) * 1000)::float8 AS ${alias}`;
}

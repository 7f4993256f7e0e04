import { IntegrationSyncError } from '../core/errors.js';
import { assertOptions, assertPositiveInt } from '../core/options.js';
import type { AuditQuery, AuditRecord, AuditStore } from './types.js';

/** Options of {@link createMemoryAuditStore}. */
export interface MemoryAuditStoreOptions {
  /** Records kept; the oldest are dropped first once it is full. @default 10000 */
  maxRecords?: number;
}

/** An in-process {@link AuditStore}: a bounded ring of records, queryable. */
export interface MemoryAuditStore extends AuditStore {
  /** Records held now (at most `maxRecords`). */
  readonly size: number;
  /** Records dropped to stay within `maxRecords` since creation. */
  readonly dropped: number;
  /** Forgets every record. */
  clear(): void;
}

/** Default most records returned by a query. */
export const DEFAULT_AUDIT_QUERY_LIMIT = 1000;

/**
 * Validates an {@link AuditQuery} and returns its time bounds as epoch milliseconds. Shared by
 * the built-in stores so they reject the same bad queries the same way.
 * Throws `ERR_INVALID_OPTION` on a bad bound or limit.
 */
export function normalizeAuditQuery(query: AuditQuery = {}): {
  /** Lower bound on `at` in epoch ms; `-Infinity` when `query.from` is absent. */
  from: number;
  /** Upper bound on `at` in epoch ms; `Infinity` when `query.to` is absent. */
  to: number;
  /** Most records to return; the default applied when `query.limit` is absent. */
  limit: number;
} {
  if (typeof query !== 'object' || query === null) throw new IntegrationSyncError('ERR_INVALID_OPTION', 'audit query must be an object');
  const bound = (name: 'from' | 'to', fallback: number): number => {
    const value = query[name];
    if (value === undefined) return fallback;
    const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(ms)) throw new IntegrationSyncError('ERR_INVALID_OPTION', `audit query ${name} must be an ISO date-time string`);
    return ms;
  };
  for (const field of ['integrationId', 'connectionId', 'tenantId', 'kind', 'eventType'] as const) {
    const value = query[field];
    if (value !== undefined && typeof value !== 'string') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `audit query ${field} must be a string; got ${typeof value}`);
    }
  }
  return {
    from: bound('from', -Infinity),
    to: bound('to', Infinity),
    limit: assertPositiveInt('limit', query.limit ?? DEFAULT_AUDIT_QUERY_LIMIT, 1_000_000),
  };
}

interface Entry {
  seq: number;
  atMs: number;
  record: Readonly<AuditRecord>;
}

/**
 * A bounded in-memory {@link AuditStore}: keeps the last `maxRecords` records and answers
 * queries by integration, connection, tenant, kind, event type and time range, oldest first.
 * Good for tests, development and a single process; use the PostgreSQL store
 * (`integration-sync/postgres`) to keep an audit trail across restarts and replicas.
 *
 * @example
 * const audit = createMemoryAuditStore({ maxRecords: 5000 });
 * const bus = createMemoryBus({ audit });
 * const trail = await audit.query({ integrationId: 'hubspot', from: '2026-12-01T00:00:00Z' });
 */
export function createMemoryAuditStore(options: MemoryAuditStoreOptions = {}): MemoryAuditStore {
  options = assertOptions('createMemoryAuditStore', options);
  const maxRecords = assertPositiveInt('maxRecords', options.maxRecords ?? 10_000, 10_000_000);
  // Ring buffer: `start` is the oldest slot, so appends and evictions are O(1).
  let ring: Array<Entry | undefined> = [];
  let start = 0;
  let count = 0;
  let seq = 0;
  let dropped = 0;

  const store: MemoryAuditStore = {
    get size() {
      return count;
    },
    get dropped() {
      return dropped;
    },
    record(record: AuditRecord): void {
      if (typeof record !== 'object' || record === null || typeof record.kind !== 'string' || typeof record.outcome !== 'string') {
        throw new IntegrationSyncError('ERR_STORE', 'audit record must be an object with string kind and outcome');
      }
      const atMs = Date.parse(record.at);
      if (Number.isNaN(atMs)) throw new IntegrationSyncError('ERR_STORE', 'audit record at must be an ISO date-time string');
      const entry: Entry = { seq: seq++, atMs, record: Object.freeze({ ...record }) };
      if (count < maxRecords) {
        ring[(start + count) % maxRecords] = entry;
        count += 1;
      } else {
        ring[start] = entry;
        start = (start + 1) % maxRecords;
        dropped += 1;
      }
    },
    async query(query: AuditQuery = {}): Promise<AuditRecord[]> {
      const { from, to, limit } = normalizeAuditQuery(query);
      const matches: Entry[] = [];
      for (let i = 0; i < count; i += 1) {
        const entry = ring[(start + i) % maxRecords] as Entry;
        const r = entry.record;
        if (entry.atMs < from || entry.atMs > to) continue;
        if (query.integrationId !== undefined && r.integrationId !== query.integrationId) continue;
        if (query.connectionId !== undefined && r.connectionId !== query.connectionId) continue;
        if (query.tenantId !== undefined && r.tenantId !== query.tenantId) continue;
        if (query.kind !== undefined && r.kind !== query.kind) continue;
        if (query.eventType !== undefined && r.eventType !== query.eventType) continue;
        matches.push(entry);
      }
      // Sinks may be fed out of order (async publishers); answer by time, then arrival.
      matches.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
      return matches.slice(0, limit).map((entry) => ({ ...entry.record }));
    },
    clear(): void {
      ring = [];
      start = 0;
      count = 0;
    },
  };
  return store;
}

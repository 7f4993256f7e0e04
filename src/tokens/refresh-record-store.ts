import { assertPositiveInt } from '../core/options.js';

/**
 * Remembers when each connection was last refreshed successfully, so a refresh request made
 * before that (a late or redelivered `integration.token.refresh-requested`) is skipped instead
 * of rotating a token that was just rotated.
 */
export interface RefreshRecordStore {
  /** Epoch ms of the connection's last successful refresh, if known. */
  get(connectionId: string): number | undefined | Promise<number | undefined>;
  /** Records a successful refresh at `refreshedAtMs`. */
  set(connectionId: string, refreshedAtMs: number): void | Promise<void>;
}

/** Options of {@link createMemoryRefreshRecordStore}. */
export interface MemoryRefreshRecordStoreOptions {
  /** Most connections remembered; the least recently refreshed are forgotten first. @default 10000 */
  maxEntries?: number;
}

/**
 * The default {@link RefreshRecordStore}: a bounded in-process map. A forgotten connection only
 * loses its stale-request check, never a refresh. Replicas do not share it; pass a shared store
 * (a table, a Redis hash) for the check to hold across them.
 */
export function createMemoryRefreshRecordStore(options: MemoryRefreshRecordStoreOptions = {}): RefreshRecordStore {
  const maxEntries = assertPositiveInt('maxEntries', options.maxEntries ?? 10_000);
  const entries = new Map<string, number>();
  return {
    get: (connectionId) => entries.get(connectionId),
    set(connectionId, refreshedAtMs) {
      const previous = entries.get(connectionId);
      entries.delete(connectionId);
      // Out-of-order completions must not move the record backwards.
      entries.set(connectionId, previous === undefined ? refreshedAtMs : Math.max(previous, refreshedAtMs));
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },
  };
}

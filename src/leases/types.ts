/** A held lease: who holds `key`, until when, and its fencing token. */
export interface LeaseHandle {
  /** The name of the resource held (a scheduler slot, a connection...). */
  key: string;
  /**
   * Fencing token: strictly greater for each new holder of the same key, so a write stamped
   * with an older token can be refused by whoever receives it.
   */
  token: number;
  /** Epoch milliseconds after which the lease is free for others. */
  expiresAt: number;
  /** Identity of this holder (random per acquisition). */
  owner: string;
}

/**
 * Mutual exclusion across replicas with expiry: a dead holder blocks the others for at most the
 * TTL. Memory (one process), Redis (`integration-sync/redis`) and PostgreSQL
 * (`integration-sync/postgres`) implement it.
 */
export interface Lease {
  /** Takes `key` for `ttlMs` if nobody holds it; `null` when it is held. */
  tryAcquire(key: string, ttlMs: number): Promise<LeaseHandle | null>;
  /** Extends a held lease; `null` when it was lost (expired and taken, or released). */
  renew(handle: LeaseHandle, ttlMs: number): Promise<LeaseHandle | null>;
  /** Releases the lease if this handle still holds it; otherwise does nothing. */
  release(handle: LeaseHandle): Promise<void>;
}

/** What an audit record is about. */
export type AuditKind =
  /** A bus took an event this process published. */
  | 'event.published'
  /** A subscriber handled (or skipped as a duplicate, or failed and will retry) an event. */
  | 'event.consumed'
  /** An event failed to parse or failed its schema; it is dead-lettered without retry. */
  | 'event.rejected'
  /** An event was moved to the dead-letter destination. */
  | 'event.dead-lettered'
  /** A sync task changed status. */
  | 'task.transition'
  /** A token refresh finished (outcome `succeeded`, `failed` or `skipped`). */
  | 'token.refresh'
  /**
   * A planner did not publish an item its host function returned: outcome `invalid` (the item
   * failed the event schema and is dropped) or `publish_failed` (the check event is retried).
   */
  | 'planner.skipped';

/**
 * One audit record: what happened, when, to which integration, connection and tenant, with what
 * outcome and why. Records never carry tokens, secrets or raw bodies.
 */
export interface AuditRecord {
  /** What happened; selects which other fields are set. */
  kind: AuditKind;
  /** ISO time the record was made. */
  at: string;
  /** Type of the event concerned, for event records. */
  eventType?: string;
  /** Id of the event concerned, to follow one event across records. */
  eventId?: string;
  /** Consumer group, for consumed/rejected/dead-lettered records. */
  group?: string;
  /** The integration concerned, where the event or task names one. */
  integrationId?: string;
  /** The connection concerned, where the event or refresh names one. */
  connectionId?: string;
  /** The tenant concerned, where the event or task names one. */
  tenantId?: string;
  /** The sync task concerned, for `task.transition` records. */
  taskId?: string;
  /** e.g. `handled`, `duplicate`, `retry`, `invalid`, `max_attempts`, task status `succeeded`. */
  outcome: string;
  /** Short, secret-free reason (error code, validation issues). */
  reason?: string;
  /** 1-based delivery attempt, where one applies. */
  attempt?: number;
}

/**
 * Receives one {@link AuditRecord} per published, consumed, rejected and dead-lettered event and
 * per task transition. A sink that throws or rejects is logged and ignored: auditing never
 * breaks delivery.
 */
export interface AuditSink {
  /** Stores or forwards one record; callers do not wait on it beyond logging a failure. */
  record(record: AuditRecord): void | Promise<void>;
}

/** Discards every record (the default). */
export const noopAuditSink: AuditSink = { record: () => {} };

/** Filter of {@link AuditStore.query}: every given field must match; times are inclusive ISO bounds. */
export interface AuditQuery {
  /** Only records about this integration. */
  integrationId?: string;
  /** Only records about this connection. */
  connectionId?: string;
  /** Only records about this tenant. */
  tenantId?: string;
  /** Only records of this kind. */
  kind?: AuditKind;
  /** Only records about events of this type. */
  eventType?: string;
  /** ISO lower bound on `at`. */
  from?: string;
  /** ISO upper bound on `at`. */
  to?: string;
  /** Most records returned, oldest first. @default 1000 */
  limit?: number;
}

/** An {@link AuditSink} that can answer "what happened to this integration, connection or tenant between these times". */
export interface AuditStore extends AuditSink {
  /** Records matching every given field of `query`, oldest first, at most `limit`. */
  query(query?: AuditQuery): Promise<AuditRecord[]>;
}

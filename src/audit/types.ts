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
  kind: AuditKind;
  /** ISO time the record was made. */
  at: string;
  eventType?: string;
  eventId?: string;
  /** Consumer group, for consumed/rejected/dead-lettered records. */
  group?: string;
  integrationId?: string;
  connectionId?: string;
  tenantId?: string;
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
  record(record: AuditRecord): void | Promise<void>;
}

/** Discards every record (the default). */
export const noopAuditSink: AuditSink = { record: () => {} };

/** Filter of {@link AuditStore.query}: every given field must match; times are inclusive ISO bounds. */
export interface AuditQuery {
  integrationId?: string;
  connectionId?: string;
  tenantId?: string;
  kind?: AuditKind;
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
  query(query?: AuditQuery): Promise<AuditRecord[]>;
}

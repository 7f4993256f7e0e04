import { z } from 'zod';

/**
 * An RFC 3339 date-time with a `Z` or numeric offset (what `Date#toISOString()` emits, and what
 * any other producer may send). Local times without an offset are rejected.
 */
export const isoDateTime = z.iso.datetime({ offset: true });

const id = z.string().min(1);

/** The seven event types of the contract. */
export const EventTypes = {
  /** Published by SyncSchedulerService each tick. */
  SyncCheckDue: 'integration.sync.check-due',
  /** Published by TokenRefreshService each tick. */
  TokenCheckExpiring: 'integration.token.check-expiring',
  /** Published by refreshConnectionTokens on success. */
  TokenRefreshed: 'integration.token.refreshed',
  /** Published by refreshConnectionTokens on failure. */
  TokenRefreshFailed: 'integration.token.refresh.failed',
  /** Consumed: run a sync for an integration and tenant. */
  SyncScheduled: 'integration.sync.scheduled',
  /** Consumed: a provider webhook arrived; sync what it names. */
  WebhookReceived: 'integration.webhook.received',
  /** Consumed: refresh one connection's tokens. */
  TokenRefreshRequested: 'integration.token.refresh-requested',
} as const;

/** One of the seven contract event types. */
export type EventType = (typeof EventTypes)[keyof typeof EventTypes];

/** Data of `integration.sync.check-due`. Extra fields are kept. */
export const syncCheckDueSchema = z.looseObject({
  timestamp: isoDateTime,
});

/** Data of `integration.token.check-expiring`. Extra fields are kept. */
export const tokenCheckExpiringSchema = z.looseObject({
  timestamp: isoDateTime,
  thresholdTime: isoDateTime,
});

/** Data of `integration.token.refreshed`. Extra fields (`expiresAt`, `attempts`) are kept. */
export const tokenRefreshedSchema = z.looseObject({
  connectionId: id,
  integrationId: id,
  refreshedAt: isoDateTime,
});

/**
 * Data of `integration.token.refresh.failed`. `error` is a short classified string such as
 * `invalid_grant`, `rate_limited`, `timeout` or `http_503`. Extra fields (`retryable`,
 * `attempts`, `code`) are kept.
 */
export const tokenRefreshFailedSchema = z.looseObject({
  connectionId: id,
  integrationId: id,
  error: z.string().min(1),
  failedAt: isoDateTime,
});

/** Data of `integration.sync.scheduled`. `trigger` is free text (`schedule`, `manual`...). */
export const syncScheduledSchema = z.looseObject({
  integrationId: id,
  tenantId: id,
  trigger: z.string().min(1),
  scheduledAt: isoDateTime,
});

/** Data of `integration.webhook.received`. `entityType` and `filters` are optional. */
export const webhookReceivedSchema = z.looseObject({
  integrationId: id,
  tenantId: id,
  entityType: z.string().min(1).optional(),
  filters: z.record(z.string(), z.unknown()).optional(),
});

/** Data of `integration.token.refresh-requested`. */
export const tokenRefreshRequestedSchema = z.looseObject({
  connectionId: id,
  integrationId: id,
  tenantId: id,
  expiresAt: isoDateTime,
  requestedAt: isoDateTime,
});

/** Data type of `integration.sync.check-due`. */
export type SyncCheckDueData = z.output<typeof syncCheckDueSchema>;
/** Data type of `integration.token.check-expiring`. */
export type TokenCheckExpiringData = z.output<typeof tokenCheckExpiringSchema>;
/** Data type of `integration.token.refreshed`. */
export type TokenRefreshedData = z.output<typeof tokenRefreshedSchema>;
/** Data type of `integration.token.refresh.failed`. */
export type TokenRefreshFailedData = z.output<typeof tokenRefreshFailedSchema>;
/** Data type of `integration.sync.scheduled`. */
export type SyncScheduledData = z.output<typeof syncScheduledSchema>;
/** Data type of `integration.webhook.received`. */
export type WebhookReceivedData = z.output<typeof webhookReceivedSchema>;
/** Data type of `integration.token.refresh-requested`. */
export type TokenRefreshRequestedData = z.output<typeof tokenRefreshRequestedSchema>;

/** Maps each contract event type to its data type. */
export interface EventDataMap {
  'integration.sync.check-due': SyncCheckDueData;
  'integration.token.check-expiring': TokenCheckExpiringData;
  'integration.token.refreshed': TokenRefreshedData;
  'integration.token.refresh.failed': TokenRefreshFailedData;
  'integration.sync.scheduled': SyncScheduledData;
  'integration.webhook.received': WebhookReceivedData;
  'integration.token.refresh-requested': TokenRefreshRequestedData;
}

/** A schema registry: event type to the zod schema of its `data`. */
export type EventSchemaRegistry = ReadonlyMap<string, z.ZodType>;

/** The data schema of each of the seven contract event types. */
export const eventSchemas: EventSchemaRegistry = new Map<string, z.ZodType>([
  [EventTypes.SyncCheckDue, syncCheckDueSchema],
  [EventTypes.TokenCheckExpiring, tokenCheckExpiringSchema],
  [EventTypes.TokenRefreshed, tokenRefreshedSchema],
  [EventTypes.TokenRefreshFailed, tokenRefreshFailedSchema],
  [EventTypes.SyncScheduled, syncScheduledSchema],
  [EventTypes.WebhookReceived, webhookReceivedSchema],
  [EventTypes.TokenRefreshRequested, tokenRefreshRequestedSchema],
]);

/**
 * The CloudEvents 1.0 envelope in structured JSON mode. Extension attributes (such as
 * `traceparent`) are kept. `time` and `datacontenttype` are optional on read, as CloudEvents
 * allows; events created here always carry both.
 */
export const cloudEventEnvelopeSchema = z.looseObject({
  specversion: z.literal('1.0'),
  id,
  source: z.string().min(1),
  type: z.string().min(1),
  time: isoDateTime.optional(),
  datacontenttype: z
    .string()
    .regex(/^application\/([\w.+-]+\+)?json(\s*;.*)?$/i, 'must be application/json')
    .optional(),
  subject: z.string().optional(),
  dataschema: z.string().optional(),
  data: z.unknown(),
});

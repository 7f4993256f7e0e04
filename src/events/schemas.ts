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
  /** When the scheduler tick fired (ISO time). The event id, not this, names the slot. */
  timestamp: isoDateTime,
});

/** Data of `integration.token.check-expiring`. Extra fields are kept. */
export const tokenCheckExpiringSchema = z.looseObject({
  /** When the refresher tick fired (ISO time). */
  timestamp: isoDateTime,
  /** Connections whose tokens expire before this ISO time are due for a refresh. */
  thresholdTime: isoDateTime,
});

/** Data of `integration.token.refreshed`. Extra fields (`expiresAt`, `attempts`) are kept. */
export const tokenRefreshedSchema = z.looseObject({
  /** The connection whose tokens were renewed. */
  connectionId: id,
  /** The integration the connection belongs to. */
  integrationId: id,
  /** When the refresh succeeded (ISO time). */
  refreshedAt: isoDateTime,
});

/**
 * Data of `integration.token.refresh.failed`. `error` is a short classified string such as
 * `invalid_grant`, `rate_limited`, `timeout` or `http_503`. Extra fields (`retryable`,
 * `attempts`, `code`) are kept.
 */
export const tokenRefreshFailedSchema = z.looseObject({
  /** The connection whose refresh failed. */
  connectionId: id,
  /** The integration the connection belongs to. */
  integrationId: id,
  /** Classified cause (`invalid_grant`, `rate_limited`, `timeout`, `http_503`...); never a provider body. */
  error: z.string().min(1),
  /** When the refresh call failed (ISO time); extra `retryable` says whether asking again may help. */
  failedAt: isoDateTime,
});

/** Data of `integration.sync.scheduled`. `trigger` is free text (`schedule`, `manual`...). */
export const syncScheduledSchema = z.looseObject({
  /** The integration to sync. */
  integrationId: id,
  /** The tenant whose data to sync. */
  tenantId: id,
  /** Why the sync was asked for (`schedule`, `manual`...); copied onto the sync task. */
  trigger: z.string().min(1),
  /** When the sync was asked for (ISO time). */
  scheduledAt: isoDateTime,
});

/** Data of `integration.webhook.received`. `entityType` and `filters` are optional. */
export const webhookReceivedSchema = z.looseObject({
  /** The integration the webhook came from. */
  integrationId: id,
  /** The tenant the webhook concerns. */
  tenantId: id,
  /** Narrows the sync to one kind of entity; absent means every entity type. */
  entityType: z.string().min(1).optional(),
  /** Provider-specific criteria narrowing the sync further; absent means no narrowing. */
  filters: z.record(z.string(), z.unknown()).optional(),
});

/** Data of `integration.token.refresh-requested`. */
export const tokenRefreshRequestedSchema = z.looseObject({
  /** The connection whose tokens to refresh. */
  connectionId: id,
  /** The integration the connection belongs to. */
  integrationId: id,
  /** The tenant owning the connection. */
  tenantId: id,
  /** When the current access token expires (ISO time), as the planner saw it. */
  expiresAt: isoDateTime,
  /** When the refresh was asked for (ISO time). */
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
  /** A scheduler tick: time to look for integrations due a sync. */
  'integration.sync.check-due': SyncCheckDueData;
  /** A refresher tick: time to look for connections whose tokens expire soon. */
  'integration.token.check-expiring': TokenCheckExpiringData;
  /** A connection's tokens were renewed. */
  'integration.token.refreshed': TokenRefreshedData;
  /** A connection's token refresh failed. */
  'integration.token.refresh.failed': TokenRefreshFailedData;
  /** Request to run a sync for one integration and tenant. */
  'integration.sync.scheduled': SyncScheduledData;
  /** A provider webhook arrived; sync what it names. */
  'integration.webhook.received': WebhookReceivedData;
  /** Request to refresh one connection's tokens. */
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
  /** Only CloudEvents 1.0 is accepted. */
  specversion: z.literal('1.0'),
  /** Unique per `source`; consumers deduplicate on it. */
  id,
  /** Who produced the event (a URI reference). */
  source: z.string().min(1),
  /** The event type, which selects the data schema. */
  type: z.string().min(1),
  /** When the event happened (RFC 3339). */
  time: isoDateTime.optional(),
  /** Only JSON media types are accepted, since data is decoded as JSON. */
  datacontenttype: z
    .string()
    .regex(/^application\/([\w.+-]+\+)?json(\s*;.*)?$/i, 'must be application/json')
    .optional(),
  /** What the event is about, within the source. */
  subject: z.string().optional(),
  /** URI of the schema `data` adheres to. */
  dataschema: z.string().optional(),
  /** The payload; checked afterwards against the schema registered for `type`. */
  data: z.unknown(),
});

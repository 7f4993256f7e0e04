import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { IntegrationSyncError } from '../core/errors.js';
import { cloudEventEnvelopeSchema, eventSchemas, type EventDataMap, type EventSchemaRegistry } from './schemas.js';

/** A CloudEvents 1.0 event in structured JSON mode. Extension attributes ride along as extra keys. */
export interface CloudEvent<T = unknown, K extends string = string> {
  /** CloudEvents spec version; only 1.0 is produced or accepted. */
  specversion: '1.0';
  /** Unique per `source`; consumers deduplicate redeliveries on it. */
  id: string;
  /** Who produced the event (a URI reference). @default "integration-sync" for events created here */
  source: string;
  /** The event type; selects the schema `data` is validated against. */
  type: K;
  /** RFC 3339; always set on events created by this library. */
  time?: string;
  /** `application/json` on events created by this library. */
  datacontenttype?: string;
  /** What the event is about, within its source. */
  subject?: string;
  /** URI of the schema `data` adheres to. */
  dataschema?: string;
  /** The payload, validated against the schema registered for `type`. */
  data: T;
  /** Extension attributes (`traceparent`...). */
  [extension: string]: unknown;
}

/** A contract event of type `K`, with its typed data. */
export type ContractEvent<K extends keyof EventDataMap = keyof EventDataMap> = CloudEvent<EventDataMap[K], K>;

/** Options of {@link createEvent}. */
export interface CreateEventOptions {
  /** Event id; derive it from the work (slot, integration...) to make duplicates detectable. @default a random UUID */
  id?: string;
  /** @default "integration-sync" */
  source?: string;
  /** Event time. @default now */
  time?: Date | string;
  /** Extension attributes to add (lowercase alphanumeric names, per CloudEvents). */
  extensions?: Record<string, string | number | boolean>;
  /** Registry to validate `data` against. @default the seven contract schemas */
  schemas?: EventSchemaRegistry;
}

/** Default `source` of events created by this library. */
export const DEFAULT_SOURCE = 'integration-sync';

/**
 * Creates a CloudEvents 1.0 event and validates its data against the type's schema.
 * Throws `ERR_EVENT_INVALID` with the failing paths when the data does not fit.
 *
 * @example
 * const event = createEvent('integration.sync.check-due', { timestamp: new Date().toISOString() });
 */
export function createEvent<K extends keyof EventDataMap>(
  type: K,
  data: EventDataMap[K],
  options?: CreateEventOptions,
): ContractEvent<K>;
export function createEvent<T>(type: string, data: T, options?: CreateEventOptions): CloudEvent<T>;
export function createEvent(type: string, data: unknown, options: CreateEventOptions = {}): CloudEvent {
  options ??= {};
  if (options.time instanceof Date && Number.isNaN(options.time.getTime())) {
    throw new IntegrationSyncError('ERR_EVENT_INVALID', `Cannot create ${String(type)}: time is an Invalid Date`, { details: { type } });
  }
  const time = options.time instanceof Date ? options.time.toISOString() : (options.time ?? new Date().toISOString());
  const event: CloudEvent = {
    ...(options.extensions ?? {}),
    specversion: '1.0',
    id: options.id ?? randomUUID(),
    source: options.source ?? DEFAULT_SOURCE,
    type,
    time,
    datacontenttype: 'application/json',
    data,
  };
  const result = validateEvent(event, options.schemas ?? eventSchemas);
  if (!result.ok) {
    throw new IntegrationSyncError('ERR_EVENT_INVALID', `Cannot create ${type}: ${formatIssues(result.issues)}`, {
      details: { type, issues: result.issues },
    });
  }
  return result.event;
}

/** One validation problem: where (`data.tenantId`) and what. */
export interface ValidationIssue {
  /** Dotted path from the envelope root, e.g. `data.scheduledAt`; empty for the root. */
  path: string;
  /** Human-readable reason, as the schema or the JSON decoder reported it. */
  message: string;
}

/** Result of {@link validateEvent} and {@link parseEvent}. */
export type ValidationResult<E = CloudEvent> =
  | {
      /** The value is a valid event. */
      ok: true;
      /** The event, with `data` as the schema parsed it. */
      event: E;
    }
  | {
      /** The value was rejected. */
      ok: false;
      /** Every problem found, at least one. */
      issues: ValidationIssue[];
    };

function toIssues(error: z.ZodError, prefix: string[]): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
}

/** Formats issues as `data.tenantId: Required; ...` for messages. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

/**
 * Validates an already-decoded value as a CloudEvent: the envelope, then the data against the
 * schema registered for its type (types without a schema keep their data as is).
 */
export function validateEvent(value: unknown, schemas: EventSchemaRegistry = eventSchemas): ValidationResult {
  try {
    const envelope = cloudEventEnvelopeSchema.safeParse(value);
    if (!envelope.success) return { ok: false, issues: toIssues(envelope.error, []) };
    const event = envelope.data as CloudEvent;
    const schema = schemas.get(event.type);
    if (schema === undefined) return { ok: true, event };
    const data = schema.safeParse(event.data);
    if (!data.success) return { ok: false, issues: toIssues(data.error, ['data']) };
    return { ok: true, event: { ...event, data: data.data } };
  } catch {
    // safeParse still throws when a getter or Proxy trap of the value does: that is bad input too.
    return { ok: false, issues: [{ path: '', message: 'value could not be read (a getter or proxy threw)' }] };
  }
}

/** Keys dropped while decoding, so a payload can never reach an object's prototype. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Decodes JSON text without letting `__proto__`, `constructor` or `prototype` keys through.
 * Throws `ERR_EVENT_UNPARSABLE` on text that is not JSON (the message never quotes the text).
 */
export function safeJsonParse(text: string): unknown {
  try {
    // A reviver makes JSON.parse several times slower; only pay for it when a forbidden key could
    // be present, literally or hidden behind a \u escape.
    if (!text.includes('\\u') && !text.includes('"__proto__"') && !text.includes('"constructor"') && !text.includes('"prototype"')) {
      return JSON.parse(text);
    }
    return JSON.parse(text, (key, value: unknown) => (FORBIDDEN_KEYS.has(key) ? undefined : value));
  } catch (cause) {
    throw new IntegrationSyncError('ERR_EVENT_UNPARSABLE', 'Payload is not valid JSON', {
      details: { reason: cause instanceof Error ? cause.message.slice(0, 120) : 'parse error' },
    });
  }
}

/** Default largest payload accepted by {@link parseEvent} and the buses: 256 KiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;

/** Options of {@link parseEvent}. */
export interface ParseEventOptions {
  /** @default the seven contract schemas */
  schemas?: EventSchemaRegistry;
  /** @default 262144 (256 KiB) */
  maxPayloadBytes?: number;
}

/**
 * Parses a structured-mode CloudEvent from its JSON text or bytes, or from an already-decoded
 * object, and validates it. Never throws on bad input: returns `{ ok: false, issues }`.
 *
 * @example
 * const result = parseEvent(body);
 * if (!result.ok) console.error(result.issues);
 */
export function parseEvent(input: string | Uint8Array | object, options: ParseEventOptions = {}): ValidationResult {
  const max = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  let value: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
    if (size > max) return { ok: false, issues: [{ path: '', message: `payload is ${size} bytes; the limit is ${max}` }] };
    const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
    try {
      value = safeJsonParse(text);
    } catch {
      return { ok: false, issues: [{ path: '', message: 'payload is not valid JSON' }] };
    }
  }
  return validateEvent(value, options.schemas ?? eventSchemas);
}

/** Serialises an event to its structured-mode JSON text. Throws `ERR_EVENT_INVALID` on values JSON cannot carry. */
export function serializeEvent(event: CloudEvent): string {
  try {
    return JSON.stringify(event);
  } catch (cause) {
    throw new IntegrationSyncError('ERR_EVENT_INVALID', `Event ${String(event.type)} cannot be serialised to JSON`, { cause });
  }
}

/** The integration, connection and tenant an event is about, where its data names them. */
export interface EventSubject {
  /** `data.integrationId`, when it is a string. */
  integrationId?: string;
  /** `data.connectionId`, when it is a string. */
  connectionId?: string;
  /** `data.tenantId`, when it is a string. */
  tenantId?: string;
}

/** Reads {@link EventSubject} fields from any event's data, ignoring non-string values. */
export function eventSubject(event: { data?: unknown } | undefined): EventSubject {
  const out: EventSubject = {};
  // Rejected payloads reach here too: a getter or Proxy trap that throws just leaves a field out.
  try {
    const data = event?.data;
    if (typeof data !== 'object' || data === null) return {};
    const record = data as Record<string, unknown>;
    for (const key of ['integrationId', 'connectionId', 'tenantId'] as const) {
      const value = record[key];
      if (typeof value === 'string') out[key] = value;
    }
  } catch {
    // Keep what was read.
  }
  return out;
}

import type { z } from 'zod';
import type { DeliveryContext, EventBus, EventHandler, Subscription } from '../bus/types.js';
import { IntegrationSyncError, NonRetryableError } from '../core/errors.js';
import { assertNonEmptyString } from '../core/options.js';
import { formatIssues, validateEvent, type CloudEvent } from './envelope.js';
import { eventSchemas, type EventDataMap, type EventSchemaRegistry } from './schemas.js';

/** A route's handler: gets the event with its data already parsed by the route's schema. */
export type RouteHandler<T = unknown, K extends string = string> = (
  event: CloudEvent<T, K>,
  context: DeliveryContext,
) => Promise<void> | void;

/** Options of {@link EventRouter.subscribe}: everything but what the router already knows. */
export interface RouterSubscribeOptions {
  /** Consumer group: the members of one group share the work. */
  group: string;
  /** Handlers run at once in this member. @default the bus's (1) */
  concurrency?: number;
  /** Deliveries before an event that keeps failing is dead-lettered. @default the bus's (5) */
  maxAttempts?: number;
}

interface Route {
  schema: z.ZodType | undefined;
  handler: RouteHandler<unknown>;
}

const neverAborted = new AbortController().signal;

/**
 * A `type -> schema -> handler` table that is itself an {@link EventHandler}. The seven contract
 * types get their contract schema (and typed data) by default; other types take a schema, or
 * none (data passes through as `unknown`).
 *
 * Through a bus, validation happens once, in the bus's delivery pipeline, against
 * {@link EventRouter.schemas}; an event that fails it never reaches a route. Called directly
 * ({@link EventRouter.handle}), the router validates the event itself, so it is safe without a
 * bus. An event of a type with no route is rejected with a `NonRetryableError` (dead-lettered
 * at once by a bus: retrying cannot give it a route).
 *
 * @example
 * const router = new EventRouter()
 *   .on('integration.sync.scheduled', async (event) => {
 *     console.log(event.data.integrationId); // typed
 *   })
 *   .on('acme.invoice.paid', z.looseObject({ invoiceId: z.string() }), async (event) => {
 *     console.log(event.data.invoiceId);
 *   });
 * const subscription = await router.subscribe(bus, { group: 'billing', concurrency: 4 });
 */
export class EventRouter {
  private readonly routes = new Map<string, Route>();
  /** {@link EventRouter.schemas} as `handle()` reads it, built once per set of routes, not per event. */
  private validation: EventSchemaRegistry | undefined;

  /** Routes a contract event type, with its contract schema. */
  on<K extends keyof EventDataMap>(type: K, handler: RouteHandler<EventDataMap[K], K>): this;
  /** Routes any event type, validating its data with `schema`. */
  on<S extends z.ZodType, K extends string = string>(type: K, schema: S, handler: RouteHandler<z.output<S>, K>): this;
  /** Routes a non-contract type without a schema: data arrives as `unknown`. */
  on(type: string, handler: RouteHandler<unknown>): this;
  on(type: string, schemaOrHandler: z.ZodType | RouteHandler<never, never>, maybeHandler?: RouteHandler<never, never>): this {
    assertNonEmptyString('EventRouter.on: type', type);
    if (this.routes.has(type)) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `EventRouter.on: ${type} already has a handler; register each type once`);
    }
    const explicit = typeof schemaOrHandler !== 'function';
    const handler = (explicit ? maybeHandler : schemaOrHandler) as RouteHandler<unknown> | undefined;
    if (typeof handler !== 'function') {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `EventRouter.on: the handler of ${type} must be a function`);
    }
    const schema = explicit ? (schemaOrHandler as z.ZodType) : eventSchemas.get(type);
    if (explicit && (typeof schema !== 'object' || schema === null || typeof (schema as { safeParse?: unknown }).safeParse !== 'function')) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', `EventRouter.on: the schema of ${type} must be a zod schema`);
    }
    this.routes.set(type, { schema, handler });
    this.validation = undefined;
    return this;
  }

  /** The routed event types, in registration order (pass as `types` to `bus.subscribe`). */
  get types(): string[] {
    return [...this.routes.keys()];
  }

  /** The schema of each routed type that has one (pass as `schemas` to `bus.subscribe`). */
  get schemas(): EventSchemaRegistry {
    const registry = new Map<string, z.ZodType>();
    for (const [type, route] of this.routes) if (route.schema) registry.set(type, route.schema);
    return registry;
  }

  /**
   * Handles one event: validates it against its route's schema, then runs the route.
   * Rejects with a `NonRetryableError` (code `ERR_NON_RETRYABLE`) when the event is not a valid
   * CloudEvent, its data fails the schema, or no route takes its type. Bound, so it can be
   * passed as a handler as is.
   */
  readonly handle = async (event: CloudEvent, context?: Partial<DeliveryContext>): Promise<void> => {
    const result = validateEvent(event, (this.validation ??= this.schemas));
    if (!result.ok) {
      throw new NonRetryableError(`EventRouter: event is invalid: ${formatIssues(result.issues).slice(0, 500)}`, {
        details: { issues: result.issues },
      });
    }
    await this.dispatch(result.event, context);
  };

  /**
   * Subscribes the router to `bus` with its types, schemas and handler.
   *
   * @example
   * const subscription = await router.subscribe(bus, { group: 'integration-sync', concurrency: 8 });
   * // later
   * await subscription.close();
   */
  async subscribe(bus: EventBus, options: RouterSubscribeOptions): Promise<Subscription> {
    options ??= {} as RouterSubscribeOptions;
    if (this.routes.size === 0) {
      throw new IntegrationSyncError('ERR_INVALID_OPTION', 'EventRouter.subscribe: add a route with on() before subscribing');
    }
    // The pipeline has already validated against `schemas`; dispatch without parsing again.
    const handler: EventHandler = (event, context) => this.dispatch(event, context);
    return bus.subscribe({
      group: options.group,
      types: this.types,
      schemas: this.schemas,
      handler,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    });
  }

  private async dispatch(event: CloudEvent, context: Partial<DeliveryContext> | undefined): Promise<void> {
    const route = this.routes.get(event.type);
    if (route === undefined) {
      throw new NonRetryableError(`EventRouter: no handler for event type ${String(event.type).slice(0, 200)}; route it with on() or do not subscribe to it`);
    }
    await route.handler(event, {
      attempt: context?.attempt ?? 1,
      group: context?.group ?? 'direct',
      signal: context?.signal ?? neverAborted,
      progress: context?.progress ?? (() => {}),
    });
  }
}

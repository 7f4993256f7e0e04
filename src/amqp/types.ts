/**
 * The slice of amqplib's promise API (0.10) this adapter uses, typed structurally so the
 * package never imports `amqplib`: pass the `ChannelModel` that `amqplib.connect(url)` resolves
 * to, and any object with the same shape works too.
 */

/** Message properties the adapter sets or reads on publish. */
export interface AmqpPublishOptions {
  /** Stores the message on disk, so it survives a broker restart; the adapter always sets it. */
  persistent?: boolean;
  /** The event id, so consumers and tools can correlate a message with its event. */
  messageId?: string;
  /** MIME type of the body (`application/json`). */
  contentType?: string;
  /** The event type, visible without decoding the body. */
  type?: string;
  /** Publish time in epoch seconds, as AMQP carries it. */
  timestamp?: number;
  /** Asks the broker to return the message when no queue takes it, instead of dropping it. */
  mandatory?: boolean;
  /** Per-message TTL in milliseconds, as a decimal string. */
  expiration?: string;
  /** Application headers; the adapter uses them for the attempt count and dead-letter reason. */
  headers?: Record<string, unknown>;
  /** Kept as received when a message is copied for a retry. */
  correlationId?: string;
  /** Kept as received when a message is copied for a retry. */
  appId?: string;
}

/** A delivered (or returned) message, as amqplib hands it over. */
export interface AmqpMessage {
  /** The body: the event's structured-mode JSON. */
  content: Buffer;
  /** Delivery fields set by the broker. */
  fields: {
    /** Channel-scoped number that `ack`/`nack` refer to. */
    deliveryTag: number;
    /** True when the broker delivered this message before (classic queues' only redelivery signal). */
    redelivered?: boolean;
    /** The exchange it was published to (empty for the default exchange). */
    exchange: string;
    /** The routing key it was published with (the event type, or a queue name for retries). */
    routingKey: string;
    /** The consumer it was delivered to; absent on returned messages. */
    consumerTag?: string;
  };
  /** Properties set by the publisher; see {@link AmqpPublishOptions}. */
  properties: {
    /** The event id, when the publisher set it. */
    messageId?: string | undefined;
    /** MIME type of the body. */
    contentType?: string | undefined;
    /** The event type, when the publisher set it. */
    type?: string | undefined;
    /** Application headers (`x-attempt`, quorum queues' `x-delivery-count`...). */
    headers?: Record<string, unknown> | undefined;
    /** Publisher's correlation id, carried over to retry copies. */
    correlationId?: string | undefined;
    /** Publish time in epoch seconds. */
    timestamp?: number | undefined;
    /** Publisher's application id, carried over to retry copies. */
    appId?: string | undefined;
  };
}

/** A channel: the unit RabbitMQ closes on a protocol error (404, 406...). */
export interface AmqpChannel {
  /** Declares an exchange, or checks an existing one has the same settings (else the channel closes with 406). */
  assertExchange(exchange: string, type: string, options?: { durable?: boolean; autoDelete?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>;
  /** Declares a queue, or checks an existing one has the same settings (else the channel closes with 406). */
  assertQueue(queue: string, options?: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>;
  /** Checks a queue exists without declaring it; the channel closes with 404 when it does not. */
  checkQueue(queue: string): Promise<unknown>;
  /** Routes messages with `routingKey` from `exchange` into `queue`. */
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<unknown>;
  /** Caps unacked deliveries on this channel; the adapter sets it to the subscription's concurrency. */
  prefetch(count: number): Promise<unknown>;
  /** Starts a consumer; `onMessage` gets `null` when the broker cancels it. */
  consume(
    queue: string,
    onMessage: (message: AmqpMessage | null) => void,
    options?: { noAck?: boolean; consumerTag?: string },
  ): Promise<{
    /** Names the consumer for `cancel`. */
    consumerTag: string;
  }>;
  /** Stops a consumer; its unacked messages stay with the channel until acked or the channel closes. */
  cancel(consumerTag: string): Promise<unknown>;
  /** Acknowledges a delivery, so the broker drops it. */
  ack(message: AmqpMessage, allUpTo?: boolean): void;
  /** Rejects a delivery; with `requeue` the broker delivers it again. */
  nack(message: AmqpMessage, allUpTo?: boolean, requeue?: boolean): void;
  /** Closes the channel; unacked deliveries go back to their queues. */
  close(): Promise<void>;
  /** `close`: the channel is gone (for good); `drain`: the write buffer emptied. */
  on(event: 'close' | 'drain', listener: () => void): unknown;
  /** A channel-level error; a `close` follows. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** A `mandatory` message no queue took, returned by the broker. */
  on(event: 'return', listener: (message: AmqpMessage) => void): unknown;
  /** Removes a `close` or `drain` listener. */
  off(event: 'close' | 'drain', listener: () => void): unknown;
  /** Removes an `error` listener. */
  off(event: 'error', listener: (error: Error) => void): unknown;
  /** Removes a `return` listener. */
  off(event: 'return', listener: (message: AmqpMessage) => void): unknown;
}

/** A channel in confirm mode: each publish is confirmed (or nacked) by the broker. */
export interface AmqpConfirmChannel extends AmqpChannel {
  /** Returns false when the write buffer is full; wait for `'drain'` before writing more. */
  publish(exchange: string, routingKey: string, content: Buffer, options: AmqpPublishOptions, callback: (error: unknown) => void): boolean;
}

/**
 * An amqplib connection (`ChannelModel`). The bus opens channels on it and listens for its
 * `close`; it closes only connections it opened itself through `connect`.
 */
export interface AmqpConnection {
  /** Opens a plain channel; each subscription consumes on one of its own. */
  createChannel(): Promise<AmqpChannel>;
  /** Opens a confirm-mode channel, used for every publish (events, retries, dead letters). */
  createConfirmChannel(): Promise<AmqpConfirmChannel>;
  /** The connection is gone; the bus reconnects (with `connect`) or stops. */
  on(event: 'close', listener: (error?: unknown) => void): unknown;
  /** A connection-level error; a `close` follows. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Removes a `close` listener. */
  off(event: 'close', listener: (error?: unknown) => void): unknown;
  /** Removes an `error` listener. */
  off(event: 'error', listener: (error: Error) => void): unknown;
  /** Used only on connections the bus opened itself through `connect`. */
  close?(): Promise<void>;
}

/**
 * The slice of amqplib's promise API (0.10) this adapter uses, typed structurally so the
 * package never imports `amqplib`: pass the `ChannelModel` that `amqplib.connect(url)` resolves
 * to, and any object with the same shape works too.
 */

/** Message properties the adapter sets or reads on publish. */
export interface AmqpPublishOptions {
  persistent?: boolean;
  messageId?: string;
  contentType?: string;
  type?: string;
  timestamp?: number;
  mandatory?: boolean;
  /** Per-message TTL in milliseconds, as a decimal string. */
  expiration?: string;
  headers?: Record<string, unknown>;
  correlationId?: string;
  appId?: string;
}

/** A delivered (or returned) message, as amqplib hands it over. */
export interface AmqpMessage {
  content: Buffer;
  fields: {
    deliveryTag: number;
    redelivered?: boolean;
    exchange: string;
    routingKey: string;
    consumerTag?: string;
  };
  properties: {
    messageId?: string | undefined;
    contentType?: string | undefined;
    type?: string | undefined;
    headers?: Record<string, unknown> | undefined;
    correlationId?: string | undefined;
    timestamp?: number | undefined;
    appId?: string | undefined;
  };
}

/** A channel: the unit RabbitMQ closes on a protocol error (404, 406...). */
export interface AmqpChannel {
  assertExchange(exchange: string, type: string, options?: { durable?: boolean; autoDelete?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>;
  assertQueue(queue: string, options?: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean; arguments?: Record<string, unknown> }): Promise<unknown>;
  checkQueue(queue: string): Promise<unknown>;
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<unknown>;
  prefetch(count: number): Promise<unknown>;
  consume(queue: string, onMessage: (message: AmqpMessage | null) => void, options?: { noAck?: boolean; consumerTag?: string }): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(message: AmqpMessage, allUpTo?: boolean): void;
  nack(message: AmqpMessage, allUpTo?: boolean, requeue?: boolean): void;
  close(): Promise<void>;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'return', listener: (message: AmqpMessage) => void): unknown;
  off(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
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
  createChannel(): Promise<AmqpChannel>;
  createConfirmChannel(): Promise<AmqpConfirmChannel>;
  on(event: 'close', listener: (error?: unknown) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'close', listener: (error?: unknown) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  /** Used only on connections the bus opened itself through `connect`. */
  close?(): Promise<void>;
}

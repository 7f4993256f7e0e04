/**
 * The slices of `@nats-io/transport-node` and `@nats-io/jetstream` (v3) that the NATS bus uses,
 * typed structurally: the host builds the connection and the JetStream clients itself (TLS, auth,
 * reconnect policy are its business) and passes them in, so this package never imports them.
 * The real `NatsConnection`, `JetStreamClient` and `JetStreamManager` satisfy these types.
 */

/** The parts of a NATS `NatsConnection` the bus uses. */
export interface NatsConnectionLike {
  /** True once the connection is closed for good (not while it reconnects). */
  isClosed(): boolean;
  /** Closes the connection; only called when `closeConnection` is set. */
  close(): Promise<void>;
  /**
   * Core subscription, used for JetStream's max-deliveries advisories (events that ran out of
   * deliveries without an outcome become dead letters). Without it those are only logged by the server.
   */
  subscribe?(subject: string, options: { queue?: string; callback: (error: Error | null, msg: { data: Uint8Array }) => void }): { unsubscribe(): void };
}

/** JetStream's publish acknowledgement. */
export interface NatsPubAckLike {
  stream: string;
  seq: number;
  /** True when the stream already had a message with this `msgID` inside its duplicate window. */
  duplicate: boolean;
}

/** Delivery metadata of a JetStream message. */
export interface NatsDeliveryInfoLike {
  /** 1-based count of deliveries of this message to this consumer. */
  readonly deliveryCount: number;
  readonly streamSequence: number;
}

/** The parts of a JetStream `JsMsg` the bus uses. */
export interface NatsJsMsgLike {
  readonly data: Uint8Array;
  readonly subject: string;
  readonly info: NatsDeliveryInfoLike;
  ack(): void;
  /** Ack and wait for the server to confirm it (absent on very old clients). */
  ackAck?(options?: { timeout?: number }): Promise<boolean>;
  /** Negative ack: redeliver after `millis` (server 2.7.1+ honours the delay). */
  nak(millis?: number): void;
  /** Resets the ack-wait timer: the handler is still working. */
  working(): void;
  /** Stops redelivery of this message. */
  term(reason?: string): void;
}

/** One pull batch of a JetStream consumer (`ConsumerMessages`). */
export interface NatsConsumerMessagesLike extends AsyncIterable<NatsJsMsgLike> {
  /** Ends the batch; the iteration then finishes. */
  stop(error?: Error): void;
}

/** The parts of a JetStream pull `Consumer` the bus uses. */
export interface NatsConsumerLike {
  fetch(options?: { max_messages?: number; expires?: number }): Promise<NatsConsumerMessagesLike>;
}

/** The parts of a `JetStreamClient` (`jetstream(nc)`) the bus uses. */
export interface NatsJetStreamLike {
  publish(subject: string, payload?: string | Uint8Array, options?: { msgID?: string; timeout?: number }): Promise<NatsPubAckLike>;
  consumers: {
    get(stream: string, name?: string): Promise<NatsConsumerLike>;
  };
  jetstreamManager?(): Promise<NatsJetStreamManagerLike>;
}

/** Stream settings the bus sets when it creates its stream (durations in nanoseconds, as JetStream takes them). */
export interface NatsStreamConfigLike {
  name: string;
  subjects: string[];
  storage: 'file' | 'memory';
  retention: 'limits';
  max_age: number;
  duplicate_window: number;
}

/** Consumer settings the bus sets on its durable consumers (durations in nanoseconds). */
export interface NatsConsumerConfigLike {
  durable_name: string;
  ack_policy: 'explicit';
  deliver_policy: 'all' | 'new';
  filter_subject: string;
  ack_wait: number;
  max_deliver: number;
  backoff?: number[];
  description?: string;
}

/** The parts of a `JetStreamManager` (`jetstreamManager(nc)`) the bus uses. */
export interface NatsJetStreamManagerLike {
  streams: {
    info(name: string): Promise<unknown>;
    add(config: NatsStreamConfigLike): Promise<unknown>;
    /** Reads one stored message (for dead-lettering an event that ran out of deliveries). */
    getMessage?(stream: string, query: { seq: number }): Promise<{ subject: string; data: Uint8Array } | null>;
  };
  consumers: {
    add(stream: string, config: NatsConsumerConfigLike): Promise<unknown>;
    update(stream: string, durable: string, config: Partial<NatsConsumerConfigLike>): Promise<unknown>;
  };
}

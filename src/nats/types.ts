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
  subscribe?(
    subject: string,
    options: { queue?: string; callback: (error: Error | null, msg: { data: Uint8Array }) => void },
  ): {
    /** Stops the advisory subscription; called when the bus subscription closes. */
    unsubscribe(): void;
  };
}

/** JetStream's publish acknowledgement. */
export interface NatsPubAckLike {
  /** The stream that stored the message. */
  stream: string;
  /** The message's sequence number in that stream. */
  seq: number;
  /** True when the stream already had a message with this `msgID` inside its duplicate window. */
  duplicate: boolean;
}

/** Delivery metadata of a JetStream message. */
export interface NatsDeliveryInfoLike {
  /** 1-based count of deliveries of this message to this consumer. */
  readonly deliveryCount: number;
  /** The message's sequence in the stream: names it in logs and makes dead-letter ids unique. */
  readonly streamSequence: number;
}

/** The parts of a JetStream `JsMsg` the bus uses. */
export interface NatsJsMsgLike {
  /** The payload: the event's structured-mode JSON. */
  readonly data: Uint8Array;
  /** The subject it was published on (the prefix and the event type). */
  readonly subject: string;
  /** Delivery metadata; the delivery count is the attempt number. */
  readonly info: NatsDeliveryInfoLike;
  /** Acknowledges without waiting; the fallback when `ackAck` is missing. */
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
  /** Pulls up to `max_messages`, waiting at most `expires` ms for them. */
  fetch(options?: { max_messages?: number; expires?: number }): Promise<NatsConsumerMessagesLike>;
}

/** The parts of a `JetStreamClient` (`jetstream(nc)`) the bus uses. */
export interface NatsJetStreamLike {
  /** Stores a message in the stream; `msgID` (the event id) lets JetStream drop re-publishes. */
  publish(subject: string, payload?: string | Uint8Array, options?: { msgID?: string; timeout?: number }): Promise<NatsPubAckLike>;
  /** Access to existing consumers. */
  consumers: {
    /** Binds to a durable consumer the bus has created. */
    get(stream: string, name?: string): Promise<NatsConsumerLike>;
  };
  /** Makes a manager from this client; used when the `manager` option is not given. */
  jetstreamManager?(): Promise<NatsJetStreamManagerLike>;
}

/** Stream settings the bus sets when it creates its stream (durations in nanoseconds, as JetStream takes them). */
export interface NatsStreamConfigLike {
  /** The stream name. */
  name: string;
  /** Subjects captured: `<prefix>.>`, so every event type and dead letter lands in it. */
  subjects: string[];
  /** Where messages are kept; the bus asks for `file`, so events survive a server restart. */
  storage: 'file' | 'memory';
  /** `limits`: messages stay until `max_age`, whoever consumed them, so groups read independently. */
  retention: 'limits';
  /** How long messages are kept, in nanoseconds. */
  max_age: number;
  /** Window in which a repeated `msgID` is stored once, in nanoseconds. */
  duplicate_window: number;
}

/** Consumer settings the bus sets on its durable consumers (durations in nanoseconds). */
export interface NatsConsumerConfigLike {
  /** Consumer name, derived from the group and event type so every member binds to the same one. */
  durable_name: string;
  /** Every message must be acked on its own. */
  ack_policy: 'explicit';
  /** Where a new consumer starts: the whole stream (`all`) or only later messages (`new`). */
  deliver_policy: 'all' | 'new';
  /** The one event type's subject this consumer takes. */
  filter_subject: string;
  /** How long an unacked delivery waits before redelivery, in nanoseconds. */
  ack_wait: number;
  /** Deliveries before JetStream stops and sends a max-deliveries advisory. */
  max_deliver: number;
  /** Redelivery delays after unacked deliveries, in nanoseconds; fewer entries than `max_deliver`. */
  backoff?: number[];
  /** Human-readable note naming the group and event type, for `nats consumer info`. */
  description?: string;
}

/** The parts of a `JetStreamManager` (`jetstreamManager(nc)`) the bus uses. */
export interface NatsJetStreamManagerLike {
  /** Stream administration. */
  streams: {
    /** Rejects with JetStream's "stream not found" when the stream is missing. */
    info(name: string): Promise<unknown>;
    /** Creates the stream (when `createStream` allows it). */
    add(config: NatsStreamConfigLike): Promise<unknown>;
    /** Reads one stored message (for dead-lettering an event that ran out of deliveries). */
    getMessage?(
      stream: string,
      query: { seq: number },
    ): Promise<{
      /** The subject the message was published on. */
      subject: string;
      /** The stored payload. */
      data: Uint8Array;
    } | null>;
  };
  /** Consumer administration. */
  consumers: {
    /** Creates a durable consumer; rejects when one with other settings exists. */
    add(stream: string, config: NatsConsumerConfigLike): Promise<unknown>;
    /** Brings an existing consumer to new ack wait, max deliver, backoff and description. */
    update(stream: string, durable: string, config: Partial<NatsConsumerConfigLike>): Promise<unknown>;
  };
}

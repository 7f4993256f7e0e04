/**
 * The slice of a Redis client this adapter uses, typed structurally so the library never imports
 * `ioredis`: the host builds the client (pooling, TLS, auth, Sentinel) and passes it in. An
 * ioredis 5 `Redis` instance fits as is; another client fits through a small wrapper.
 */

/**
 * A connection that may sit in a blocking `XREADGROUP`. The adapter owns these (it makes them
 * with {@link RedisClientLike.duplicate} or the host's factory) and disconnects them on close.
 */
export interface RedisBlockingClientLike {
  /** `XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS k... id...`: new (`>`) or own pending entries. */
  xreadgroup(
    groupToken: 'GROUP',
    group: string,
    consumer: string,
    countToken: 'COUNT',
    count: number,
    blockToken: 'BLOCK',
    blockMs: number,
    streamsToken: 'STREAMS',
    ...keysThenIds: string[]
  ): Promise<unknown>;
  /** Drops the connection at once; a pending blocking read rejects. */
  disconnect(): void;
  /** Only `error` is listened to, so a dropped socket never becomes an unhandled `error` event. */
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * The host's Redis client: every non-blocking command (publish, ack, claim, leases, idempotency)
 * goes through it. The adapter never quits or disconnects it.
 */
export interface RedisClientLike {
  /** `XADD`: publishes an event, or a dead-letter record, to a capped stream. */
  xadd(key: string, ...args: Array<string | number>): Promise<string | null>;
  /** `XACK`: removes handled or dead-lettered entries from the group's pending list. */
  xack(key: string, group: string, ...ids: string[]): Promise<number>;
  /** `XAUTOCLAIM`: takes over entries a dead or stuck member left pending past the idle time. */
  xautoclaim(key: string, group: string, consumer: string, minIdleMs: number, start: string, countToken: 'COUNT', count: number): Promise<unknown>;
  /** `XCLAIM`: re-takes an entry before its retry, so Redis counts the delivery. */
  xclaim(key: string, group: string, consumer: string, minIdleMs: number, ...idsThenOptions: string[]): Promise<unknown>;
  /** `XPENDING` (extended form): reads an entry's delivery count, i.e. its attempt number. */
  xpending(key: string, group: string, start: string, end: string, count: number): Promise<unknown>;
  /** `XGROUP CREATE ... MKSTREAM`: creates the consumer group (and stream) on first subscribe. */
  xgroup(subcommand: 'CREATE', key: string, group: string, id: string, mkstream: 'MKSTREAM'): Promise<unknown>;
  /** `XINFO CONSUMERS`: finds idle members with nothing pending, for cleanup. */
  xinfo(subcommand: 'CONSUMERS', key: string, group: string): Promise<unknown>;
  /** `EVAL`: the lease's and consumer cleanup's atomic check-and-act scripts. */
  eval(script: string, numKeys: number, ...keysThenArgs: Array<string | number>): Promise<unknown>;
  /** `SET key value PX ttl NX`: marks an event id handled without overwriting an existing mark. */
  set(key: string, value: string, pxToken: 'PX', ttlMs: number, nxToken: 'NX'): Promise<unknown>;
  /** `EXISTS`: asks the idempotency store whether an event id was handled. */
  exists(...keys: string[]): Promise<number>;
  /** A new connection with the same options; the adapter uses it for blocking reads. */
  duplicate(): RedisBlockingClientLike;
}

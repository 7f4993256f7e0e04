import { randomUUID } from 'node:crypto';
import { raceSignal, throwIfAborted } from '../core/abort.js';
import { IntegrationSyncError, summarizeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { closeChannel } from './close-channel.js';
import type { AmqpConfirmChannel, AmqpMessage, AmqpPublishOptions } from './types.js';

/** Header that ties a `mandatory` publish to the basic.return the broker may send before its ack. */
const PUBLISH_ID_HEADER = 'x-integration-sync-publish-id';

interface OpenChannel {
  channel: AmqpConfirmChannel;
  closed: boolean;
  /** Set while the channel's write buffer is full. */
  drain: Promise<void> | undefined;
  /** Publish ids the broker returned as unroutable. */
  returned: Set<string>;
  /** Called when the channel closes (releases drain waiters). */
  onClose: Set<() => void>;
}

/**
 * Publishes on one lazily opened confirm channel and resolves only once the broker confirms.
 * A channel the broker closes (a publish to a missing exchange, say) is replaced on the next
 * publish, so a channel error never spreads to the connection or to later publishes.
 */
export class ConfirmPublisher {
  private active: OpenChannel | undefined;
  private opening: Promise<OpenChannel> | undefined;
  private closed = false;

  constructor(
    /** Opens a confirm channel on the bus's current connection. */
    private readonly openChannel: () => Promise<AmqpConfirmChannel>,
    private readonly logger: Logger,
  ) {}

  /**
   * Publishes and waits for the broker's confirm. With `mandatory`, a message no queue takes is
   * a failure too. Rejects `ERR_PUBLISH_FAILED` (nack, return, closed channel) or the signal's reason.
   */
  async publish(exchange: string, routingKey: string, content: Buffer, options: AmqpPublishOptions, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const target = `${exchange || 'the default exchange'} (routing key ${routingKey})`;
    let open: OpenChannel;
    try {
      open = await this.channel();
    } catch (cause) {
      if (this.closed) throw new IntegrationSyncError('ERR_CLOSED', 'publish: the AMQP bus is closed; create a new bus');
      throw new IntegrationSyncError('ERR_PUBLISH_FAILED', `publish to ${target} failed: could not open a confirm channel (${summarizeError(cause).message}); check the connection`, { cause });
    }
    // Back-pressure: wait out a full write buffer instead of growing it without bound.
    while (open.drain && !open.closed) await raceSignal(open.drain, signal);
    throwIfAborted(signal);
    const publishId = options.mandatory ? randomUUID() : undefined;
    const props: AmqpPublishOptions = publishId ? { ...options, headers: { ...options.headers, [PUBLISH_ID_HEADER]: publishId } } : options;
    const confirmed = new Promise<void>((resolve, reject) => {
      const fail = (cause: unknown): void => {
        reject(new IntegrationSyncError('ERR_PUBLISH_FAILED', `publish to ${target} was not confirmed by RabbitMQ: ${summarizeError(cause).message}`, { cause }));
      };
      try {
        const writable = open.channel.publish(exchange, routingKey, content, props, (error) => {
          if (error) return fail(error);
          // The broker sends basic.return before the ack of the same message.
          if (publishId && open.returned.delete(publishId)) return fail(new Error('no queue is bound for this routing key'));
          resolve();
        });
        if (!writable && !open.drain) open.drain = waitForDrain(open);
      } catch (error) {
        // amqplib throws synchronously when the channel is already closed, or on a field it
        // cannot encode (a routing key over 255 bytes) with the channel still open: close it
        // then, or every such publish would leave a channel behind on the connection.
        this.retire(open);
        void closeChannel(open.channel);
        fail(error);
      }
    });
    await raceSignal(confirmed, signal);
  }

  /** Closes the channel. Publishes still waiting for a confirm fail with `ERR_PUBLISH_FAILED`. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.opening?.catch(() => {});
    const open = this.active;
    this.active = undefined;
    if (open && !open.closed) await closeChannel(open.channel);
  }

  private channel(): Promise<OpenChannel> {
    if (this.closed) return Promise.reject(new IntegrationSyncError('ERR_CLOSED', 'publish: the AMQP bus is closed'));
    if (this.active && !this.active.closed) return Promise.resolve(this.active);
    if (!this.opening) {
      this.opening = this.open().finally(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  private retire(open: OpenChannel): void {
    open.closed = true;
    if (this.active === open) this.active = undefined;
    for (const waiter of open.onClose) waiter();
    open.onClose.clear();
  }

  private async open(): Promise<OpenChannel> {
    const channel = await this.openChannel();
    const open: OpenChannel = { channel, closed: false, drain: undefined, returned: new Set(), onClose: new Set() };
    channel.on('error', (error: Error) => {
      this.logger.warn({ err: summarizeError(error) }, 'AMQP publish channel error; the next publish opens a new channel');
    });
    channel.on('return', (message: AmqpMessage) => {
      const id = message.properties.headers?.[PUBLISH_ID_HEADER];
      if (typeof id === 'string') open.returned.add(id);
    });
    channel.on('close', () => this.retire(open));
    if (this.closed) {
      await closeChannel(channel);
      throw new IntegrationSyncError('ERR_CLOSED', 'publish: the AMQP bus is closed');
    }
    this.active = open;
    return open;
  }
}

function waitForDrain(open: OpenChannel): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      open.channel.off('drain', done);
      open.onClose.delete(done);
      open.drain = undefined;
      resolve();
    };
    open.channel.on('drain', done);
    open.onClose.add(done);
  });
}


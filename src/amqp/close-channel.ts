import { settleWithin } from '../core/abort.js';
import type { AmqpChannel } from './types.js';

/** How long a channel or connection close, a consumer cancel or a pending connect may wait for the broker at close. */
export const CHANNEL_CLOSE_TIMEOUT_MS = 5000;

/** Closes a channel, swallowing "already closed", within {@link CHANNEL_CLOSE_TIMEOUT_MS}. */
export function closeChannel(channel: AmqpChannel): Promise<void> {
  let closing: Promise<unknown>;
  try {
    closing = channel.close();
  } catch (error) {
    closing = Promise.reject(error);
  }
  // On a socket that died without amqplib noticing the broker's reply never comes; real timers
  // (the system clock) on purpose, so a fake test clock cannot freeze close().
  return settleWithin([closing], CHANNEL_CLOSE_TIMEOUT_MS).then(() => undefined);
}

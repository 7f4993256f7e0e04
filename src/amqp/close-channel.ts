import type { AmqpChannel } from './types.js';

/** How long a channel close may wait for the broker's close-ok. */
export const CHANNEL_CLOSE_TIMEOUT_MS = 5000;

/**
 * Closes a channel, swallowing "already closed" and giving up after `timeoutMs`: on a socket
 * that died without amqplib noticing, close-ok never comes, and `close()` must not hang on it.
 * Real timers on purpose: this bounds I/O, and a fake test clock must not freeze it.
 */
export async function closeChannel(channel: AmqpChannel, timeoutMs = CHANNEL_CLOSE_TIMEOUT_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([channel.close().catch(() => {}), gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

import type { AmqpChannel } from './types.js';

/** How long a channel close or consumer cancel may wait for the broker's reply. */
export const CHANNEL_CLOSE_TIMEOUT_MS = 5000;

/**
 * Waits for `operation` (errors swallowed) at most `timeoutMs`: on a socket that died without
 * amqplib noticing, the broker's reply never comes, and `close()` must not hang on it.
 * Real timers on purpose: this bounds I/O, and a fake test clock must not freeze it.
 */
export async function settleWithin(operation: Promise<unknown>, timeoutMs = CHANNEL_CLOSE_TIMEOUT_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([operation.then(noop, noop), gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes a channel, swallowing "already closed", within {@link CHANNEL_CLOSE_TIMEOUT_MS}. */
export function closeChannel(channel: AmqpChannel): Promise<void> {
  let closing: Promise<unknown>;
  try {
    closing = channel.close();
  } catch (error) {
    closing = Promise.reject(error);
  }
  return settleWithin(closing);
}

function noop(): void {}

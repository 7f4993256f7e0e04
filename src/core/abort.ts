import type { Clock, TimerHandle } from './clock.js';
import { systemClock } from './clock.js';
import { IntegrationSyncError } from './errors.js';

/**
 * How long `close()`/`stop()` wait for in-flight work before aborting it, unless configured:
 * one value for every bus and service, so a host reasons about one shutdown budget.
 * @internal
 */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** Options of every long call: cancel it through `signal`. */
export interface SignalOptions {
  /** Aborts the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The reason of an aborted signal, as an Error (`ERR_ABORTED` when the reason is not one). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new IntegrationSyncError('ERR_ABORTED', 'The operation was aborted', { cause: reason });
}

/** Throws the signal's reason when it is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * Resolves after `ms`, or rejects with the signal's reason when it aborts first.
 * The abort listener is removed either way, so nothing is left behind.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Exponential backoff with full jitter: a random delay in `[0, min(maxMs, baseMs * 2^(attempt-1))]`.
 * `attempt` is 1-based (the delay before the second try uses attempt 1).
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.floor(random() * exp);
}

/**
 * Settles with `work`, or rejects with the signal's reason as soon as the signal aborts, for
 * work that does not take a signal itself (a client call, a host callback). The abort listener
 * is removed either way, and a `work` left behind by an abort has its rejection handled, so it
 * can never surface as an unhandled rejection.
 */
export function raceSignal<T>(work: T | Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  const promise = Promise.resolve(work);
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => {});
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Waits for every promise to settle, at most `timeoutMs` on `clock` (or until `signal` aborts).
 * Resolves true when it gave up waiting; never rejects, and clears its timer and abort listener
 * either way, so a `stop()` built on it leaves nothing behind.
 * @internal
 */
export async function settleWithin(
  promises: readonly Promise<unknown>[],
  timeoutMs: number,
  clock: Clock = systemClock,
  signal?: AbortSignal,
): Promise<boolean> {
  if (promises.length === 0) return false;
  let timer: TimerHandle | undefined;
  let onAbort: (() => void) | undefined;
  const settled = Promise.allSettled(promises).then(() => false);
  const expired = new Promise<boolean>((resolve) => {
    timer = clock.setTimeout(() => resolve(true), timeoutMs);
    if (signal) {
      onAbort = () => resolve(true);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([settled, expired]);
  } finally {
    clock.clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

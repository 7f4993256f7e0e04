import { IntegrationSyncError } from './errors.js';

/** Largest delay Node's timers accept (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Validates a millisecond option: a finite integer within `[min, max]`.
 * Throws `ERR_INVALID_OPTION` naming the option and the value's type, never the value of a secret.
 */
export function assertMs(name: string, value: unknown, min = 1, max = MAX_TIMER_MS): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value) || value < min || value > max) {
    const shown = typeof value === 'number' ? String(value) : typeof value;
    throw new IntegrationSyncError(
      'ERR_INVALID_OPTION',
      `${name} must be an integer number of milliseconds from ${min} to ${max}; got ${shown}`,
    );
  }
  return value;
}

/** Validates a positive integer count option (attempts, concurrency, sizes). */
export function assertPositiveInt(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    const shown = typeof value === 'number' ? String(value) : typeof value;
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be an integer from 1 to ${max}; got ${shown}`);
  }
  return value;
}

/** Validates a non-empty string option. */
export function assertNonEmptyString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be a non-empty string; got ${typeof value}`);
  }
  return value;
}

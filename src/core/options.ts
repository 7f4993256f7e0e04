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

/**
 * Validates an options bag: `undefined` gives `{}`, anything but a plain object (null, a string,
 * a function) throws `ERR_INVALID_OPTION` instead of a TypeError on the first property read.
 */
export function assertOptions<T extends object>(name: string, value: T | undefined): T {
  if (value === undefined) return {} as T;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name}: options must be an object; got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value;
}

/**
 * Validates an optional object option (`null` counts as not set) that must have the given methods (a clock, a lease, a
 * store, an audit sink...), so a wrong value fails at construction rather than at first use.
 */
export function assertOptionalMethods<T>(name: string, value: T | undefined, methods: readonly string[]): T | undefined {
  if (value === undefined || value === null) return undefined;
  const candidate = value as Record<string, unknown> | null;
  if (typeof candidate !== 'object' || candidate === null || methods.some((m) => typeof candidate[m] !== 'function')) {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be an object with ${methods.map((m) => `${m}()`).join(', ')}`);
  }
  return value;
}

/** Validates an optional function option. */
export function assertOptionalFunction<T>(name: string, value: T | undefined): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'function') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be a function; got ${typeof value}`);
  }
  return value;
}

/** Validates an optional boolean option. */
export function assertOptionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    throw new IntegrationSyncError('ERR_INVALID_OPTION', `${name} must be true or false; got ${typeof value}`);
  }
  return value;
}

/** Methods a {@link Clock} option must have. */
export const CLOCK_METHODS = ['now', 'setTimeout', 'clearTimeout'] as const;

/** Methods a `Lease` option must have. */
export const LEASE_METHODS = ['tryAcquire', 'renew', 'release'] as const;

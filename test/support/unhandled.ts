import { afterAll, beforeAll, expect } from 'vitest';

/**
 * Fails the file if anything it ran left an unhandled promise rejection: the library promises
 * none, whatever the input or fault. Call once at the top level of a test file.
 */
export function failOnUnhandledRejections(): void {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });
}

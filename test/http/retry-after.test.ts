import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHttpDate, parseRetryAfter } from '../../src/http/index.js';

// A fixed "now" stands in for the injected clock: the parser is pure.
const NOW = Date.UTC(2026, 11, 3, 18, 0, 0);

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('3', NOW)).toBe(3000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(' 120 ', NOW)).toBe(120_000);
  });

  it('treats an absurdly long number as a very long wait, not as a short one', () => {
    expect(parseRetryAfter('9'.repeat(400), NOW)).toBeGreaterThan(1e12);
  });

  it('returns undefined for missing and malformed values', () => {
    for (const bad of [null, undefined, '', '   ', '1.5', '-1', '+3', 'soon', '3s', '2026-12-03T18:00:10Z', '1e3']) {
      expect(parseRetryAfter(bad, NOW), String(bad)).toBeUndefined();
    }
  });

  it('measures an IMF-fixdate against the injected now', () => {
    expect(parseRetryAfter('Thu, 03 Dec 2026 18:00:10 GMT', NOW)).toBe(10_000);
    expect(parseRetryAfter('Thu, 03 Dec 2026 18:00:10 GMT', NOW + 4_000)).toBe(6_000);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Thu, 03 Dec 2026 17:59:00 GMT', NOW)).toBe(0);
  });

  it('accepts the obsolete RFC 850 and asctime forms', () => {
    const expected = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(expected);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(expected);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW)).toBe(expected);
  });

  it('places an RFC 850 two-digit year no more than 50 years ahead', () => {
    expect(new Date(parseHttpDate('Monday, 01-Jan-30 00:00:00 GMT', NOW) ?? 0).getUTCFullYear()).toBe(2030);
    expect(new Date(parseHttpDate('Friday, 01-Jan-99 00:00:00 GMT', NOW) ?? 0).getUTCFullYear()).toBe(1999);
  });

  it('rejects impossible dates instead of rolling them over', () => {
    expect(parseHttpDate('Tue, 31 Feb 2026 00:00:00 GMT', NOW)).toBeUndefined();
    expect(parseHttpDate('Thu, 03 Dec 2026 25:00:00 GMT', NOW)).toBeUndefined();
    expect(parseHttpDate('Thu, 03 Foo 2026 10:00:00 GMT', NOW)).toBeUndefined();
    expect(parseHttpDate('Thu, 03 Dec 2026 10:00:00 PST', NOW)).toBeUndefined();
  });

  it('round-trips any whole-second date written by Date#toUTCString', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799 }), fc.integer({ min: 0, max: 253_402_300_799_999 }), (sec, now) => {
        const at = sec * 1000;
        expect(parseRetryAfter(new Date(at).toUTCString(), now)).toBe(Math.max(0, at - now));
      }),
    );
  });

  it('reads any non-negative integer of seconds', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000_000 }), (n) => {
        expect(parseRetryAfter(String(n), NOW)).toBe(n * 1000);
      }),
    );
  });
});

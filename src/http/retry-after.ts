/**
 * Retry-After parsing (RFC 9110 section 10.2.3): either delta-seconds or an HTTP-date.
 * Pure functions: the current time is passed in, so tests run on a fake clock.
 */

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

// `Date.parse` is too lenient to trust with a header ("1.5" parses as a date in V8), so only the
// three forms RFC 9110 section 5.6.7 names are accepted, matched exactly.
const IMF_FIXDATE = /^(?:mon|tue|wed|thu|fri|sat|sun), (\d{1,2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const RFC_850 = /^(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday), (\d{1,2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const ASCTIME = /^(?:mon|tue|wed|thu|fri|sat|sun) ([a-z]{3}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

/**
 * Parses an HTTP-date (IMF-fixdate, the obsolete RFC 850 form or asctime) into milliseconds since
 * the epoch, or `undefined` when the text is not one of them or names an impossible date.
 *
 * @param nowMs - the current time, only used to place an RFC 850 two-digit year in its century.
 * @example
 * parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'); // 784111777000
 */
export function parseHttpDate(value: string, nowMs: number): number | undefined {
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m) return toEpoch(m[3], m[2], m[1], m[4], m[5], m[6]);
  m = RFC_850.exec(text);
  if (m) {
    // RFC 9110: a two-digit year more than 50 years in the future means the past century.
    const currentYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(currentYear / 100) * 100 + Number(m[3]);
    if (year > currentYear + 50) year -= 100;
    return toEpoch(String(year), m[2], m[1], m[4], m[5], m[6]);
  }
  m = ASCTIME.exec(text);
  if (m) return toEpoch(m[6], m[1], m[2], m[3], m[4], m[5]);
  return undefined;
}

function toEpoch(
  year: string | undefined,
  month: string | undefined,
  day: string | undefined,
  hour: string | undefined,
  minute: string | undefined,
  second: string | undefined,
): number | undefined {
  const mon = MONTHS[(month ?? '').toLowerCase()];
  const y = Number(year);
  const d = Number(day);
  const h = Number(hour);
  const mi = Number(minute);
  const s = Number(second);
  if (mon === undefined || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  // 60 is a leap second: Date.UTC rolls it into the next minute, which is close enough to wait on.
  const ms = Date.UTC(y, mon, d, h, mi, s);
  // Reject 31 Feb and friends instead of letting Date.UTC roll them into the next month.
  if (new Date(ms).getUTCDate() !== d && s !== 60) return undefined;
  return ms;
}

/**
 * How long a `Retry-After` header asks the client to wait, in milliseconds: delta-seconds
 * (`"120"`) or an HTTP-date measured against `nowMs`. A date in the past gives 0. Returns
 * `undefined` for a missing, empty or malformed value (including fractions and negatives), so the
 * caller falls back to its own backoff.
 *
 * @param value - the raw header value, if any.
 * @param nowMs - the current time in milliseconds since the epoch (from the injected clock).
 * @example
 * parseRetryAfter('3', clock.now()); // 3000
 * parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', clock.now()); // ms until then, or 0
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) {
    // Very long digit strings become Infinity or lose precision; either way they are "too long".
    const seconds = Number(text);
    return Number.isFinite(seconds) ? seconds * 1000 : Number.MAX_SAFE_INTEGER;
  }
  const at = parseHttpDate(text, nowMs);
  if (at === undefined) return undefined;
  return Math.max(0, at - nowMs);
}

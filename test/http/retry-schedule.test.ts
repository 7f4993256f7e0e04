import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/index.js';
import { createFetchHttpClient, type FetchFunction } from '../../src/http/index.js';

// Pure logic: which delays the client asks its clock for. A recording clock fires every timer on
// the next macrotask, and fetch is a stub, so nothing here crosses a process boundary.
function recordingClock(now: number): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => now,
    setTimeout(fn, ms) {
      delays.push(ms);
      return setImmediate(fn);
    },
    clearTimeout(handle) {
      clearImmediate(handle as NodeJS.Immediate);
    },
  };
}

function stubFetch(responses: Array<() => Response>): FetchFunction & { calls: number } {
  const f = (async () => {
    const next = responses[Math.min(f.calls, responses.length - 1)];
    f.calls++;
    return (next as () => Response)();
  }) as unknown as FetchFunction & { calls: number };
  f.calls = 0;
  return f;
}

const TIMEOUT = 999_999;

describe('retry schedule', () => {
  it('backs off exponentially with full jitter, capped at retryMaxMs', async () => {
    const clock = recordingClock(0);
    const fetch = stubFetch([() => new Response('', { status: 500 })]);
    const http = createFetchHttpClient({
      fetch,
      clock,
      random: () => 0.5,
      retries: 4,
      retryBaseMs: 100,
      retryMaxMs: 300,
      timeoutMs: TIMEOUT,
    });
    const res = await http.request({ url: 'http://example.test/x' });
    expect(res).toMatchObject({ status: 500, attempts: 5 });
    expect(clock.delays.filter((d) => d !== TIMEOUT)).toEqual([50, 100, 150, 150]);
    expect(fetch.calls).toBe(5);
  });

  it('sleeps exactly the Retry-After asked for, measuring dates on the injected clock', async () => {
    const now = Date.UTC(2026, 11, 3, 12, 0, 0);
    const clock = recordingClock(now);
    const fetch = stubFetch([
      () => new Response('', { status: 429, headers: { 'retry-after': '7' } }),
      () => new Response('', { status: 503, headers: { 'retry-after': new Date(now + 12_000).toUTCString() } }),
      () => new Response('', { status: 429, headers: { 'retry-after': 'garbage' } }),
      () => new Response('done'),
    ]);
    const http = createFetchHttpClient({ fetch, clock, random: () => 0, retries: 3, timeoutMs: TIMEOUT });
    const res = await http.request({ url: 'http://example.test/x' });
    expect(res).toMatchObject({ status: 200, text: 'done', attempts: 4 });
    // Malformed Retry-After falls back to the jittered backoff (0 with random() = 0).
    expect(clock.delays.filter((d) => d !== TIMEOUT)).toEqual([7_000, 12_000, 0]);
  });

  it('ignores Retry-After on other statuses and honours it up to the cap inclusive', async () => {
    const clock = recordingClock(0);
    const fetch = stubFetch([
      () => new Response('', { status: 500, headers: { 'retry-after': '9' } }),
      () => new Response('', { status: 429, headers: { 'retry-after': '2' } }),
      () => new Response('', { status: 429, headers: { 'retry-after': '3' } }),
    ]);
    const http = createFetchHttpClient({ fetch, clock, random: () => 0, retries: 5, maxRetryAfterMs: 2_000, timeoutMs: TIMEOUT });
    const res = await http.request({ url: 'http://example.test/x' });
    expect(res).toMatchObject({ status: 429, attempts: 3 });
    expect(clock.delays.filter((d) => d !== TIMEOUT)).toEqual([0, 2_000]);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrationSyncError } from '../../src/core/errors.js';
import { attemptsOf, classifyRefreshError, classifyRefreshResponse, parseExpiresAt } from '../../src/tokens/classify.js';

const res = (status: number, body: unknown) => ({ status, text: typeof body === 'string' ? body : JSON.stringify(body) });

describe('parseExpiresAt', () => {
  it.each([
    ['ISO Z', '2026-12-03T19:00:00Z', '2026-12-03T19:00:00.000Z'],
    ['ISO offset', '2026-12-03T20:00:00+01:00', '2026-12-03T19:00:00.000Z'],
    ['epoch seconds', 1_796_324_400, '2026-12-03T19:00:00.000Z'],
    ['epoch ms', 1_796_324_400_000, '2026-12-03T19:00:00.000Z'],
    ['seconds as string', '1796324400', '2026-12-03T19:00:00.000Z'],
    ['ms as string', ' 1796324400000 ', '2026-12-03T19:00:00.000Z'],
    ['fractional seconds', 1_796_324_400.5, '2026-12-03T19:00:00.500Z'],
  ])('reads %s', (_name, input, expected) => {
    expect(parseExpiresAt(input)).toBe(expected);
  });

  it.each([
    ['garbage', 'next tuesday'],
    ['local time without offset', '2026-12-03T19:00:00'],
    ['impossible date', '2026-02-31T10:00:00Z'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['zero', 0],
    ['negative', -5],
    ['beyond Date range', 9e15],
    ['huge digit string', '99999999999999999999'],
    ['object', { at: 1 }],
    ['null', null],
    ['boolean', true],
    ['empty', ''],
    ['hex', '0x10'],
  ])('ignores %s', (_name, input) => {
    expect(parseExpiresAt(input)).toBeUndefined();
  });

  it('never yields an invalid date for any input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.double(), fc.integer(), fc.anything()), (value) => {
        const out = parseExpiresAt(value);
        if (out !== undefined) expect(Number.isNaN(Date.parse(out))).toBe(false);
      }),
    );
  });
});

describe('classifyRefreshResponse', () => {
  it.each([
    ['200 with expiresAt', res(200, { success: true, expiresAt: '2026-12-03T19:00:00Z' }), { ok: true, expiresAt: '2026-12-03T19:00:00.000Z' }],
    ['204 empty', res(204, ''), { ok: true }],
    ['200 non-JSON', res(200, '<html>done</html>'), { ok: true }],
    ['200 garbage expiresAt', res(200, { expiresAt: 'soon' }), { ok: true }],
    ['200 JSON array', res(200, [1, 2]), { ok: true }],
    ['200 success:false', res(200, { success: false, error: 'temporarily_unavailable' }), { ok: false, error: 'temporarily_unavailable', retryable: true, status: 200 }],
    ['200 success:false no error', res(200, { success: false }), { ok: false, error: 'refresh_failed', retryable: false, status: 200 }],
    ['200 success:false retryable', res(200, { success: false, error: 'provider_down', retryable: true }), { ok: false, error: 'provider_down', retryable: true, status: 200 }],
    ['200 invalid_grant cannot be made retryable', res(200, { success: false, error: 'invalid_grant', retryable: true }), { ok: false, error: 'invalid_grant', retryable: false, status: 200 }],
    ['200 RFC error body', res(200, { error: 'invalid_grant', error_description: 'x' }), { ok: false, error: 'invalid_grant', retryable: false, status: 200 }],
    ['200 ok:false (Slack style)', res(200, { ok: false, error: 'token_revoked' }), { ok: false, error: 'token_revoked', retryable: false, status: 200 }],
    ['200 error object with code', res(200, { success: false, error: { code: 'invalid_client', message: 'x' } }), { ok: false, error: 'invalid_client', retryable: false, status: 200 }],
    ['400 invalid_grant', res(400, { error: 'invalid_grant', error_description: 'revoked' }), { ok: false, error: 'invalid_grant', retryable: false, status: 400 }],
    ['401 invalid_client', res(401, { error: 'invalid_client' }), { ok: false, error: 'invalid_client', retryable: false, status: 401 }],
    ['400 unauthorized_client', res(400, { error: 'unauthorized_client' }), { ok: false, error: 'unauthorized_client', retryable: false, status: 400 }],
    ['403 no body', res(403, ''), { ok: false, error: 'http_403', retryable: false, status: 403 }],
    ['404 html', res(404, '<h1>nope</h1>'), { ok: false, error: 'http_404', retryable: false, status: 404 }],
    ['400 free-text error', res(400, { error: 'The Token abc.DEF is bad' }), { ok: false, error: 'http_400', retryable: false, status: 400 }],
    ['429', res(429, { error: 'slow down please' }), { ok: false, error: 'rate_limited', retryable: true, status: 429 }],
    ['408', res(408, ''), { ok: false, error: 'timeout', retryable: true, status: 408 }],
    ['500', res(500, 'oops'), { ok: false, error: 'http_500', retryable: true, status: 500 }],
    ['503 temporarily_unavailable', res(503, { error: 'temporarily_unavailable' }), { ok: false, error: 'temporarily_unavailable', retryable: true, status: 503 }],
    ['502 proxying invalid_grant', res(502, { error: 'invalid_grant' }), { ok: false, error: 'invalid_grant', retryable: false, status: 502 }],
  ])('%s', (_name, response, expected) => {
    expect(classifyRefreshResponse(response)).toEqual(expected);
  });

  it('never throws and only ever returns short snake_case codes, whatever the body', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ success: false, error: v }))), (status, text) => {
        const result = classifyRefreshResponse({ status, text });
        if (!result.ok) expect(result.error).toMatch(/^[a-z0-9_]{1,40}$/);
        else if (result.expiresAt !== undefined) expect(Number.isNaN(Date.parse(result.expiresAt))).toBe(false);
      }),
    );
  });
});

describe('classifyRefreshError', () => {
  it('classifies HttpClient errors', () => {
    expect(classifyRefreshError(new IntegrationSyncError('ERR_HTTP_TIMEOUT', 't', { details: { attempts: 3 } }))).toEqual({ error: 'timeout', retryable: true });
    expect(classifyRefreshError(new IntegrationSyncError('ERR_HTTP_NETWORK', 'n'))).toEqual({ error: 'network', retryable: true });
    expect(classifyRefreshError(new IntegrationSyncError('ERR_HTTP_NETWORK', 'n', { details: { reason: 'response_too_large' } }))).toEqual({
      error: 'response_too_large',
      retryable: false,
    });
  });

  it('classifies errors of other clients by name and code', () => {
    expect(classifyRefreshError(Object.assign(new Error('x'), { name: 'TimeoutError' }))).toEqual({ error: 'timeout', retryable: true });
    expect(classifyRefreshError(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }))).toEqual({ error: 'network', retryable: true });
    expect(classifyRefreshError('weird')).toEqual({ error: 'request_failed', retryable: true });
  });

  it('reads attempts from error details', () => {
    expect(attemptsOf(new IntegrationSyncError('ERR_HTTP_TIMEOUT', 't', { details: { attempts: 3 } }))).toBe(3);
    expect(attemptsOf(new Error('x'))).toBe(1);
  });
});

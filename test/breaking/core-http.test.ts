import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

interface Seen {
  url: string | undefined;
  headers: http.IncomingHttpHeaders;
}
const elsewhere: Seen[] = [];
let main: http.Server;
let other: http.Server;
let base = '';
let otherOrigin = '';
const BOMB = zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024));

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  other = http.createServer((req, res) => {
    elsewhere.push({ url: req.url, headers: req.headers });
    res.end('{"expiresAt":1}');
  });
  const otherBase = await listen(other);
  // Another origin: same port, different host name.
  otherOrigin = otherBase.replace('127.0.0.1', 'localhost');
  main = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0] ?? '';
    if (url.startsWith('/redirect/')) {
      res.writeHead(Number(url.split('/')[2]), { location: `${otherOrigin}/landed${url}` });
      res.end();
    } else if (url === '/bomb') {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(BOMB);
    } else if (url === '/short-body') {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('only this');
      setTimeout(() => res.destroy(), 20);
    } else if (url === '/slowloris') {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(timer));
    } else if (url === '/retry-after') {
      res.writeHead(429, { 'retry-after': String(req.headers['x-retry-after']) });
      res.end('slow down');
    } else if (url === '/hang') {
      // Headers never come.
    } else if (url === '/busy') {
      res.writeHead(503, { 'retry-after': '2' });
      res.end();
    } else if (url === '/no-content') {
      res.writeHead(Number(req.headers['x-status']));
      res.end();
    } else {
      res.end('ok');
    }
  });
  base = await listen(main);
});

afterAll(async () => {
  main.closeAllConnections();
  other.closeAllConnections();
  await Promise.all([new Promise((r) => main.close(r)), new Promise((r) => other.close(r))]);
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

const client = createFetchHttpClient({
  headers: { authorization: 'Bearer CANARY_AUTH', 'x-api-key': 'CANARY_KEY' },
  timeoutMs: 1000,
  retries: 1,
  retryBaseMs: 1,
  retryMaxMs: 2,
});

describe('createFetchHttpClient against hostile servers', () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`never sends service credentials to another origin on a ${status} redirect`, async () => {
      const response = await client.request({ method: 'POST', url: `${base}/redirect/${status}`, body: { a: 1 } });
      const leaked = elsewhere.filter((s) => JSON.stringify(s.headers).includes('CANARY'));
      expect(leaked).toEqual([]);
      expect(response.status).toBe(status);
    });
  }

  it('caps a gzip bomb at maxResponseBytes (decoded size) and does not retry it', async () => {
    const error = await client.request({ url: `${base}/bomb` }).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_HTTP_NETWORK')).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ reason: 'response_too_large', attempts: 1 });
  });

  it('treats a body shorter than its content-length as a network failure', async () => {
    const error = await client.request({ url: `${base}/short-body` }).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_HTTP_NETWORK')).toBe(true);
  });

  it('times out a slowloris body (the timeout covers the body)', async () => {
    const error = await client.request({ url: `${base}/slowloris`, timeoutMs: 300, retries: 0 }).catch((e: unknown) => e);
    expect(isIntegrationSyncError(error, 'ERR_HTTP_TIMEOUT')).toBe(true);
  });

  it('rejects with the caller reason when aborted mid-body', async () => {
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    setTimeout(() => controller.abort(reason), 100);
    await expect(client.request({ url: `${base}/slowloris`, signal: controller.signal })).rejects.toBe(reason);
  });

  for (const value of ['-1', '1e3', 'soon', '0x10', '1.5', 'Thu, 31 Feb 2026 00:00:00 GMT', '99999999999999999999999']) {
    it(`survives Retry-After ${JSON.stringify(value)} and returns the final 429`, async () => {
      const response = await client.request({ url: `${base}/retry-after`, headers: { 'x-retry-after': value } });
      expect(response.status).toBe(429);
      expect(response.attempts).toBeGreaterThanOrEqual(1);
    });
  }

  for (const status of [204, 304]) {
    it(`returns ${status} with an empty text`, async () => {
      const response = await client.request({ url: `${base}/no-content`, headers: { 'x-status': String(status) } });
      expect(response).toMatchObject({ status, text: '' });
    });
  }

  describe('abort in every phase', () => {
    it('an already aborted signal rejects with its reason and sends nothing', async () => {
      let calls = 0;
      const counting = createFetchHttpClient({ fetch: async () => ((calls += 1), new Response('x')) });
      const reason = new Error('before');
      await expect(counting.request({ url: `${base}/x`, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(calls).toBe(0);
    });

    it('while waiting for headers', async () => {
      const reason = new Error('headers');
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 50);
      await expect(client.request({ url: `${base}/hang`, signal: controller.signal })).rejects.toBe(reason);
    });

    it('during a Retry-After sleep', async () => {
      const reason = new Error('sleep');
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 100);
      const started = Date.now();
      await expect(client.request({ url: `${base}/busy`, signal: controller.signal })).rejects.toBe(reason);
      expect(Date.now() - started).toBeLessThan(1900);
    });

    it('with a non-Error reason: rejects with ERR_ABORTED', async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort('just a string'), 30);
      await expect(client.request({ url: `${base}/hang`, signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    });
  });

  describe('errors never carry credentials, query strings or bodies', () => {
    const CANARY = 'CANARYhttp0123456789abcdef';
    function flatten(error: unknown): string {
      const parts: unknown[] = [];
      let current: unknown = error;
      for (let i = 0; i < 10 && current !== undefined && current !== null; i += 1) {
        const e = current as { name?: unknown; message?: unknown; details?: unknown; stack?: unknown; cause?: unknown };
        parts.push({ name: e.name, message: e.message, details: e.details, stack: e.stack });
        current = e.cause;
      }
      return JSON.stringify(parts);
    }
    const secretClient = createFetchHttpClient({ headers: { authorization: `Bearer ${CANARY}` }, retries: 1, retryBaseMs: 1, retryMaxMs: 1, timeoutMs: 200 });

    it('network error (refused), timeout, oversized body and a bad URL', async () => {
      const refused = await secretClient.request({ method: 'POST', url: `http://127.0.0.1:1/x?token=${CANARY}`, body: { secret: CANARY } }).catch((e: unknown) => e);
      const timeout = await secretClient.request({ url: `${base}/hang?token=${CANARY}` }).catch((e: unknown) => e);
      const big = await createFetchHttpClient({ maxResponseBytes: 10, headers: { 'x-api-key': CANARY } }).request({ url: `${base}/bomb?key=${CANARY}` }).catch((e: unknown) => e);
      const badUrl = await secretClient.request({ url: `not a url ${CANARY}` }).catch((e: unknown) => e);
      const badHeader = await secretClient.request({ url: `${base}/x`, headers: { authorization: `Bearer ${CANARY}\r\nx: y` } }).catch((e: unknown) => e);
      for (const error of [refused, timeout, big, badUrl, badHeader]) {
        expect(isIntegrationSyncError(error)).toBe(true);
        expect(flatten(error)).not.toContain(CANARY);
      }
    });
  });

  describe('a custom fetch that ignores its signal', () => {
    it('still times out each attempt', async () => {
      let calls = 0;
      const stuck = createFetchHttpClient({ timeoutMs: 100, retries: 1, retryBaseMs: 1, retryMaxMs: 1, fetch: () => ((calls += 1), new Promise<Response>(() => {})) });
      const error = await stuck.request({ url: `${base}/x` }).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_HTTP_TIMEOUT')).toBe(true);
      expect(calls).toBe(2);
    });

    it('still times out a body stream that never ends', async () => {
      const endless = new ReadableStream<Uint8Array>({ pull: () => new Promise<void>(() => {}) });
      const stuck = createFetchHttpClient({ timeoutMs: 100, retries: 0, fetch: async () => new Response(endless, { status: 200 }) });
      const error = await stuck.request({ url: `${base}/x` }).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_HTTP_TIMEOUT')).toBe(true);
    });

    it('still rejects with the caller reason on abort', async () => {
      const stuck = createFetchHttpClient({ timeoutMs: 5000, fetch: () => new Promise<Response>(() => {}) });
      const reason = new Error('caller');
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 30);
      await expect(stuck.request({ url: `${base}/x`, signal: controller.signal })).rejects.toBe(reason);
    });
  });
});

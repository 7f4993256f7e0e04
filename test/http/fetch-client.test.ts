import { afterEach, describe, expect, it } from 'vitest';
import { isIntegrationSyncError } from '../../src/core/index.js';
import type { FetchHttpClientOptions } from '../../src/http/index.js';
import { createFetchHttpClient } from '../../src/http/index.js';
import { refusedPort, startServer, type TestServer, waitFor } from './server.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const server = await startServer(handler);
  servers.push(server);
  return server;
}

/** Fast backoff so the tests do not wait on the defaults. */
function client(options: FetchHttpClientOptions = {}) {
  return createFetchHttpClient({ retryBaseMs: 10, retryMaxMs: 50, ...options });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('createFetchHttpClient against a real HTTP server', () => {
  it('resolves a 200 with status, lower-case headers, text and attempts, through the injected fetch', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'X-Custom': 'Yes', 'Content-Type': 'text/plain' });
      res.end('hello');
    });
    let fetchCalls = 0;
    const http = client({
      fetch: (input, init) => {
        fetchCalls++;
        return fetch(input, init);
      },
    });
    const res = await http.request({ url: `${server.base}/ok?x=1` });
    expect(res).toMatchObject({ status: 200, text: 'hello', attempts: 1 });
    expect(res.headers['x-custom']).toBe('Yes');
    expect(res.headers['content-type']).toBe('text/plain');
    expect(server.hits).toHaveLength(1);
    expect(server.hits[0]?.url).toBe('/ok?x=1');
    expect(fetchCalls).toBe(1);
  });

  it('sends objects as JSON, strings as is, default headers overridable per request', async () => {
    const server = await serve((_req, res) => res.end('{}'));
    const http = client({ headers: { Authorization: 'Bearer service', 'X-Tenant': 'default' } });
    await http.request({ method: 'POST', url: `${server.base}/json`, body: { a: 1 }, headers: { 'x-tenant': 't1' } });
    await http.request({ method: 'PUT', url: `${server.base}/text`, body: 'raw=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const [json, text] = server.hits;
    expect(json?.method).toBe('POST');
    expect(JSON.parse(json?.body ?? '')).toEqual({ a: 1 });
    expect(json?.headers['content-type']).toBe('application/json');
    expect(json?.headers.authorization).toBe('Bearer service');
    expect(json?.headers['x-tenant']).toBe('t1');
    expect(text?.body).toBe('raw=1');
    expect(text?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('retries a 500 and resolves with the 200 that follows', async () => {
    const server = await serve((_req, res, _hit, i) => {
      res.statusCode = i === 0 ? 500 : 200;
      res.end(i === 0 ? 'boom' : 'fine');
    });
    const res = await client().request({ method: 'POST', url: `${server.base}/r`, body: {} });
    expect(res).toMatchObject({ status: 200, text: 'fine', attempts: 2 });
    expect(server.hits).toHaveLength(2);
  });

  it('retries 408 and 503, and returns the last 5xx once retries are spent', async () => {
    const flaky = await serve((_req, res, _hit, i) => {
      res.statusCode = [408, 503, 200][i] ?? 500;
      res.end();
    });
    expect(await client().request({ url: `${flaky.base}/a` })).toMatchObject({ status: 200, attempts: 3 });

    const down = await serve((_req, res) => {
      res.statusCode = 502;
      res.end('bad gateway');
    });
    const res = await client({ retries: 3 }).request({ url: `${down.base}/b` });
    expect(res).toMatchObject({ status: 502, text: 'bad gateway', attempts: 4 });
    expect(down.hits).toHaveLength(4);
  });

  it.each([400, 401, 404, 409, 422])('does not retry a %i', async (status) => {
    const server = await serve((_req, res) => {
      res.statusCode = status;
      res.end('no');
    });
    const res = await client().request({ method: 'POST', url: `${server.base}/x`, body: {} });
    expect(res).toMatchObject({ status, attempts: 1, text: 'no' });
    expect(server.hits).toHaveLength(1);
  });

  it('does not retry when the method is not in retryMethods or the request says retries: 0', async () => {
    const server = await serve((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const http = client({ retryMethods: ['GET'] });
    expect(await http.request({ method: 'POST', url: `${server.base}/p`, body: {} })).toMatchObject({ status: 500, attempts: 1 });
    expect(await http.request({ url: `${server.base}/g`, retries: 0 })).toMatchObject({ status: 500, attempts: 1 });
    expect(await http.request({ url: `${server.base}/g` })).toMatchObject({ status: 500, attempts: 3 });
    expect(server.hits).toHaveLength(5);
  });

  it('waits out Retry-After: 1 on a 429', async () => {
    const server = await serve((_req, res, _hit, i) => {
      if (i === 0) {
        res.writeHead(429, { 'Retry-After': '1' });
        res.end();
      } else res.end('ok');
    });
    const res = await client().request({ url: `${server.base}/limited` });
    expect(res).toMatchObject({ status: 200, attempts: 2 });
    const [first, second] = server.hits;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(900);
  });

  it('waits until a Retry-After HTTP date on a 503', async () => {
    const server = await serve((_req, res, _hit, i) => {
      if (i === 0) {
        // Whole seconds: at least 1 s ahead once truncated.
        res.writeHead(503, { 'Retry-After': new Date(Date.now() + 2000).toUTCString() });
        res.end();
      } else res.end('ok');
    });
    const res = await client().request({ url: `${server.base}/maint` });
    expect(res).toMatchObject({ status: 200, attempts: 2 });
    const [first, second] = server.hits;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(800);
  });

  it('returns a 429 at once when Retry-After is above maxRetryAfterMs', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(429, { 'Retry-After': '120' });
      res.end('slow down');
    });
    const started = Date.now();
    const res = await client().request({ url: `${server.base}/capped` });
    expect(res).toMatchObject({ status: 429, attempts: 1, text: 'slow down' });
    expect(res.headers['retry-after']).toBe('120');
    expect(server.hits).toHaveLength(1);
    // 120 s were asked for; anything near that means it slept.
    expect(Date.now() - started).toBeLessThan(20_000);

    const small = await client({ maxRetryAfterMs: 500 }).request({ url: `${server.base}/capped` });
    expect(small).toMatchObject({ status: 429, attempts: 1 });
  });

  it('rejects with ERR_HTTP_TIMEOUT after every attempt timed out, without the query string', async () => {
    const server = await serve(() => {
      // Never answers.
    });
    const error = await rejection(client({ timeoutMs: 150 }).request({ url: `${server.base}/hang?token=abc` }));
    expect(isIntegrationSyncError(error, 'ERR_HTTP_TIMEOUT')).toBe(true);
    const details = (error as { details: Record<string, unknown> }).details;
    expect(details).toMatchObject({ attempts: 3, method: 'GET', url: `127.0.0.1:${server.port}/hang` });
    expect(server.hits).toHaveLength(3);
  });

  it('times out a body that stalls after the headers', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('partial');
    });
    const error = await rejection(client({ timeoutMs: 200, retries: 1 }).request({ url: `${server.base}/stall` }));
    expect(isIntegrationSyncError(error, 'ERR_HTTP_TIMEOUT')).toBe(true);
    expect(server.hits).toHaveLength(2);
  });

  it('rejects with ERR_HTTP_NETWORK and ECONNREFUSED on a closed port', async () => {
    const port = await refusedPort();
    const error = await rejection(client().request({ url: `http://127.0.0.1:${port}/x?secret=1` }));
    expect(isIntegrationSyncError(error, 'ERR_HTTP_NETWORK')).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({
      attempts: 3,
      cause: 'ECONNREFUSED',
      url: `127.0.0.1:${port}/x`,
    });
    expect((error as Error).message).toContain('ECONNREFUSED');
  });

  it('retries a body cut short by the server and then fails with ERR_HTTP_NETWORK', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('only ten b', () => res.destroy());
    });
    const error = await rejection(client().request({ url: `${server.base}/cut` }));
    expect(isIntegrationSyncError(error, 'ERR_HTTP_NETWORK')).toBe(true);
    expect(server.hits).toHaveLength(3);
  });

  it('aborts during a backoff sleep at once with the reason and sends nothing more', async () => {
    const server = await serve((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    // random() = 1 makes the first backoff the full 20 s.
    const http = createFetchHttpClient({ retryBaseMs: 20_000, retryMaxMs: 20_000, random: () => 0.999 });
    const pending = rejection(http.request({ url: `${server.base}/busy`, signal: controller.signal }));
    await waitFor(() => server.hits.length === 1);
    const abortedAt = Date.now();
    controller.abort(reason);
    expect(await pending).toBe(reason);
    expect(Date.now() - abortedAt).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(server.hits).toHaveLength(1);
  });

  it('aborts an in-flight request with the reason and never retries it', async () => {
    const server = await serve(() => {});
    const controller = new AbortController();
    const pending = rejection(client({ timeoutMs: 20_000 }).request({ url: `${server.base}/slow`, signal: controller.signal }));
    await waitFor(() => server.hits.length === 1);
    controller.abort(new Error('shutdown'));
    expect(((await pending) as Error).message).toBe('shutdown');
    await new Promise((r) => setTimeout(r, 200));
    expect(server.hits).toHaveLength(1);
  });

  it('rejects an already aborted signal without a request', async () => {
    const server = await serve((_req, res) => res.end());
    const error = await rejection(client().request({ url: server.base, signal: AbortSignal.abort() }));
    expect((error as Error).name).toBe('AbortError');
    expect(server.hits).toHaveLength(0);
  });

  it('cancels the body of a retried response so the connection is freed', async () => {
    let firstClosed = false;
    const server = await serve((_req, res, _hit, i) => {
      if (i > 0) return void res.end('ok');
      res.writeHead(503);
      res.on('close', () => {
        firstClosed = true;
      });
      // An endless body: the client must not wait for it or keep reading it.
      const pump = (): void => {
        while (!res.destroyed && res.write(Buffer.alloc(16_384, 120)));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const res = await client().request({ url: `${server.base}/stream` });
    expect(res).toMatchObject({ status: 200, attempts: 2 });
    await waitFor(() => firstClosed);
  });

  it('refuses a body over maxResponseBytes, announced or streamed, without retrying', async () => {
    let streamClosed = false;
    const server = await serve((req, res) => {
      if (req.url === '/announced') {
        res.writeHead(200, { 'Content-Length': String(2 * 1024 * 1024) });
        res.end(Buffer.alloc(2 * 1024 * 1024, 97));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.on('close', () => {
        streamClosed = true;
      });
      const pump = (): void => {
        while (!res.destroyed && res.write(Buffer.alloc(16_384, 98)));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const http = client({ maxResponseBytes: 64 * 1024 });
    for (const path of ['/announced', '/endless']) {
      const error = await rejection(http.request({ url: `${server.base}${path}` }));
      expect(isIntegrationSyncError(error, 'ERR_HTTP_NETWORK')).toBe(true);
      expect((error as { details: Record<string, unknown> }).details).toMatchObject({
        reason: 'response_too_large',
        status: 200,
        attempts: 1,
      });
      expect((error as Error).message).toContain('maxResponseBytes');
    }
    expect(server.hits).toHaveLength(2);
    await waitFor(() => streamClosed);
  });

  it('decodes a body of invalid UTF-8 without throwing', async () => {
    const server = await serve((_req, res) => res.end(Buffer.from([0x7b, 0xff, 0xfe, 0xc3, 0x28, 0x7d])));
    const res = await client().request({ url: server.base });
    expect(res.status).toBe(200);
    expect(res.text).toContain('\uFFFD');
    expect(res.text.startsWith('{')).toBe(true);
  });

  it('logs each attempt with method, host, path, status and attempt', async () => {
    const server = await serve((_req, res, _hit, i) => {
      res.statusCode = i === 0 ? 500 : 204;
      res.end();
    });
    const lines: Array<Record<string, unknown>> = [];
    const log = (obj: Record<string, unknown>) => lines.push(obj);
    const http = client({ logger: { debug: log, info: log, warn: log, error: log } });
    await http.request({ method: 'DELETE', url: `${server.base}/items/1?sig=zzz` });
    const attempts = lines.filter((l) => 'status' in l);
    expect(attempts).toEqual([
      expect.objectContaining({ method: 'DELETE', host: `127.0.0.1:${server.port}`, path: '/items/1', status: 500, attempt: 1 }),
      expect.objectContaining({ method: 'DELETE', path: '/items/1', status: 204, attempt: 2 }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('sig=zzz');
  });
});

describe('secrets never leak into errors or logs', () => {
  const CANARY = 'CANARY-7f3a9c';

  function leakCheck(value: unknown, lines: unknown[]): void {
    const seen = new Set<unknown>();
    const dump = (v: unknown): string => {
      if (typeof v !== 'object' || v === null || seen.has(v)) return String(v);
      seen.add(v);
      const e = v as { message?: unknown; stack?: unknown; details?: unknown; cause?: unknown };
      return [String(e.message), String(e.stack), JSON.stringify(e.details), dump(e.cause), JSON.stringify(v)].join('\n');
    };
    expect(dump(value)).not.toContain(CANARY);
    expect(JSON.stringify(lines)).not.toContain(CANARY);
  }

  function canaryClient(options: FetchHttpClientOptions = {}) {
    const lines: unknown[] = [];
    const log = (obj: Record<string, unknown>, msg?: string) => lines.push({ obj, msg });
    const http = client({
      headers: { authorization: `Bearer ${CANARY}-auth` },
      logger: { debug: log, info: log, warn: log, error: log },
      ...options,
    });
    const req = (url: string) =>
      http.request({ method: 'POST', url: `${url}?client_secret=${CANARY}-query`, body: { refresh_token: `${CANARY}-body` } });
    return { lines, req };
  }

  it('on timeout, refusal, an oversized body and a 500 body', async () => {
    const server = await serve((req, res) => {
      if (req.url?.startsWith('/hang')) return;
      if (req.url?.startsWith('/big')) return void res.end(`${CANARY}-response `.repeat(10_000));
      res.statusCode = 500;
      res.end(`${CANARY}-error-body`);
    });
    const { lines, req } = canaryClient({ timeoutMs: 100, retries: 1, maxResponseBytes: 1024 });

    const timeout = await rejection(req(`${server.base}/hang`));
    expect(isIntegrationSyncError(timeout, 'ERR_HTTP_TIMEOUT')).toBe(true);
    leakCheck(timeout, lines);

    const refused = await rejection(req(`http://127.0.0.1:${await refusedPort()}/x`));
    expect(isIntegrationSyncError(refused, 'ERR_HTTP_NETWORK')).toBe(true);
    leakCheck(refused, lines);

    const big = await rejection(req(`${server.base}/big`));
    expect(isIntegrationSyncError(big, 'ERR_HTTP_NETWORK')).toBe(true);
    leakCheck(big, lines);

    // The body is the caller's to read, but no log line may carry it.
    const failed = await req(`${server.base}/fail`);
    expect(failed.text).toContain(CANARY);
    leakCheck(undefined, lines);
    expect(server.hits.some((h) => h.headers.authorization === `Bearer ${CANARY}-auth`)).toBe(true);
  });

  it('in option and request validation errors', async () => {
    const { req } = canaryClient();
    const errors: unknown[] = [];
    try {
      createFetchHttpClient({ headers: { authorization: `Bearer ${CANARY}\r\nx: y` } });
    } catch (error) {
      errors.push(error);
    }
    errors.push(await rejection(req(`http://user:${CANARY}@127.0.0.1:1/x`)));
    errors.push(await rejection(req(`not a url ${CANARY}`)));
    const http = client();
    errors.push(await rejection(http.request({ url: 'http://127.0.0.1:1/', headers: { 'x-key': `${CANARY}\nx-other: 1` } })));
    expect(errors).toHaveLength(4);
    for (const error of errors) {
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
      leakCheck(error, []);
    }
  });
});

describe('option validation', () => {
  it.each<[string, FetchHttpClientOptions]>([
    ['retries -1', { retries: -1 }],
    ['retries 1.5', { retries: 1.5 }],
    ['timeoutMs 0', { timeoutMs: 0 }],
    ['retryMaxMs below retryBaseMs', { retryBaseMs: 500, retryMaxMs: 100 }],
    ['maxRetryAfterMs NaN', { maxRetryAfterMs: Number.NaN }],
    ['maxResponseBytes 0', { maxResponseBytes: 0 }],
    ['retryMethods with TRACE', { retryMethods: ['TRACE' as 'GET'] }],
    ['fetch not a function', { fetch: 'nope' as unknown as FetchHttpClientOptions['fetch'] }],
    ['header value not a string', { headers: { a: 1 as unknown as string } }],
    ['clock without timers', { clock: { now: () => 0 } as unknown as FetchHttpClientOptions['clock'] }],
  ])('throws ERR_INVALID_OPTION for %s', (_name, options) => {
    expect(() => createFetchHttpClient(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });

  it('rejects bad requests with ERR_INVALID_OPTION and sends nothing', async () => {
    let calls = 0;
    const http = createFetchHttpClient({
      fetch: () => {
        calls++;
        return Promise.resolve(new Response('x'));
      },
    });
    const bad = [
      { url: 'ftp://127.0.0.1/x' },
      { url: 'http://127.0.0.1/x', body: { a: 1 } },
      { url: 'http://127.0.0.1/x', method: 'TRACE' as 'GET' },
      { url: 'http://127.0.0.1/x', retries: -2 },
      { url: 'http://127.0.0.1/x', timeoutMs: 0 },
      { url: 'http://127.0.0.1/x', method: 'POST' as const, body: { n: 1n } },
    ];
    for (const request of bad) {
      const error = await rejection(http.request(request));
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION'), JSON.stringify(request.url)).toBe(true);
    }
    expect(calls).toBe(0);
  });
});

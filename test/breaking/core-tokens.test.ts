import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/types.js';
import { createMemoryBus, type MemoryEventBus } from '../../src/bus/memory-bus.js';
import type { Logger } from '../../src/core/logger.js';
import type { CloudEvent } from '../../src/events/envelope.js';
import { EventTypes } from '../../src/events/schemas.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';
import type { HttpClient } from '../../src/http/types.js';
import { TokenRefreshService, type TokenRefreshServiceOptions } from '../../src/tokens/token-refresh-service.js';

const CANARY = `CANARYsecret${randomUUID().replace(/-/g, '')}`;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

type Reply = (req: IncomingMessage, res: ServerResponse) => void;
const replies = new Map<string, Reply>();
let server: Server;
let baseUrl = '';

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = createServer((req, res) => {
    const id = decodeURIComponent((req.url ?? '').split('/')[2] ?? '');
    req.resume();
    req.on('end', () => (replies.get(id) ?? ((_q, r) => r.end('{}')))(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

interface Captured {
  bus: MemoryEventBus;
  events: CloudEvent[];
  audit: AuditRecord[];
  logs: string[];
  service: TokenRefreshService;
}

function capturingLogger(logs: string[], bindings: Record<string, unknown> = {}): Logger {
  const line = (level: string) => (obj: Record<string, unknown>, msg?: string) => void logs.push(JSON.stringify({ level, ...bindings, ...obj, msg }));
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error'), child: (b) => capturingLogger(logs, { ...bindings, ...b }) };
}

async function setup(overrides: Partial<TokenRefreshServiceOptions> = {}): Promise<Captured> {
  const logs: string[] = [];
  const audit: AuditRecord[] = [];
  const events: CloudEvent[] = [];
  const logger = capturingLogger(logs);
  const sink = { record: (r: AuditRecord) => void audit.push(r) };
  const bus = createMemoryBus({ logger, audit: sink });
  await bus.subscribe({ group: 'spy', types: Object.values(EventTypes), handler: async (e) => void events.push(e), concurrency: 16 });
  const service = new TokenRefreshService({
    bus,
    http: createFetchHttpClient({ retries: 1, retryBaseMs: 1, retryMaxMs: 2, timeoutMs: 2000, logger, maxResponseBytes: 64 * 1024 }),
    baseUrl,
    headers: { authorization: `Bearer ${CANARY}`, 'x-client-secret': CANARY },
    logger,
    audit: sink,
    ...overrides,
  });
  return { bus, events, audit, logs, service };
}

function connection(reply: Reply): { connectionId: string; integrationId: string; tenantId: string } {
  const connectionId = `c-${randomUUID()}`;
  replies.set(connectionId, reply);
  return { connectionId, integrationId: 'int', tenantId: 'ten' };
}

const json = (status: number, body: unknown): Reply => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

function assertNoCanary(c: Captured, extra: unknown[] = []): void {
  const everything = JSON.stringify({ events: c.events, audit: c.audit, deadLetters: c.bus.deadLetters(), extra }) + c.logs.join('\n');
  expect(everything).not.toContain(CANARY);
}

async function waitForEvents(c: Captured, count: number): Promise<void> {
  const started = Date.now();
  while (c.events.filter((e) => e.type.startsWith('integration.token.refresh')).length < count) {
    if (Date.now() - started > 5000) throw new Error('events did not arrive');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const hostileBodies: Record<string, [number, unknown]> = {
  'tokens in a success body': [200, { access_token: CANARY, refresh_token: CANARY, expiresAt: '2030-01-01T00:00:00Z' }],
  '__proto__ in a success body': [200, `{"__proto__":{"success":false,"error":"${CANARY}"},"expiresAt":"2030-01-01T00:00:00Z","refresh_token":"${CANARY}"}`],
  'free text with the token in error': [400, { error: `invalid_grant: refresh token ${CANARY} revoked` }],
  'ANSI and newlines in error': [400, { error: `\u001b[31m${CANARY}\r\n\u0000injected` }],
  'a very long error': [500, { error: `${CANARY}${'x'.repeat(20_000)}` }],
  'a 2xx failure with the token': [200, { success: false, error: CANARY, error_description: CANARY }],
  'an error object with a token code': [200, { error: { code: CANARY, message: CANARY } }],
  'a body over maxResponseBytes': [200, { refresh_token: CANARY, pad: 'p'.repeat(200_000) }],
  'not JSON, token in text': [502, `<html>${CANARY}</html>`],
  'snake-case-looking secret': [400, { error: CANARY.toLowerCase().replace(/[^a-z]/g, '_').slice(0, 40) }],
};

describe('TokenRefreshService: nothing the integration-manager sends leaks', () => {
  for (const [name, [status, body]] of Object.entries(hostileBodies)) {
    it(name, async () => {
      const c = await setup();
      const request = connection(json(status, body));
      const outcome = await c.service.refreshConnectionTokens(request);
      await waitForEvents(c, 1);
      if (outcome.status === 'failed') expect(outcome.error).toMatch(/^[a-z0-9_]{1,40}$/);
      assertNoCanary(c, [outcome]);
      await c.service.stop();
      await c.bus.close();
    });
  }

  it('a host HttpClient whose errors carry the token leaks it nowhere', async () => {
    const http: HttpClient = {
      request: () => Promise.reject(Object.assign(new Error(`POST https://im/refresh?token=${CANARY} failed: Authorization: Bearer ${CANARY}`), { code: 'ECONNRESET' })),
    };
    const c = await setup({ http });
    const outcome = await c.service.refreshConnectionTokens(connection(json(200, {})));
    await waitForEvents(c, 1);
    expect(outcome).toMatchObject({ status: 'failed', error: 'network', retryable: true });
    assertNoCanary(c, [outcome]);
    await c.bus.close();
  });

  it('a headers function that throws a message with the secret leaks it nowhere', async () => {
    const c = await setup({
      headers: () => {
        throw new Error(`vault returned ${CANARY}`);
      },
    });
    const outcome = await c.service.refreshConnectionTokens(connection(json(200, {})));
    await waitForEvents(c, 1);
    expect(outcome.status).toBe('failed');
    assertNoCanary(c, [outcome]);
    await c.bus.close();
  });
});

describe('TokenRefreshService: odd expiresAt values never give NaN or Invalid Date', () => {
  const odd: unknown[] = [[], {}, true, null, -1, 0, 1e300, Number.MAX_VALUE, '1e10', ' 1796324400 ', '2026-13-01T00:00:00Z', 'NaN', 'Infinity',
    '2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '9999999999999999', '2026-12-03T19:00:00+25:00', '2026-12-03T19:00:00', 0.5, 'x'.repeat(30_000)];
  it('every one is ignored or is a valid ISO time', async () => {
    const c = await setup();
    for (const value of odd) {
      const outcome = await c.service.refreshConnectionTokens(connection(json(200, { expiresAt: value })));
      expect(outcome.status).toBe('refreshed');
      if (outcome.status === 'refreshed' && outcome.expiresAt !== undefined) {
        expect(new Date(outcome.expiresAt).toISOString()).toBe(outcome.expiresAt);
      }
    }
    await waitForEvents(c, odd.length);
    const bad = c.bus.deadLetters();
    expect(bad).toEqual([]);
    await c.bus.close();
  });
});

describe('TokenRefreshService: concurrency, abort and stop', () => {
  it('one waiter aborting leaves the others and the upstream call alone', async () => {
    let calls = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const c = await setup();
    const request = connection((_req, res) => {
      calls += 1;
      void gate.then(() => json(200, { expiresAt: '2030-01-01T00:00:00Z' })(_req, res));
    });
    const quitter = new AbortController();
    const a = c.service.refreshConnectionTokens(request, { signal: quitter.signal });
    const b = c.service.refreshConnectionTokens(request);
    const d = c.service.refreshConnectionTokens(request, { signal: new AbortController().signal });
    await new Promise((r) => setTimeout(r, 50));
    quitter.abort(new Error('quitter'));
    await expect(a).rejects.toThrow('quitter');
    release();
    await expect(b).resolves.toMatchObject({ status: 'refreshed' });
    await expect(d).resolves.toMatchObject({ status: 'refreshed' });
    expect(calls).toBe(1);
    await waitForEvents(c, 1);
    expect(c.events.filter((e) => e.type === EventTypes.TokenRefreshed)).toHaveLength(1);
    await c.bus.close();
  });

  it('stop() during hanging refreshes aborts them by the deadline; nothing is published', async () => {
    const c = await setup({ stopTimeoutMs: 100 });
    const hang: Reply = () => {};
    const pending = [1, 2, 3].map(() => c.service.refreshConnectionTokens(connection(hang)).then(
      () => 'resolved',
      (e: unknown) => e,
    ));
    await new Promise((r) => setTimeout(r, 50));
    await c.service.stop();
    const results = await Promise.all(pending);
    for (const r of results) expect(r).not.toBe('resolved');
    await new Promise((r) => setTimeout(r, 50));
    expect(c.events.filter((e) => e.type.startsWith('integration.token.refresh'))).toEqual([]);
    await c.service.stop();
    await c.bus.close();
  });
});

describe('TokenRefreshService: connection ids that would change the URL path', () => {
  for (const connectionId of ['.', '..']) {
    it(`refuses connectionId ${JSON.stringify(connectionId)} before any call (it would POST to another path)`, async () => {
      let hits = 0;
      const c = await setup();
      const seen: string[] = [];
      const http: HttpClient = {
        request: async (req) => {
          hits += 1;
          seen.push(new URL(req.url).pathname);
          return { status: 200, headers: {}, text: '', attempts: 1 };
        },
      };
      const service = new TokenRefreshService({ bus: c.bus, http, baseUrl: `${baseUrl}/api` });
      await expect(service.refreshConnectionTokens({ connectionId, integrationId: 'i', tenantId: 't' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
      expect({ hits, seen }).toEqual({ hits: 0, seen: [] });
      await c.bus.close();
    });
  }
});

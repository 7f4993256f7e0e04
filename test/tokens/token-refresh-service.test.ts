import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/types.js';
import type { EventBus } from '../../src/bus/types.js';
import { isIntegrationSyncError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { parseEvent, type CloudEvent } from '../../src/events/envelope.js';
import { createFetchHttpClient } from '../../src/http/fetch-client.js';
import { createMemoryLease } from '../../src/leases/memory-lease.js';
import { TokenRefreshService, type TokenRefreshServiceOptions } from '../../src/tokens/token-refresh-service.js';
import type { RefreshOutcome } from '../../src/tokens/types.js';
import { startIntegrationManager, type IntegrationManager } from '../support/integration-manager.js';

let im: IntegrationManager;
/** Every refresh token any connection has held, so the leak check can look for all of them. */
const issuedTokens = new Set<string>();

beforeAll(async () => {
  im = await startIntegrationManager();
});
afterAll(async () => {
  await im?.close();
});

interface Harness {
  service: TokenRefreshService;
  events: CloudEvent[];
  audit: AuditRecord[];
  logs: string[];
  errors: unknown[];
  connection: { connectionId: string; integrationId: string; tenantId: string };
}

function setup(overrides: Partial<TokenRefreshServiceOptions> = {}): Harness {
  const events: CloudEvent[] = [];
  const audit: AuditRecord[] = [];
  const logs: string[] = [];
  const bus: EventBus = {
    publish: async (event) => void events.push(event),
    subscribe: async () => {
      throw new Error('unused');
    },
    close: async () => {},
  };
  const line = (level: string) => (obj: Record<string, unknown>, msg?: string) => void logs.push(JSON.stringify({ level, ...obj, msg }));
  const logger: Logger = { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
  logger.child = (bindings) => ({ ...logger, info: (o, m) => logger.info({ ...bindings, ...o }, m) });
  const connectionId = `conn/${randomUUID().slice(0, 8)}`;
  const connection = { connectionId, integrationId: 'hubspot', tenantId: `tenant-${randomUUID().slice(0, 6)}` };
  const refreshToken = `CANARY-RT-${randomUUID()}`;
  issuedTokens.add(refreshToken);
  im.addConnection(connectionId, { integrationId: connection.integrationId, tenantId: connection.tenantId, refreshToken });
  const service = new TokenRefreshService({
    bus,
    http: createFetchHttpClient({ retryBaseMs: 10, retryMaxMs: 50, timeoutMs: 5_000, logger }),
    baseUrl: `${im.baseUrl}/`,
    headers: { authorization: `Bearer ${im.serviceToken}` },
    audit: { record: (r) => void audit.push(r) },
    logger,
    ...overrides,
  });
  return { service, events, audit, logs, errors: [], connection };
}

/** Fails if any secret or raw body reached an event, a log line, an audit record, an outcome or an error. */
function expectNoSecrets(h: Harness, ...outcomes: unknown[]): void {
  const current = im.refreshTokenOf(h.connection.connectionId);
  if (current !== undefined) issuedTokens.add(current);
  const seen = JSON.stringify({
    events: h.events,
    audit: h.audit,
    logs: h.logs,
    outcomes,
    errors: h.errors.map((e) => (e instanceof Error ? { message: e.message, details: (e as { details?: unknown }).details } : e)),
  });
  for (const secret of [...issuedTokens, im.serviceToken, im.clientSecret, 'Bearer', 'eyJ', 'has been revoked', '<html', 'CANARY']) {
    expect(seen, `leaked ${secret.slice(0, 12)}`).not.toContain(secret);
  }
}

function eventOf(h: Harness, type: string): CloudEvent {
  const matching = h.events.filter((e) => e.type === type);
  expect(matching).toHaveLength(1);
  const event = matching[0] as CloudEvent;
  expect(parseEvent(JSON.stringify(event)).ok).toBe(true);
  return event;
}

describe('TokenRefreshService.refreshConnectionTokens against a real integration-manager and OAuth 2 server', () => {
  it('refreshes, rotates the refresh token, emits refreshed with expiresAt, and audits', async () => {
    const h = setup();
    const before = im.refreshTokenOf(h.connection.connectionId);
    const grants = im.grants();
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'refreshed', connectionId: h.connection.connectionId, attempts: 1 });
    const { expiresAt, refreshedAt } = outcome as Extract<RefreshOutcome, { status: 'refreshed' }>;
    expect(Date.parse(expiresAt as string) - Date.now()).toBeGreaterThan(3_000_000);
    expect(im.refreshTokenOf(h.connection.connectionId)).not.toBe(before);
    expect(im.grants()).toBe(grants + 1);
    expect(im.hits(h.connection.connectionId)).toBe(1);
    const event = eventOf(h, 'integration.token.refreshed');
    expect(event.data).toEqual({ ...h.connection, refreshedAt, expiresAt, attempts: 1 });
    expect(h.audit).toEqual([
      expect.objectContaining({ kind: 'token.refresh', outcome: 'succeeded', ...h.connection, attempt: 1 }),
    ]);
    expectNoSecrets(h, outcome);
  });

  it('reports invalid_grant once, as permanent, without retrying or leaking the description', async () => {
    const h = setup();
    im.revoke(im.refreshTokenOf(h.connection.connectionId) as string);
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toEqual({ status: 'failed', connectionId: h.connection.connectionId, error: 'invalid_grant', retryable: false, attempts: 1 });
    expect(im.hits(h.connection.connectionId)).toBe(1);
    expect(eventOf(h, 'integration.token.refresh.failed').data).toMatchObject({
      ...h.connection,
      error: 'invalid_grant',
      retryable: false,
      attempts: 1,
      status: 400,
    });
    expect(h.audit).toEqual([expect.objectContaining({ outcome: 'failed', reason: 'invalid_grant' })]);
    expectNoSecrets(h, outcome);
  });

  it('rejects bad service credentials as invalid_client, permanent', async () => {
    const h = setup({ headers: { authorization: 'Bearer CANARY-wrong-service-token' } });
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'failed', error: 'invalid_client', retryable: false, attempts: 1 });
    expectNoSecrets(h, outcome);
  });

  it('retries a 500 and then succeeds with one grant', async () => {
    const h = setup();
    im.script(h.connection.connectionId, [{ status: 500 }]);
    const grants = im.grants();
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'refreshed', attempts: 2 });
    expect(im.hits(h.connection.connectionId)).toBe(2);
    expect(im.grants()).toBe(grants + 1);
    expect(eventOf(h, 'integration.token.refreshed').data).toMatchObject({ attempts: 2 });
    expectNoSecrets(h, outcome);
  });

  it('waits out a 429 Retry-After and then succeeds', async () => {
    const h = setup();
    im.script(h.connection.connectionId, [{ status: 429, retryAfter: '1', body: { error: 'rate_limited' } }]);
    const started = Date.now();
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'refreshed', attempts: 2 });
    // A lower bound only: the client must have slept on Retry-After, not on its 10-50 ms backoff.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expectNoSecrets(h, outcome);
  });

  it('reports rate_limited, retryable, when 429 outlasts the retries', async () => {
    const h = setup({ retries: 1 });
    im.script(h.connection.connectionId, [{ status: 429, retryAfter: '0' }, { status: 429, retryAfter: '0' }]);
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'failed', error: 'rate_limited', retryable: true, attempts: 2 });
    expect(im.hits(h.connection.connectionId)).toBe(2);
  });

  it('reports timeout when the integration-manager hangs past timeoutMs', async () => {
    const h = setup({ timeoutMs: 300, retries: 1 });
    im.script(h.connection.connectionId, [{ hang: true }, { hang: true }]);
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'failed', error: 'timeout', retryable: true, attempts: 2 });
    expect(eventOf(h, 'integration.token.refresh.failed').data).toMatchObject({ error: 'timeout', retryable: true, attempts: 2 });
    expectNoSecrets(h, outcome);
  });

  it('reports network when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const h = setup({ baseUrl: `http://127.0.0.1:${port}` });
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'failed', error: 'network', retryable: true, attempts: 3 });
    expect(h.audit).toEqual([expect.objectContaining({ outcome: 'failed', reason: 'network', attempt: 3 })]);
    expectNoSecrets(h, outcome);
  });

  it('treats a 2xx body that is not JSON as success without expiresAt, and never echoes it', async () => {
    const h = setup();
    im.script(h.connection.connectionId, [{ nonJson: true }]);
    const outcome = await h.service.refreshConnectionTokens(h.connection);
    expect(outcome).toMatchObject({ status: 'refreshed', attempts: 1 });
    expect(outcome).not.toHaveProperty('expiresAt');
    expect(eventOf(h, 'integration.token.refreshed').data).not.toHaveProperty('expiresAt');
    expectNoSecrets(h, outcome);
  });

  it('reports a 2xx { success: false } as a failure with its code', async () => {
    const h = setup();
    im.script(h.connection.connectionId, [{ successFalse: 'temporarily_unavailable' }, { successFalse: 'Token CANARY-in-text is bad' }]);
    const first = await h.service.refreshConnectionTokens(h.connection);
    expect(first).toMatchObject({ status: 'failed', error: 'temporarily_unavailable', retryable: true, attempts: 1 });
    const second = await h.service.refreshConnectionTokens(h.connection);
    expect(second).toMatchObject({ status: 'failed', error: 'refresh_failed', retryable: false });
    expect(im.hits(h.connection.connectionId)).toBe(2);
    expectNoSecrets(h, first, second);
  });

  it('makes exactly one upstream call for a burst of 50 concurrent refreshes of one connection', async () => {
    const h = setup();
    im.script(h.connection.connectionId, [{ delayMs: 200 }]);
    const grants = im.grants();
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => h.service.refreshConnectionTokens(h.connection)));
    expect(im.hits(h.connection.connectionId)).toBe(1);
    expect(im.grants()).toBe(grants + 1);
    expect(new Set(outcomes.map((o) => JSON.stringify(o))).size).toBe(1);
    expect(outcomes[0]?.status).toBe('refreshed');
    expect(h.events).toHaveLength(1);
    expectNoSecrets(h, ...outcomes);
  });

  it('skips a request older than the last successful refresh as stale_request', async () => {
    const h = setup();
    const first = await h.service.refreshConnectionTokens({ ...h.connection, requestedAt: new Date().toISOString() });
    expect(first.status).toBe('refreshed');
    const stale = await h.service.refreshConnectionTokens({ ...h.connection, requestedAt: new Date(Date.now() - 60_000).toISOString() });
    expect(stale).toEqual({ status: 'skipped', connectionId: h.connection.connectionId, reason: 'stale_request' });
    expect(im.hits(h.connection.connectionId)).toBe(1);
    const fresh = await h.service.refreshConnectionTokens({ ...h.connection, requestedAt: new Date(Date.now() + 1_000).toISOString() });
    expect(fresh.status).toBe('refreshed');
    expect(h.audit.map((r) => r.outcome)).toEqual(['succeeded', 'skipped', 'succeeded']);
    expect(h.events).toHaveLength(2);
  });

  it('skips with lease_held while another replica holds the connection lease, and releases its own', async () => {
    const lease = createMemoryLease();
    const h = setup({ lease });
    const other = await lease.tryAcquire(`token-refresh:${h.connection.connectionId}`, 10_000);
    const held = await h.service.refreshConnectionTokens(h.connection);
    expect(held).toEqual({ status: 'skipped', connectionId: h.connection.connectionId, reason: 'lease_held' });
    expect(im.hits(h.connection.connectionId)).toBe(0);
    await lease.release(other!);
    expect((await h.service.refreshConnectionTokens(h.connection)).status).toBe('refreshed');
    expect(await lease.tryAcquire(`token-refresh:${h.connection.connectionId}`, 1_000)).not.toBeNull();
  });

  it('keeps renewing its lease while a refresh outlasts leaseTtlMs', async () => {
    const lease = createMemoryLease();
    const h = setup({ lease, leaseTtlMs: 200 });
    im.script(h.connection.connectionId, [{ delayMs: 800 }]);
    const refreshing = h.service.refreshConnectionTokens(h.connection);
    await new Promise((r) => setTimeout(r, 500));
    expect(await lease.tryAcquire(`token-refresh:${h.connection.connectionId}`, 10_000)).toBeNull();
    expect((await refreshing).status).toBe('refreshed');
    expect(await lease.tryAcquire(`token-refresh:${h.connection.connectionId}`, 10_000)).not.toBeNull();
    expect(h.logs.some((l) => l.includes('lease lost'))).toBe(false);
  });

  it('two services sharing a lease never refresh one connection at the same time', async () => {
    const lease = createMemoryLease();
    const a = setup({ lease });
    const b = setup({ lease });
    im.script(a.connection.connectionId, [{ delayMs: 200 }]);
    const [ra, rb] = await Promise.all([
      a.service.refreshConnectionTokens(a.connection),
      b.service.refreshConnectionTokens(a.connection),
    ]);
    expect([ra.status, rb.status].sort()).toEqual(['refreshed', 'skipped']);
    expect(im.hits(a.connection.connectionId)).toBe(1);
  });

  it('rejects an aborted caller with its reason, publishes nothing, and keeps the call for other waiters', async () => {
    const h = setup();
    im.script(h.connection.connectionId, [{ delayMs: 300 }]);
    const controller = new AbortController();
    const leaving = h.service.refreshConnectionTokens(h.connection, { signal: controller.signal });
    const staying = h.service.refreshConnectionTokens(h.connection);
    setTimeout(() => controller.abort(new Error('caller went away')), 50);
    await expect(leaving).rejects.toThrow('caller went away');
    expect((await staying).status).toBe('refreshed');
    expect(im.hits(h.connection.connectionId)).toBe(1);

    const lone = new AbortController();
    im.script(h.connection.connectionId, [{ hang: true }]);
    const pending = h.service.refreshConnectionTokens(h.connection, { signal: lone.signal });
    setTimeout(() => lone.abort(), 50);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(h.events.map((e) => e.type)).toEqual(['integration.token.refreshed']);
  });

  it('rejects a request without ids with ERR_INVALID_OPTION and publishes nothing', async () => {
    const h = setup();
    for (const bad of [{ ...h.connection, connectionId: '' }, { ...h.connection, tenantId: undefined }, null]) {
      const error = await h.service.refreshConnectionTokens(bad as never).catch((e: unknown) => e);
      expect(isIntegrationSyncError(error, 'ERR_INVALID_OPTION')).toBe(true);
      h.errors.push(error);
    }
    expect(h.events).toHaveLength(0);
    expectNoSecrets(h);
  });

  it('stop() waits for in-flight refreshes, then aborts them at its deadline', async () => {
    const h = setup({ stopTimeoutMs: 200 });
    im.script(h.connection.connectionId, [{ hang: true }]);
    const pending = h.service.refreshConnectionTokens(h.connection).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await h.service.stop();
    const error = await pending;
    expect(isIntegrationSyncError(error, 'ERR_ABORTED')).toBe(true);
    expect(h.events).toHaveLength(0);
    await h.service.stop();
  });

  it('uses a custom buildRequest and function headers', async () => {
    const h = setup({
      baseUrl: undefined,
      headers: async () => ({ authorization: `Bearer ${im.serviceToken}` }),
      buildRequest: (request) => ({
        url: `${im.baseUrl}/connections/${encodeURIComponent(request.connectionId)}/refresh`,
        body: { integrationId: request.integrationId, tenantId: request.tenantId },
      }),
    });
    expect((await h.service.refreshConnectionTokens(h.connection)).status).toBe('refreshed');
    expectNoSecrets(h);
  });
});

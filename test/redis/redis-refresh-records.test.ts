/** The Redis refresh record store against the real Redis, and the stale check across two refreshers. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFetchHttpClient, createMemoryBus, TokenRefreshService } from '../../src/index.js';
import { createRedisRefreshRecordStore } from '../../src/redis/index.js';
import { closeClients, deleteKeys, newClient, uniquePrefix } from './helpers.js';

const redis: Redis = newClient();
const prefix = uniquePrefix('refreshed');
let server: Server;
let baseUrl = '';
let calls = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    calls += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ expiresAt: new Date(Date.now() + 3_600_000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await deleteKeys(redis, prefix);
  await closeClients([redis]);
});

describe('createRedisRefreshRecordStore', () => {
  it('shares records between stores, only ever moves a record forward, and expires it', async () => {
    const other = newClient();
    try {
      const one = createRedisRefreshRecordStore({ client: redis, prefix, ttlMs: 60_000 });
      const two = createRedisRefreshRecordStore({ client: other, prefix, ttlMs: 60_000 });
      expect(await one.get('conn_1')).toBeUndefined();
      await one.set('conn_1', 2_000);
      expect(await two.get('conn_1')).toBe(2_000);
      await two.set('conn_1', 1_000); // a late completion on another replica
      expect(await one.get('conn_1')).toBe(2_000);
      await two.set('conn_1', 3_000);
      expect(await one.get('conn_1')).toBe(3_000);
      const ttl = await redis.pttl(`${prefix}:conn_1`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      await closeClients([other]);
    }
  });

  it('refuses a client without eval and a bad ttl with ERR_INVALID_OPTION', () => {
    expect(() => createRedisRefreshRecordStore({ client: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => createRedisRefreshRecordStore({ client: redis, ttlMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });

  it('makes the stale-request check hold across two refreshers (replicas)', async () => {
    const records = createRedisRefreshRecordStore({ client: redis, prefix: `${prefix}:svc` });
    const bus = createMemoryBus();
    const make = (): TokenRefreshService =>
      new TokenRefreshService({ bus, http: createFetchHttpClient({ retries: 0 }), baseUrl, refreshRecords: records, emitOnStart: false });
    const a = make();
    const b = make();
    const request = { connectionId: 'conn_shared', integrationId: 'int_crm', tenantId: 'tenant_a' };
    try {
      const before = calls;
      const first = await a.refreshConnectionTokens({ ...request, requestedAt: new Date().toISOString() });
      expect(first.status).toBe('refreshed');
      // A request made before that refresh, arriving late at the other replica, is skipped there.
      const late = await b.refreshConnectionTokens({ ...request, requestedAt: new Date(Date.now() - 60_000).toISOString() });
      expect(late).toMatchObject({ status: 'skipped', reason: 'stale_request' });
      expect(calls - before).toBe(1);
    } finally {
      await a.stop();
      await b.stop();
      await bus.close();
    }
  });
});

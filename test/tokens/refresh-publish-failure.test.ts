/** A refreshed event the bus refuses is not lost: the retried request refreshes and announces again. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFetchHttpClient, EventTypes, IntegrationSyncError, TokenRefreshService, type CloudEvent, type EventBus } from '../../src/index.js';

let server: Server;
let baseUrl = '';
let calls = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    calls += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('refreshConnectionTokens when the bus refuses the result event', () => {
  it('rejects, and the redelivered request refreshes again instead of being skipped as stale', async () => {
    const published: CloudEvent[] = [];
    let refuse = true;
    // A bus that is down for the first refreshed event only.
    const bus: EventBus = {
      publish: async (event) => {
        if (event.type === EventTypes.TokenRefreshed && refuse) {
          refuse = false;
          throw new IntegrationSyncError('ERR_PUBLISH_FAILED', 'broker unavailable');
        }
        published.push(event);
      },
      subscribe: () => Promise.reject(new Error('unused')),
      close: async () => {},
    };
    const tokens = new TokenRefreshService({ bus, http: createFetchHttpClient({ retries: 0 }), baseUrl, emitOnStart: false });
    const request = { connectionId: 'conn_1', integrationId: 'int_crm', tenantId: 'tenant_a', requestedAt: new Date().toISOString() };
    try {
      await expect(tokens.refreshConnectionTokens(request)).rejects.toMatchObject({ code: 'ERR_PUBLISH_FAILED' });
      const again = await tokens.refreshConnectionTokens(request);
      expect(again.status).toBe('refreshed');
      expect(calls).toBe(2);
      expect(published.filter((e) => e.type === EventTypes.TokenRefreshed)).toHaveLength(1);
    } finally {
      await tokens.stop();
    }
  });
});

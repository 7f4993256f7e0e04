/**
 * The demo's loopback world: a real OAuth 2 server (oauth2-mock-server) with rotating refresh
 * tokens, an integration-manager whose refresh endpoint runs the refresh_token grant against it,
 * and a provider API that pages records to callers holding a live access token.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OAuth2Server } from 'oauth2-mock-server';

/** One OAuth connection the integration-manager holds for a tenant's integration. */
export interface DemoConnection {
  connectionId: string;
  integrationId: string;
  tenantId: string;
  refreshToken: string;
  accessToken?: string;
  /** Epoch ms. */
  expiresAt: number;
}

export interface OAuthWorld {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** Registers a refresh token as live (as a consent flow would). */
  grant(refreshToken: string): void;
  /** Makes a refresh token dead: its next refresh answers invalid_grant. */
  revoke(refreshToken: string): void;
  isLiveAccessToken(token: string): boolean;
  stats: { grants: number; invalidGrants: number };
  stop(): Promise<void>;
}

/** Starts oauth2-mock-server on loopback with rotating refresh tokens and client authentication. */
export async function startOAuthServer(): Promise<OAuthWorld> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  await server.start(0, '127.0.0.1');
  const clientId = 'demo-sync-client';
  const clientSecret = `demo-secret-${randomUUID()}`;
  const liveRefresh = new Set<string>();
  const liveAccess = new Map<string, number>();
  const stats = { grants: 0, invalidGrants: 0 };

  server.service.on('beforeResponse', (response: { statusCode: number; body: Record<string, unknown> }, req: IncomingMessage & { body?: Record<string, string> }) => {
    const body = req.body ?? {};
    if (body.grant_type !== 'refresh_token') return;
    const presented = body.refresh_token ?? '';
    if (body.client_id !== clientId || body.client_secret !== clientSecret) {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'client authentication failed' };
      return;
    }
    if (!liveRefresh.has(presented)) {
      stats.invalidGrants += 1;
      response.statusCode = 400;
      response.body = { error: 'invalid_grant', error_description: 'refresh token is revoked or was already used' };
      return;
    }
    // Rotation: the presented refresh token dies, the new one lives.
    liveRefresh.delete(presented);
    const next = response.body.refresh_token;
    if (typeof next === 'string') liveRefresh.add(next);
    const access = response.body.access_token;
    const ttl = typeof response.body.expires_in === 'number' ? response.body.expires_in : 3600;
    if (typeof access === 'string') liveAccess.set(access, Date.now() + ttl * 1000);
    stats.grants += 1;
  });

  const issuer = server.issuer.url ?? `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    tokenUrl: `${issuer}/token`,
    clientId,
    clientSecret,
    grant: (token) => liveRefresh.add(token),
    revoke: (token) => liveRefresh.delete(token),
    isLiveAccessToken: (token) => (liveAccess.get(token) ?? 0) > Date.now(),
    stats,
    stop: () => server.stop(),
  };
}

async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as unknown) : {};
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface IntegrationManagerWorld {
  url: string;
  serviceToken: string;
  connections: Map<string, DemoConnection>;
  /** The live access token of a connection, for the sync service (host-internal call). */
  accessToken(connectionId: string): string | undefined;
  stop(): Promise<void>;
}

/**
 * The integration-manager: `POST /connections/{id}/refresh` with `{ integrationId, tenantId }`
 * and the host's service credentials runs the refresh_token grant and answers `{ expiresAt }`, or
 * relays an RFC 6749 error such as invalid_grant.
 */
export async function startIntegrationManager(oauth: OAuthWorld, connections: DemoConnection[]): Promise<IntegrationManagerWorld> {
  const serviceToken = `svc-${randomUUID()}`;
  const byId = new Map(connections.map((c) => [c.connectionId, c]));
  const server = createServer((req, res) => {
    void (async () => {
      const match = /^\/connections\/([^/]+)\/refresh$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) return send(res, 404, { error: 'not_found' });
      if (req.headers.authorization !== `Bearer ${serviceToken}`) return send(res, 401, { error: 'unauthorized' });
      const connection = byId.get(decodeURIComponent(match[1] ?? ''));
      const body = (await readJson(req)) as { integrationId?: string; tenantId?: string };
      if (!connection || body.integrationId !== connection.integrationId || body.tenantId !== connection.tenantId) {
        return send(res, 404, { error: 'unknown_connection' });
      }
      const grant = await fetch(oauth.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: connection.refreshToken,
          client_id: oauth.clientId,
          client_secret: oauth.clientSecret,
        }),
      });
      const tokens = (await grant.json()) as Record<string, unknown>;
      if (!grant.ok) {
        // Relay the provider's RFC 6749 error code, not its whole body.
        return send(res, grant.status === 401 ? 401 : 400, { error: typeof tokens.error === 'string' ? tokens.error : 'invalid_request' });
      }
      connection.accessToken = String(tokens.access_token);
      connection.refreshToken = String(tokens.refresh_token);
      connection.expiresAt = Date.now() + Number(tokens.expires_in ?? 3600) * 1000;
      send(res, 200, { expiresAt: new Date(connection.expiresAt).toISOString() });
    })().catch(() => send(res, 500, { error: 'internal' }));
  });
  const url = await listen(server);
  return {
    url,
    serviceToken,
    connections: byId,
    accessToken: (id) => byId.get(id)?.accessToken,
    stop: () => close(server),
  };
}

export interface ProviderWorld {
  url: string;
  stats: { pages: number; unauthorized: number };
  stop(): Promise<void>;
}

/** A provider API: `GET /v1/{integrationId}/records?page=N` pages records to a live bearer token, each page after `latencyMs`. */
export async function startProvider(oauth: OAuthWorld, options: { pages: number; pageSize: number; latencyMs?: number }): Promise<ProviderWorld> {
  const stats = { pages: 0, unauthorized: 0 };
  const server = createServer((req, res) => {
    setTimeout(() => serve(req, res), options.latencyMs ?? 0);
  });
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://provider');
    const match = /^\/v1\/([^/]+)\/records$/.exec(url.pathname);
    if (!match) return send(res, 404, { error: 'not_found' });
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!oauth.isLiveAccessToken(token)) {
      stats.unauthorized += 1;
      return send(res, 401, { error: 'invalid_token' });
    }
    const page = Math.max(1, Number(url.searchParams.get('page') ?? '1') || 1);
    stats.pages += 1;
    const records = Array.from({ length: options.pageSize }, (_, i) => ({ id: `${match[1]}-${page}-${i}`, updatedAt: new Date().toISOString() }));
    send(res, 200, { records, nextPage: page < options.pages ? page + 1 : null });
  };
  const url = await listen(server);
  return { url, stats, stop: () => close(server) };
}

/** A tiny webhook ingress: `POST /webhooks/{integrationId}/{tenantId}` hands the body to `onWebhook`. */
export async function startWebhookIngress(onWebhook: (integrationId: string, tenantId: string, body: Record<string, unknown>) => Promise<void>): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      const match = /^\/webhooks\/([^/]+)\/([^/]+)$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) return send(res, 404, { error: 'not_found' });
      const body = (await readJson(req)) as Record<string, unknown>;
      await onWebhook(decodeURIComponent(match[1] ?? ''), decodeURIComponent(match[2] ?? ''), body);
      send(res, 202, { accepted: true });
    })().catch(() => send(res, 500, { error: 'internal' }));
  });
  const url = await listen(server);
  return { url, stop: () => close(server) };
}

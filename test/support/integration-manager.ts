/**
 * A real integration-manager for tests: a node:http server on loopback that implements the
 * default refresh API (`POST /connections/:connectionId/refresh`, JSON `{ integrationId, tenantId }`,
 * `Authorization: Bearer <serviceToken>`) by running the OAuth 2 refresh_token grant against a
 * real OAuth 2 server (oauth2-mock-server), storing the rotated refresh token per connection.
 *
 * Refresh tokens rotate: after a grant the old refresh token is revoked, so two refreshes racing
 * with the same token end in `invalid_grant`, as with real providers.
 *
 * Faults are scripted per connection with {@link IntegrationManager.script}: each request takes
 * the next step (500, 429 with Retry-After, a hang, a non-JSON 2xx, `{ success: false }`, a delay);
 * with no step left it behaves normally.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { OAuth2Server } from 'oauth2-mock-server';

/** A scripted behaviour for one request to the refresh endpoint. */
export type Step =
  /** Answer this status with an RFC 6749-style JSON error body, without refreshing. */
  | { status: number; retryAfter?: string; body?: unknown }
  /** Never answer (the socket stays open until the server closes). */
  | { hang: true }
  /** Refresh, then answer 200 with a body that is not JSON. */
  | { nonJson: true }
  /** Refresh nothing, answer 200 `{ success: false, error }`. */
  | { successFalse: string }
  /** Wait, then behave normally. */
  | { delayMs: number };

/** One connection the integration-manager knows. */
export interface Connection {
  integrationId: string;
  tenantId: string;
  refreshToken: string;
}

/** The running pair of servers. */
export interface IntegrationManager {
  /** Base URL of the integration-manager (`http://127.0.0.1:<port>`). */
  baseUrl: string;
  /** The OAuth 2 token endpoint the integration-manager calls. */
  tokenUrl: string;
  /** What the integration-manager expects in `Authorization: Bearer ...`. */
  serviceToken: string;
  /** OAuth client credentials the integration-manager uses (never leave the two servers). */
  clientId: string;
  clientSecret: string;
  /** Registers a connection with its current refresh token. */
  addConnection(connectionId: string, connection: Connection): void;
  /** The connection's current refresh token (after rotations). */
  refreshTokenOf(connectionId: string): string | undefined;
  /** Revokes a refresh token at the OAuth server: the next grant with it is `invalid_grant`. */
  revoke(refreshToken: string): void;
  /** Queues behaviours for the next requests of a connection. */
  script(connectionId: string, steps: Step[]): void;
  /** Requests the refresh endpoint received for a connection. */
  hits(connectionId: string): number;
  /** refresh_token grants the OAuth server received (all connections). */
  grants(): number;
  /** Delay added to every normal refresh, so concurrent callers overlap. @default 0 */
  latencyMs: number;
  /** Stops both servers, dropping hung sockets. */
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : JSON.parse(text);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/html' : 'application/json', ...headers });
  res.end(text);
}

/** Starts the OAuth 2 server and the integration-manager in front of it, both on 127.0.0.1 port 0. */
export async function startIntegrationManager(): Promise<IntegrationManager> {
  const oauth = new OAuth2Server();
  await oauth.issuer.keys.generate('RS256');
  await oauth.start(0, '127.0.0.1');
  const tokenUrl = `${String(oauth.issuer.url).replace(/\/$/, '')}/token`;
  const revoked = new Set<string>();
  let grantCount = 0;
  oauth.service.on('beforeResponse', (response: { statusCode: number; body: Record<string, unknown> | '' }, req: { body?: Record<string, unknown> }) => {
    if (req.body?.grant_type !== 'refresh_token') return;
    grantCount++;
    const token = String(req.body.refresh_token);
    if (revoked.has(token)) {
      response.statusCode = 400;
      // A realistic description that quotes the token: it must never travel further than the IM's answer.
      response.body = { error: 'invalid_grant', error_description: `refresh token ${token} has been revoked` };
    }
  });

  const serviceToken = `svc-${randomUUID()}`;
  const clientId = `client-${randomUUID().slice(0, 8)}`;
  const clientSecret = `secret-${randomUUID()}`;
  const connections = new Map<string, Connection>();
  const scripts = new Map<string, Step[]>();
  const hitCounts = new Map<string, number>();
  const sockets = new Set<Socket>();

  const manager: IntegrationManager = {
    baseUrl: '',
    tokenUrl,
    serviceToken,
    clientId,
    clientSecret,
    latencyMs: 0,
    addConnection: (id, connection) => void connections.set(id, { ...connection }),
    refreshTokenOf: (id) => connections.get(id)?.refreshToken,
    revoke: (token) => void revoked.add(token),
    script: (id, steps) => void scripts.set(id, [...(scripts.get(id) ?? []), ...steps]),
    hits: (id) => hitCounts.get(id) ?? 0,
    grants: () => grantCount,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      await oauth.stop();
    },
  };

  async function refresh(connectionId: string, res: ServerResponse, nonJson: boolean): Promise<void> {
    const connection = connections.get(connectionId);
    if (connection === undefined) {
      send(res, 404, { error: 'not_found', error_description: `no connection ${connectionId}` });
      return;
    }
    const oldToken = connection.refreshToken;
    const grant = await fetch(tokenUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: oldToken }).toString(),
    });
    const body = (await grant.json()) as Record<string, unknown>;
    if (grant.status !== 200) {
      // Proxies the provider's RFC 6749 error body as is, description (and its token) included.
      send(res, grant.status, body);
      return;
    }
    revoked.add(oldToken);
    connection.refreshToken = String(body.refresh_token);
    const expiresAt = new Date(Date.now() + Number(body.expires_in) * 1000).toISOString();
    if (nonJson) {
      send(res, 200, `<html><body>refreshed ${String(body.access_token)}</body></html>`);
      return;
    }
    // A sloppy integration-manager that also echoes the new access token: it must go no further.
    send(res, 200, { success: true, expiresAt, accessToken: body.access_token });
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const match = /^\/connections\/([^/]+)\/refresh$/.exec(req.url ?? '');
      if (req.method !== 'POST' || match === null) return send(res, 404, { error: 'not_found' });
      const connectionId = decodeURIComponent(match[1] as string);
      hitCounts.set(connectionId, (hitCounts.get(connectionId) ?? 0) + 1);
      if (req.headers.authorization !== `Bearer ${serviceToken}`) return send(res, 401, { error: 'invalid_client' });
      const payload = (await readJson(req)) as { integrationId?: unknown; tenantId?: unknown } | undefined;
      const connection = connections.get(connectionId);
      if (connection !== undefined && (payload?.integrationId !== connection.integrationId || payload?.tenantId !== connection.tenantId)) {
        return send(res, 400, { error: 'invalid_request', error_description: 'integrationId/tenantId mismatch' });
      }
      const step = scripts.get(connectionId)?.shift();
      if (step !== undefined) {
        if ('hang' in step) return;
        if ('status' in step) {
          return send(res, step.status, step.body ?? { error: 'server_error' }, step.retryAfter ? { 'retry-after': step.retryAfter } : {});
        }
        if ('successFalse' in step) return send(res, 200, { success: false, error: step.successFalse });
        if ('delayMs' in step) await new Promise((r) => setTimeout(r, step.delayMs));
      }
      if (manager.latencyMs > 0) await new Promise((r) => setTimeout(r, manager.latencyMs));
      await refresh(connectionId, res, step !== undefined && 'nonJson' in step);
    })().catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  manager.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return manager;
}

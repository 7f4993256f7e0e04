/**
 * integration-sync demo host: the whole sync loop on loopback, for a short while, then a summary.
 *
 *   npm run demo                       # embedded in-memory bus, about 15 s
 *   npm run demo -- --duration 30000   # longer
 *   npm run demo -- --bus redis://127.0.0.1:6379   (or nats://127.0.0.1:4222, amqp://guest:guest@127.0.0.1:5672)
 *
 * Timer -> check-due -> sync planner -> sync.scheduled -> SyncTaskEventConsumer -> provider API;
 * timer -> check-expiring -> refresh planner -> refresh-requested -> TokenRefreshService ->
 * integration-manager -> OAuth 2 refresh_token grant -> token.refreshed / token.refresh.failed;
 * webhooks over HTTP -> webhook.received -> coalesced sync tasks.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  createEvent,
  createFetchHttpClient,
  createMemoryAuditStore,
  createRefreshPlanner,
  createSyncPlanner,
  EventTypes,
  NonRetryableError,
  SyncSchedulerService,
  SyncTaskEventConsumer,
  TokenRefreshService,
  type AuditRecord,
  type AuditSink,
  type SyncTask,
} from '../../src/index.js';
import { createDemoBus } from './bus.js';
import { startIntegrationManager, startOAuthServer, startProvider, startWebhookIngress, type DemoConnection } from './servers.js';

const usage = `usage: npm run demo -- [--duration MS] [--webhooks N] [--quiet] [--bus URL]

  --duration MS   how long the loop runs, at least 3000 (default 15000); the check intervals
                  scale with it: check-due every duration/5, check-expiring every duration/3
  --webhooks N    webhooks posted over HTTP for one integration, a third of the way in (default 40)
  --quiet         print only the summary, not the audit trail
  --bus URL       memory (default), redis://host:port, nats://host:port or amqp://user:pass@host:port`;

function readArgs(): { duration: string; bus: string; quiet: boolean; webhooks: string; help: boolean } {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string', default: process.env.DEMO_DURATION_MS ?? '15000' },
        bus: { type: 'string', default: process.env.DEMO_BUS ?? 'memory' },
        quiet: { type: 'boolean', default: false },
        webhooks: { type: 'string', default: '40' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values as { duration: string; bus: string; quiet: boolean; webhooks: string; help: boolean };
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}

const args = readArgs();
if (args.help) {
  console.log(usage);
  process.exit(0);
}
const durationMs = Number(args.duration);
if (!Number.isInteger(durationMs) || durationMs < 3000) {
  console.error(`--duration must be a whole number of milliseconds, at least 3000\n\n${usage}`);
  process.exit(2);
}
const webhookBurst = Math.max(1, Number(args.webhooks) || 40);
// Intervals scaled down from 60 s and 1 h so a short run sees several cycles.
const checkDueMs = Math.max(1000, Math.round(durationMs / 5));
const checkExpiringMs = Math.max(1500, Math.round(durationMs / 3));
const started = Date.now();
const stamp = (): string => `+${((Date.now() - started) / 1000).toFixed(2).padStart(6)}s`;

/** The integrations of two tenants, each with an OAuth connection. One connection's grant is revoked. */
const integrations = [
  { integrationId: 'int_crm', tenantId: 'tenant_a', connectionId: 'conn_crm_a', revoked: false },
  { integrationId: 'int_billing', tenantId: 'tenant_a', connectionId: 'conn_billing_a', revoked: false },
  { integrationId: 'int_tickets', tenantId: 'tenant_b', connectionId: 'conn_tickets_b', revoked: false },
  { integrationId: 'int_chat', tenantId: 'tenant_b', connectionId: 'conn_chat_b', revoked: true },
];

async function main(): Promise<number> {
  // The audit trail: kept in memory for the summary, printed as it happens.
  const auditStore = createMemoryAuditStore({ maxRecords: 50_000 });
  const audit: AuditSink = {
    record: (r) => {
      void auditStore.record(r);
      if (!args.quiet) console.log(formatAudit(r));
    },
  };
  // The bus first: a broker that cannot be reached fails the demo before anything else starts.
  const namespace = `run-${randomUUID().slice(0, 8)}`;
  const demoBus = await createDemoBus(args.bus, { audit, retryBaseMs: 250, maxAttempts: 4 }, namespace);

  const oauth = await startOAuthServer();
  const connections: DemoConnection[] = integrations.map((i) => {
    const refreshToken = `rt-${randomUUID()}`;
    if (!i.revoked) oauth.grant(refreshToken);
    // Every token expires soon, so the first expiry check picks them all up.
    return { connectionId: i.connectionId, integrationId: i.integrationId, tenantId: i.tenantId, refreshToken, expiresAt: Date.now() + 60_000 };
  });
  const manager = await startIntegrationManager(oauth, connections);
  const provider = await startProvider(oauth, { pages: 3, pageSize: 25, latencyMs: 60 });

  const { bus } = demoBus;
  const http = createFetchHttpClient({ timeoutMs: 3000, retries: 2 });

  const tokenService = new TokenRefreshService({
    bus,
    http,
    baseUrl: manager.url,
    headers: { authorization: `Bearer ${manager.serviceToken}` },
    intervalMs: checkExpiringMs,
    audit,
  });

  const syncService = {
    async execute(task: SyncTask, { signal }: { signal: AbortSignal }): Promise<Record<string, unknown>> {
      const integration = integrations.find((i) => i.integrationId === task.integrationId && i.tenantId === task.tenantId);
      if (!integration) throw new NonRetryableError(`unknown integration ${task.integrationId}`);
      const token = manager.accessToken(integration.connectionId);
      if (token === undefined) {
        // Without a usable grant there is nothing to retry: the connection needs re-consent.
        throw integration.revoked
          ? new NonRetryableError(`connection ${integration.connectionId} has no valid grant; re-consent needed`)
          : new Error(`connection ${integration.connectionId} has no access token yet`);
      }
      let page: number | null = 1;
      let records = 0;
      while (page !== null) {
        const response = await http.request({
          url: `${provider.url}/v1/${encodeURIComponent(task.integrationId)}/records?page=${page}`,
          headers: { authorization: `Bearer ${token}` },
          signal,
        });
        if (response.status !== 200) throw new Error(`provider answered ${response.status}`);
        const body = JSON.parse(response.text) as { records: unknown[]; nextPage: number | null };
        records += body.records.length;
        page = body.nextPage;
      }
      return { records };
    },
  };

  // The host's own reaction to refresh results: a permanent failure means the customer must
  // re-consent, so the host stops asking for refreshes of that connection.
  const needsReconsent = new Set<string>();
  const hostSubscription = await bus.subscribe({
    group: 'demo-host',
    types: [EventTypes.TokenRefreshed, EventTypes.TokenRefreshFailed],
    handler: async (event) => {
      const data = event.data as { connectionId: string; error?: string; retryable?: boolean };
      if (event.type === EventTypes.TokenRefreshFailed && data.retryable === false && !needsReconsent.has(data.connectionId)) {
        needsReconsent.add(data.connectionId);
        if (!args.quiet) console.log(`${stamp()}  [host] ${data.connectionId} needs re-consent (${data.error}); no more refresh requests for it`);
      }
    },
  });

  const consumer = new SyncTaskEventConsumer({ bus, syncService, tokenRefresh: tokenService, audit, concurrency: 8 });
  const syncPlanner = createSyncPlanner({
    bus,
    audit,
    findDue: () => integrations.filter((i) => i.integrationId !== 'int_tickets').map(({ integrationId, tenantId }) => ({ integrationId, tenantId })),
  });
  const refreshPlanner = createRefreshPlanner({
    bus,
    audit,
    pageSize: 2,
    findExpiring: async (threshold, { cursor, limit }) => {
      const due = connections
        .filter((c) => c.expiresAt < threshold.getTime() && !needsReconsent.has(c.connectionId))
        .sort((a, b) => a.connectionId.localeCompare(b.connectionId));
      const start = cursor === undefined ? 0 : due.findIndex((c) => c.connectionId > cursor);
      const items = start < 0 ? [] : due.slice(start, start + limit);
      const last = items.at(-1);
      return {
        items: items.map((c) => ({ connectionId: c.connectionId, integrationId: c.integrationId, tenantId: c.tenantId, expiresAt: new Date(c.expiresAt) })),
        ...(items.length === limit && last ? { nextCursor: last.connectionId } : {}),
      };
    },
  });
  const ingress = await startWebhookIngress(async (integrationId, tenantId, body) => {
    await bus.publish(
      createEvent(EventTypes.WebhookReceived, {
        integrationId,
        tenantId,
        ...(typeof body.entityType === 'string' ? { entityType: body.entityType } : {}),
      }),
    );
  });

  console.log(`integration-sync demo: bus ${demoBus.name}; check-due every ${checkDueMs} ms, check-expiring every ${checkExpiringMs} ms; running ${durationMs} ms`);
  console.log(`  OAuth 2 server ${oauth.tokenUrl}, integration-manager ${manager.url}, provider ${provider.url}, webhooks ${ingress.url}`);

  if (!args.quiet) {
    console.log('  conn_chat_b (int_chat, tenant_b) has a revoked grant: expect invalid_grant and its syncs dead-lettered');
    console.log(`\n  ${'time'.padStart(8)}  ${'record'.padEnd(19)} ${'event type / task'.padEnd(36)} ${'outcome'.padEnd(13)} integration connection tenant (reason)`);
  }
  const subscriptions = [
    hostSubscription,
    await syncPlanner.subscribe(bus, { group: 'sync-planner' }),
    await refreshPlanner.subscribe(bus, { group: 'refresh-planner' }),
  ];
  await consumer.start();
  tokenService.start();
  // Give the first refresh a head start so the first scheduled syncs find access tokens.
  const schedulerStart = setTimeout(() => scheduler.start(), 800);
  const scheduler = new SyncSchedulerService({ bus, intervalMs: checkDueMs });

  // A webhook storm for one integration, over HTTP, a third of the way in.
  const storm = setTimeout(() => {
    void Promise.all(
      Array.from({ length: webhookBurst }, (_, i) =>
        fetch(`${ingress.url}/webhooks/int_tickets/tenant_b`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ entityType: 'ticket', seq: i }),
        }).then((r) => r.body?.cancel()),
      ),
    ).catch((error: unknown) => console.error('webhook burst failed:', (error as Error).message));
  }, Math.round(durationMs / 3));

  await new Promise((resolve) => setTimeout(resolve, durationMs));

  clearTimeout(schedulerStart);
  clearTimeout(storm);
  await scheduler.stop();
  await tokenService.stop();
  // Let what is in flight finish, then stop consuming and close the bus.
  await consumer.stop({ timeoutMs: 5000 });
  for (const subscription of subscriptions) await subscription.close({ timeoutMs: 5000 });
  await demoBus.close();
  await Promise.all([ingress.stop(), provider.stop(), manager.stop(), oauth.stop()]);

  return summarize(await auditStore.query({ limit: 50_000 }), await consumer.store.list({ limit: 10_000 }), { pages: provider.stats.pages, oauthGrants: oauth.stats.grants, invalidGrants: oauth.stats.invalidGrants, webhooks: webhookBurst });
}

function formatAudit(r: AuditRecord): string {
  const who = [r.integrationId, r.connectionId, r.tenantId].filter(Boolean).join(' ');
  const what = r.kind === 'task.transition' ? `task …${(r.taskId ?? '').slice(-10)}` : (r.eventType ?? '');
  const why = r.reason && r.kind !== 'task.transition' ? ` (${r.reason.slice(0, 60)})` : r.outcome === 'failed' || r.outcome === 'skipped' ? ` (${(r.reason ?? '').slice(0, 60)})` : '';
  return `${stamp()}  ${r.kind.padEnd(19)} ${what.padEnd(36)} ${r.outcome.padEnd(13)} ${who}${why}`;
}

function count<T>(items: readonly T[], key: (item: T) => string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

function summarize(records: AuditRecord[], tasks: SyncTask[], stats: { pages: number; oauthGrants: number; invalidGrants: number; webhooks: number }): number {
  const published = count(records.filter((r) => r.kind === 'event.published'), (r) => r.eventType);
  const consumed = count(records.filter((r) => r.kind === 'event.consumed' && r.outcome === 'handled'), (r) => r.eventType);
  const byStatus = count(tasks, (t) => t.status);
  const refreshes = count(records.filter((r) => r.kind === 'token.refresh'), (r) => r.outcome);
  const deadLettered = records.filter((r) => r.kind === 'event.dead-lettered').length;
  const webhookTasks = tasks.filter((t) => t.trigger === 'webhook');
  const webhookRuns = webhookTasks.filter((t) => t.status === 'succeeded' || t.status === 'failed').length;

  console.log('\n=== summary ===');
  console.log('events by type (published, then handled by a subscriber; dead-lettered ones are not handled):');
  for (const type of Object.values(EventTypes)) console.log(`  ${type.padEnd(38)} ${String(published.get(type) ?? 0).padStart(5)}   handled ${consumed.get(type) ?? 0}`);
  console.log('tasks by status:');
  for (const status of ['pending', 'running', 'succeeded', 'failed', 'skipped']) console.log(`  ${status.padEnd(10)} ${byStatus.get(status) ?? 0}`);
  console.log(`webhooks: ${stats.webhooks} received over HTTP -> ${webhookTasks.length} tasks, ${webhookRuns} sync runs (the rest coalesced)`);
  console.log(`token refreshes: ok ${refreshes.get('succeeded') ?? refreshes.get('refreshed') ?? 0}, failed ${refreshes.get('failed') ?? 0}, skipped ${refreshes.get('skipped') ?? 0}`);
  console.log(`OAuth 2 server: ${stats.oauthGrants} refresh grants, ${stats.invalidGrants} invalid_grant; provider pages served: ${stats.pages}`);
  console.log(`dead-lettered events: ${deadLettered} (syncs of the revoked connection: NonRetryableError, so no retries)`);

  const missing = Object.values(EventTypes).filter((type) => (published.get(type) ?? 0) === 0);
  if (missing.length > 0) {
    console.log(`MISSING event types: ${missing.join(', ')}`);
    return 1;
  }
  console.log('all seven event types appeared');
  return 0;
}

main().then(
  (code) => {
    // No process.exit(): the process ends by itself once everything is closed, which is the point.
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error('demo failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);

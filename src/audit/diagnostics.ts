import diagnosticsChannel from 'node:diagnostics_channel';
import type { AuditRecord } from './types.js';

/**
 * Name of the `node:diagnostics_channel` channel on which every audit record is also published,
 * whatever sink is configured: a tracing or metrics layer can observe the library without a
 * dependency on it, and pays nothing while it does not subscribe.
 *
 * @example
 * import diagnosticsChannel from 'node:diagnostics_channel';
 * diagnosticsChannel.subscribe(AUDIT_CHANNEL, (record) => metrics.increment((record as AuditRecord).kind));
 */
export const AUDIT_CHANNEL = 'integration-sync:audit';

const channel = diagnosticsChannel.channel(AUDIT_CHANNEL);

/** True while anyone subscribes to {@link AUDIT_CHANNEL}. @internal */
export function auditDiagnosticsActive(): boolean {
  return channel.hasSubscribers;
}

/** Publishes `record` on {@link AUDIT_CHANNEL} when anyone listens. */
export function publishAuditDiagnostic(record: AuditRecord): void {
  if (channel.hasSubscribers) channel.publish(record);
}

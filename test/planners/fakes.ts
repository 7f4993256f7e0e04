import type { CloudEvent } from '../../src/events/envelope.js';
import type { EventBus, PublishOptions, SubscribeOptions, Subscription } from '../../src/bus/types.js';
import { IntegrationSyncError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';

/** A pure-logic EventBus fake: records publishes, fails those `failWhen` picks. */
export class RecordingBus implements EventBus {
  readonly published: CloudEvent[] = [];
  readonly subscriptions: SubscribeOptions[] = [];
  failWhen: (event: CloudEvent) => boolean = () => false;

  async publish(event: CloudEvent, options?: PublishOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await Promise.resolve();
    if (this.failWhen(event)) throw new IntegrationSyncError('ERR_PUBLISH_FAILED', 'broker said no');
    this.published.push(event);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.subscriptions.push(options);
    return { group: options.group, types: options.types, close: async () => {} };
  }

  async close(): Promise<void> {}
}

export interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg?: string) => {
    lines.push({ level, obj, msg });
  };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

export const fixedClock = (iso: string) => ({
  now: () => Date.parse(iso),
  setTimeout: () => 0,
  clearTimeout: () => {},
});

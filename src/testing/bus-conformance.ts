import type { EventBus } from '../bus/types.js';
import type { BusOptions } from '../bus/delivery.js';

/**
 * What an {@link EventBus} adapter supplies to run {@link testEventBus} against it. Keep it
 * small: the suite drives everything else through the `EventBus` interface itself.
 */
export interface BusConformanceHarness {
  /** Shown in the suite's `describe` title. */
  name: string;
  /** A new bus. Buses made with the same namespace share one broker namespace: two of them are two replicas. */
  createBus(namespace: string, options: BusOptions): Promise<EventBus>;
  /** Puts raw bytes on the broker for `type`, as a foreign producer would (non-JSON, oversized...). */
  publishRaw(namespace: string, type: string, payload: string | Uint8Array): Promise<void>;
  /** Simulates the process dying mid-handler: drop its connections at once, no acks, no graceful close. */
  crash(bus: EventBus): Promise<void>;
  /** How long redelivery to another member may take after a crash or a failure (ms). @default 15000 */
  redeliveryTimeoutMs?: number;
  /** Whether the broker keeps publish order for one group with concurrency 1. @default false */
  ordered?: boolean;
  /** Removes what the namespace made on the broker. */
  cleanup?(namespace: string): Promise<void>;
}

/**
 * Registers the shared `EventBus` conformance suite (vitest `describe`/`it` blocks) for one
 * adapter. Every built-in bus passes it; a host proves its own adapter the same way.
 *
 * @example
 * import { testEventBus } from 'integration-sync/testing';
 * testEventBus({ name: 'my-bus', createBus, publishRaw, crash });
 */
export function testEventBus(harness: BusConformanceHarness): void {
  void harness;
  throw new Error('testEventBus: not implemented yet');
}

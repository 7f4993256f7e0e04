/** The at-least-once checks every broker's kill scenario must pass. */
import { expect } from 'vitest';
import type { KillReport } from './harness.js';

export function expectAtLeastOnceAcrossKill(report: KillReport, concurrency: number): void {
  // The kill really happened mid-run: the victim had finished some and had some in flight.
  expect(report.victimDoneBeforeKill).toBeGreaterThanOrEqual(5);
  expect(report.inFlightAtKill.length).toBeGreaterThan(0);
  // None lost.
  expect(report.lost).toEqual([]);
  expect(report.handled).toBe(report.published);
  // Repeats involve the killed replica only: no survivor ran an id twice, no two survivors both ran one.
  expect(report.survivorRepeats).toEqual([]);
  // What ran twice is bounded by what the victim could hold at once.
  expect(report.startedTwice.length).toBeLessThanOrEqual(concurrency);
  expect(report.handledTwice.length).toBeLessThanOrEqual(concurrency);
  // Every id the victim had in flight was started again elsewhere (that is how it was not lost).
  for (const id of report.inFlightAtKill) expect(report.startedTwice).toContain(id);
  // Re-published, already-handled ids were skipped by whichever replica got them.
  expect(report.rerunAfterRepublish).toEqual([]);
  // Survivors closed on SIGTERM and exited 0 by themselves.
  expect(report.exits).toEqual(report.exits.map(() => ({ code: 0, signal: null })));
}

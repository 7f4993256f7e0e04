export * from './types.js';
export * from './memory-task-store.js';
export {
  OVERLAP_POLICIES,
  SyncOverlapRunner,
  type OverlapOutcome,
  type OverlapPolicy,
  type OverlapRunFn,
  type SyncOverlapRunnerOptions,
} from './overlap.js';

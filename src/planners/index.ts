export * from './sync-planner.js';
export * from './refresh-planner.js';
export type { PlanResult, PlannerContext, PlannerSubscribeOptions } from './planner-support.js';

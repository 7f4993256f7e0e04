export { SlotTimer, DEFAULT_SLOT_TIMER_STOP_TIMEOUT_MS } from './slot-timer.js';
export type { SlotTimerOptions, SlotTick } from './slot-timer.js';
export * from './sync-scheduler-service.js';

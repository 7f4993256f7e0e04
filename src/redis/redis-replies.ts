/**
 * Readers for the stream replies this adapter gets, kept defensive: a client may hand back
 * strings or Buffers, Redis 6.2 and 7 differ in `XAUTOCLAIM`, and a malformed reply must never
 * throw inside a loop.
 */

/** One stream entry; `fields` is `null` for an entry that was deleted (trimmed) while pending. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string> | null;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number') return String(value);
  return undefined;
}

function readFields(raw: unknown): Record<string, string> | null {
  if (!Array.isArray(raw)) return null;
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = text(raw[i]);
    const value = text(raw[i + 1]);
    if (key !== undefined && value !== undefined) fields[key] = value;
  }
  return fields;
}

/** Reads `[[id, [field, value, ...] | null], ...]`. */
export function readEntries(raw: unknown): StreamEntry[] {
  if (!Array.isArray(raw)) return [];
  const entries: StreamEntry[] = [];
  for (const item of raw) {
    if (!Array.isArray(item)) continue;
    const id = text(item[0]);
    if (id !== undefined) entries.push({ id, fields: readFields(item[1]) });
  }
  return entries;
}

/** Reads an `XREADGROUP` reply (`null` on timeout) into entries per stream key. */
export function readGroupReply(raw: unknown): Array<{ stream: string; entries: StreamEntry[] }> {
  if (!Array.isArray(raw)) return [];
  const result: Array<{ stream: string; entries: StreamEntry[] }> = [];
  for (const item of raw) {
    if (!Array.isArray(item)) continue;
    const stream = text(item[0]);
    if (stream !== undefined) result.push({ stream, entries: readEntries(item[1]) });
  }
  return result;
}

/** An `XAUTOCLAIM` reply: next cursor, claimed entries, and (Redis 7) ids deleted from the stream. */
export interface AutoClaimReply {
  cursor: string;
  entries: StreamEntry[];
  deletedIds: string[];
}

/** Reads `[cursor, entries, deletedIds?]`. */
export function readAutoClaimReply(raw: unknown): AutoClaimReply {
  if (!Array.isArray(raw)) return { cursor: '0-0', entries: [], deletedIds: [] };
  const deleted = Array.isArray(raw[2]) ? raw[2].map(text).filter((id): id is string => id !== undefined) : [];
  return { cursor: text(raw[0]) ?? '0-0', entries: readEntries(raw[1]), deletedIds: deleted };
}

/** Reads the delivery count of the first entry of an extended `XPENDING` reply. */
export function readDeliveryCount(raw: unknown): number | undefined {
  if (!Array.isArray(raw) || !Array.isArray(raw[0])) return undefined;
  const count = Number(text(raw[0][3]));
  return Number.isInteger(count) && count > 0 ? count : undefined;
}

/** Reads `XINFO CONSUMERS` (a list of flat `[key, value, ...]` arrays). */
export function readConsumers(raw: unknown): Array<{ name: string; pending: number; idle: number }> {
  if (!Array.isArray(raw)) return [];
  const consumers: Array<{ name: string; pending: number; idle: number }> = [];
  for (const item of raw) {
    const fields = readFields(item);
    if (fields === null || fields.name === undefined) continue;
    consumers.push({ name: fields.name, pending: Number(fields.pending ?? NaN), idle: Number(fields.idle ?? NaN) });
  }
  return consumers;
}

/** True for Redis's `NOGROUP` error (the stream or its group is gone). */
export function isNoGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

/** True for `BUSYGROUP` (the group exists already). */
export function isBusyGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('BUSYGROUP');
}

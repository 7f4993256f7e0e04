/** The stream reply readers: pure functions, so plain inputs (Redis 6.2 and 7 shapes, Buffers, junk). */
import { describe, expect, it } from 'vitest';
import {
  isBusyGroupError,
  isNoGroupError,
  readAutoClaimReply,
  readConsumers,
  readDeliveryCount,
  readGroupReply,
} from '../../src/redis/redis-replies.js';

describe('Redis reply readers', () => {
  it('reads XREADGROUP replies with string or Buffer values, and null on timeout', () => {
    expect(readGroupReply(null)).toEqual([]);
    const reply = [[Buffer.from('s1'), [['1-0', ['event', Buffer.from('{"a":1}')]], ['2-0', null]]]];
    expect(readGroupReply(reply)).toEqual([
      {
        stream: 's1',
        entries: [
          { id: '1-0', fields: { event: '{"a":1}' } },
          { id: '2-0', fields: null },
        ],
      },
    ]);
  });

  it('reads XAUTOCLAIM from Redis 7 (deleted ids) and 6.2 (nil entries), and survives junk', () => {
    expect(readAutoClaimReply(['0-0', [['3-0', ['event', 'x']]], ['1-0', '2-0']])).toEqual({
      cursor: '0-0',
      entries: [{ id: '3-0', fields: { event: 'x' } }],
      deletedIds: ['1-0', '2-0'],
    });
    expect(readAutoClaimReply(['5-0', [['4-0', null]]])).toEqual({ cursor: '5-0', entries: [{ id: '4-0', fields: null }], deletedIds: [] });
    expect(readAutoClaimReply('garbage')).toEqual({ cursor: '0-0', entries: [], deletedIds: [] });
    expect(readAutoClaimReply([42, 'nope', {}])).toEqual({ cursor: '42', entries: [], deletedIds: [] });
  });

  it('keeps field names such as __proto__ as plain data', () => {
    const [first] = readGroupReply([['s', [['1-0', ['__proto__', 'x', 'event', 'y']]]]]);
    const fields = first?.entries[0]?.fields as Record<string, string>;
    expect(fields.event).toBe('y');
    expect(Object.getPrototypeOf(fields)).toBeNull();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('reads delivery counts and consumers', () => {
    expect(readDeliveryCount([['1-0', 'c', 100, 4]])).toBe(4);
    expect(readDeliveryCount([])).toBeUndefined();
    expect(readDeliveryCount([['1-0', 'c', 100, 'x']])).toBeUndefined();
    expect(readConsumers([['name', 'a', 'pending', 2, 'idle', 10], ['pending', 1], 'junk'])).toEqual([{ name: 'a', pending: 2, idle: 10 }]);
  });

  it('recognises NOGROUP and BUSYGROUP errors', () => {
    expect(isNoGroupError(new Error('NOGROUP No such key'))).toBe(true);
    expect(isNoGroupError(new Error('ERR other'))).toBe(false);
    expect(isBusyGroupError(new Error('BUSYGROUP Consumer Group name already exists'))).toBe(true);
    expect(isBusyGroupError('BUSYGROUP')).toBe(false);
  });
});

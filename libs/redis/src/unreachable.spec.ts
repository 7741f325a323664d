import { isUnreachable } from './unreachable';

describe('isUnreachable', () => {
  it('treats script errors as bugs, and connection failures and a server not ready as outages', () => {
    expect(isUnreachable(Object.assign(new Error('ERR bad script'), { name: 'ReplyError' }))).toBe(false);
    expect(isUnreachable(Object.assign(new Error('LOADING Redis is loading'), { name: 'ReplyError' }))).toBe(true);
    expect(isUnreachable(new Error('Connection is closed.'))).toBe(true);
    expect(isUnreachable(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(true);
  });
});

import { ERROR_CLASSES, ERROR_CLASS_TABLE } from '@switchyard/util';
import { RECORD_SCRIPT } from './redis-health-lua';

/** The keys of the script's `local FAILURES = { A = true, ... }` set. */
function luaFailureClasses(script: string): string[] {
  const match = /^local FAILURES = \{([^}]*)\}$/m.exec(script);
  if (!match) throw new Error('RECORD_SCRIPT has no FAILURES set');
  return match[1]
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const pair = /^([A-Z_]+) = true$/.exec(entry);
      if (!pair) throw new Error(`unexpected FAILURES entry ${JSON.stringify(entry)}`);
      return pair[1];
    });
}

describe('breaker Lua: the copy of the error-class table', () => {
  it('counts as failures exactly the classes the table counts toward the breaker', () => {
    const lua = luaFailureClasses(RECORD_SCRIPT).sort();
    const table = ERROR_CLASSES.filter((c) => ERROR_CLASS_TABLE[c].countsTowardBreaker).sort();
    expect(lua).toEqual(table);
    expect(lua.length).toBeGreaterThan(0);
  });
});

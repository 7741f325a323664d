import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSecret } from './secrets';

describe('resolveSecret', () => {
  it('reads env: references from the given environment only', () => {
    expect(resolveSecret('env:KEY', { KEY: 'sk-1' })).toBe('sk-1');
    expect(() => resolveSecret('env:KEY', {})).toThrow('environment variable KEY is not set');
  });

  it('reads file: references and trims the trailing newline', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sy-secret-')), 'key');
    writeFileSync(path, 'sk-file\n');
    expect(resolveSecret(`file:${path}`, {})).toBe('sk-file');
  });
});

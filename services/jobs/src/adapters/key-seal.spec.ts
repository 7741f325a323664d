import { createKeySeal } from './key-seal';

const SECRET = 'x'.repeat(32);

describe('createKeySeal', () => {
  it('opens what it sealed for the same job, and the sealed bytes do not contain the key', () => {
    const seal = createKeySeal(SECRET);
    const sealed = seal.seal('sk-tenant-acme', 'acme/j1');
    expect(Buffer.from(sealed).toString('latin1')).not.toContain('sk-tenant-acme');
    expect(seal.open(sealed, 'acme/j1')).toBe('sk-tenant-acme');
  });

  it('refuses a sealed key moved to another job or opened with another secret', () => {
    const sealed = createKeySeal(SECRET).seal('sk-tenant-acme', 'acme/j1');
    expect(() => createKeySeal(SECRET).open(sealed, 'acme/j2')).toThrow();
    expect(() => createKeySeal('y'.repeat(32)).open(sealed, 'acme/j1')).toThrow();
  });
});

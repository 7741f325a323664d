/**
 * One jest config for the whole workspace: TypeScript is compiled by swc to
 * CommonJS (every dependency we use ships CJS), so no build step precedes tests.
 * Unit specs live beside the code, integration specs in <project>/test, and
 * cross-service end-to-end specs in test/.
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/services', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 30000,
  // Integration tests spawn servers; two cores are shared by every worker.
  maxWorkers: 2,
};

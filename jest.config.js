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
  // One suite at a time: the integration suites spawn whole stacks and assert
  // deadlines, jitter and load ratios; two of them side by side on a 2-core box
  // starved each other (one different timing failure in each of five CI runs).
  // Serial costs about two minutes of wall time (jest 295 s vs 168-181 s) and removes that.
  maxWorkers: 1,
};

import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

/**
 * Dependency arrows point one way: services -> infra libs -> util libs -> contracts.
 * Test-only helpers (type:testing) may be imported by tests, never by production code.
 */
const layers = [
  { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:infra', 'type:util', 'type:contracts'] },
  { sourceTag: 'type:infra', onlyDependOnLibsWithTags: ['type:infra', 'type:util', 'type:contracts'] },
  { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util', 'type:contracts'] },
  { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts'] },
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:testing', 'type:infra', 'type:util', 'type:contracts'] },
];
const withTesting = layers.map((c) =>
  c.sourceTag === 'type:contracts' ? c : { ...c, onlyDependOnLibsWithTags: [...c.onlyDependOnLibsWithTags, 'type:testing'] },
);

export default [
  { ignores: ['**/node_modules/**', 'libs/contracts/src/gen/**', '**/dist/**', '.nx/**'] },
  ...tseslint.configs.recommended,
  {
    // Plain CommonJS entry points that must run before dependencies are installed.
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': ['error', { allow: [], depConstraints: layers }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', '**/bench/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { allow: [], depConstraints: withTesting }],
    },
  },
];

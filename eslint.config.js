// Lint rules: typescript-eslint's recommended set, plus a ban on `any` in code we write.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // test/package/consumer/ is a stranger's project (plain JS, CommonJS, require): linted by nobody but its own tsc.
  { ignores: ['dist/**', 'node_modules/**', 'apps/**/vendor/**', 'docs/api/**', 'test/package/consumer/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
);

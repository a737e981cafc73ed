import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((name) => [name, `node:${name}`]);

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', '.tools/**', '.temporal/**', 'test-artifacts/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflow code is replayed by Temporal and must be deterministic: it may only reach the
    // workflow SDK and the sandbox-safe shared folder.
    files: ['src/workflows/**/*.ts'],
    rules: {
      // Type-only imports vanish at compile time, so the activities' types may reach workflows.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Workflow code runs in a deterministic sandbox.',
          })),
          patterns: [
            {
              group: [
                '@temporalio/activity',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/testing',
              ],
              message: 'Workflow code may import only @temporalio/workflow and src/shared.',
            },
            {
              allowTypeImports: true,
              group: [
                '../activities/**',
                '../client/**',
                '../worker/**',
                '../cli/**',
                '../testing/**',
                '../activities',
                '../client',
                '../worker',
                '../cli',
                '../testing',
                '../store/**',
                '../store',
                '../tokenizer/**',
                '../tokenizer',
                '../pricing/**',
                '../pricing',
                'openai',
                'commander',
                'cli-progress',
              ],
              message: 'Workflow code may import only @temporalio/workflow and src/shared.',
            },
          ],
        },
      ],
    },
  },
  {
    // Layers point one way: shared <- store <- activities and client <- worker and cli.
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '../activities',
                '../activities/**',
                '../client',
                '../client/**',
                '../worker',
                '../worker/**',
                '../cli',
                '../cli/**',
                '../testing',
                '../testing/**',
              ],
              message:
                'The store sits below the activities and the client: it may import only shared (and the codec).',
            },
          ],
        },
      ],
    },
  },
  {
    // The price table loader sits beside the store, below the client, the activities and the
    // worker, which all take their table from it: it may read files, but import only shared code.
    files: ['src/pricing/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!(?:\\.\\./shared(?:/.*)?|\\./.*|${nodeBuiltins
                .map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
                .join('|')})$)`,
              message: 'src/pricing may import only src/shared and Node built-ins.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/activities/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../client', '../client/**', '../worker', '../worker/**', '../cli', '../cli/**'],
              message:
                'Activities never import client, worker or CLI code; shared code belongs in src/store or src/shared.',
            },
          ],
        },
      ],
    },
  },
);

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    reporters: ['default', './test/plain-summary.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

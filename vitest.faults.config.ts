import { defineConfig } from 'vitest/config'

/**
 * The fault suite at full size (`npm run test:faults`, which sets FAULTS=full): only
 * test/faults, one file at a time so the figures are not skewed by each other, with long
 * timeouts. `npm test` runs the same files at a bounded size through vitest.config.ts.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    env: { FORCE_COLOR: '0', NO_COLOR: '1' },
    testTimeout: 60 * 60_000,
    hookTimeout: 10 * 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
})

import { defineConfig } from 'vitest/config';

/**
 * The long fault loops (`npm run test:faults`, run by .ci/run after `npm test`): real processes
 * killed, paused and raced, many times over, with what survived counted.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    maxWorkers: 1,
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});

import { defineConfig } from 'vitest/config';

/**
 * Unit files that must run alone: they start sipp on the fixed bot ports the e2e files use too, or time SIP
 * retransmissions to a few milliseconds, which a second busy worker on a 2-core machine would push around.
 */
const ALONE = [
  'test/unit/plugin/sip/sipp.test.ts',
  'test/unit/support/sipp.test.ts',
  'test/unit/support/sipp-scenarios.test.ts',
  'test/unit/plugin/sip/embedded-backend.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/contract/**/*.test.ts'],
          exclude: ALONE,
          // first, four files at a time (on two cores too: they mostly wait on timers and sockets, 18 s of CPU in
          // 45 s run one at a time); nothing here binds a port another file binds
          maxWorkers: 4,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', ...ALONE],
          // e2e files start real sipp processes on fixed loopback ports, and time real calls: one file at a time,
          // once the unit files are done
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});

import { defineConfig } from 'vitest/config';

/**
 * Unit files that run with the e2e files: they start sipp (on ports of their own, test/support/ports.ts), or time
 * SIP retransmissions to a few milliseconds, which four busy unit workers on a 2-core machine would push around.
 */
const WITH_E2E = [
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
          exclude: WITH_E2E,
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
          include: ['test/e2e/**/*.test.ts', ...WITH_E2E],
          // Real calls, once the unit files are done, two files at a time: they use a tenth of the machine (39 s of CPU
          // in 178 s one by one), and each has its own sipp ports and RTP range (test/support/ports.ts)
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});

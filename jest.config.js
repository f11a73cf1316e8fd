// ts-jest's ESM preset: client-node and got are ESM-only, so tests run as ES modules
// (NODE_OPTIONS=--experimental-vm-modules, set by the npm scripts). Sources import './x.ts', which
// Node 24 runs as it is (type stripping) and tsc rewrites to './x.js' in dist/.
import { createDefaultEsmPreset } from 'ts-jest';

const shared = {
  ...createDefaultEsmPreset({ tsconfig: 'tsconfig.json' }),
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  // Integration tests wait on a real apiserver and real HTTP; only a hang should hit this.
  testTimeout: 60_000,
  // Integration tests mostly wait (for refresh cycles, leases, the apiserver): more workers than
  // the 2 cores keeps the run short without starving the operators under test.
  maxWorkers: 3,
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};

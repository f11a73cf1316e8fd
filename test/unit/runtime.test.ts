import { describe, expect, it } from '@jest/globals';

describe('test runtime', () => {
  it('is the Node.js 24 LTS that package.json pins, not the machine default', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });

  it('loads the ESM-only dependencies as ES modules', async () => {
    const { default: got } = await import('got');
    expect(typeof got.post).toBe('function');
  });
});

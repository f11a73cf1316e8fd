import { describe, expect, it } from '@jest/globals';

describe('test runtime', () => {
  it('is the Node.js 24 LTS that package.json pins, not the machine default', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });

  it('loads the ESM-only dependencies as ES modules', async () => {
    const [{ KubeConfig }, { default: got }] = await Promise.all([
      import('@kubernetes/client-node'),
      import('got'),
    ]);
    expect(typeof KubeConfig).toBe('function');
    expect(typeof got.post).toBe('function');
  });
});

import { runningControlPlane } from './environment.ts';

export default async function globalTeardown(): Promise<void> {
  await runningControlPlane()?.stop();
}

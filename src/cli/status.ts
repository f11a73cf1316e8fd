// kubectl oauthapp status NAME: the app's state in one screen, and which replica leads.
import type { CommandContext } from './context.ts';
import { formatStatus, leaderOf, type Leader } from './format.ts';

export async function statusCommand(context: CommandContext, name: string, operatorNamespace: string): Promise<number> {
  const { cluster, io, clock } = context;
  const app = await cluster.getApp(name);
  let leader: Leader;
  try {
    leader = leaderOf(await cluster.getLease(operatorNamespace), clock.now());
  } catch (error) {
    // Who leads is a hint, not the point: a user who may not read Leases still gets the status.
    leader = { kind: 'unknown', why: error instanceof Error ? error.message : String(error) };
  }
  io.out(formatStatus({ app, leader, leaseLocation: `${operatorNamespace}/oauthapp-operator`, now: clock.now() }));
  return 0;
}

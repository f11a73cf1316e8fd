// Events as a person reads them: each Event object may stand for several occurrences (the
// operator aggregates repeats of a held-back Event into one events.k8s.io/v1 series).
import { kubectlOK } from './kubectl.ts';

export interface EventView {
  regarding: { name: string };
  type: string;
  reason: string;
  note: string;
  eventTime: string;
  series?: { count: number; lastObservedTime: string };
}

/** The Events about the object `name` in `namespace`. */
export async function eventsAbout(namespace: string, name: string): Promise<EventView[]> {
  const list = JSON.parse(await kubectlOK(['get', 'events.events.k8s.io', '-n', namespace, '-o', 'json'])) as { items: EventView[] };
  return list.items.filter((event) => event.regarding.name === name);
}

/** How often `reason` happened to the object: a series counts its occurrences, a plain Event one. */
export async function occurrences(namespace: string, name: string, reason: string): Promise<number> {
  return (await eventsAbout(namespace, name)).filter((event) => event.reason === reason).reduce((sum, event) => sum + (event.series?.count ?? 1), 0);
}

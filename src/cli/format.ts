// What `kubectl oauthapp status` prints, as pure functions of the app, the Lease and the clock.
import type { Condition, OAuthAppStatus } from '../api/oauthapp.ts';
import type { AppView, LeaseView } from './cluster.ts';

/** "45s", "59m", "1h5m", "3d2h": the two largest units, as kubectl's ages read. */
export function shortDuration(ms: number): string {
  const seconds = Math.floor(Math.abs(ms) / 1000);
  const units = [86_400, 3_600, 60, 1];
  const names = ['d', 'h', 'm', 's'];
  const first = units.findIndex((size) => seconds >= size);
  if (first === -1) return '0s';
  const size = units[first] ?? 1;
  const text = `${Math.floor(seconds / size)}${names[first]}`;
  const next = units[first + 1];
  if (next === undefined) return text;
  const rest = Math.floor((seconds % size) / next);
  return rest > 0 ? `${text}${rest}${names[first + 1]}` : text;
}

/** A timestamp with how far it is from now: `2026-12-01T17:51:07Z (in 59m)`, `… (3m ago)`. */
export function timeWithDistance(iso: string | undefined, now: number): string {
  if (iso === undefined) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const distance = at - now;
  return `${iso} (${distance >= 0 ? `in ${shortDuration(distance)}` : `${shortDuration(distance)} ago`})`;
}

export type Leader =
  | { readonly kind: 'held'; readonly holder: string; readonly expiredForMs?: number }
  | { readonly kind: 'none' }
  | { readonly kind: 'unknown'; readonly why: string };

/** Who holds the Lease now; a holder whose renewTime + leaseDurationSeconds has passed is shown as expired. */
export function leaderOf(lease: LeaseView, now: number): Leader {
  const holder = lease.spec?.holderIdentity ?? '';
  if (holder === '') return { kind: 'none' };
  const renewed = Date.parse(lease.spec?.renewTime ?? '');
  const duration = lease.spec?.leaseDurationSeconds;
  if (Number.isNaN(renewed) || typeof duration !== 'number') return { kind: 'held', holder };
  const expiredForMs = now - (renewed + duration * 1000);
  return expiredForMs > 0 ? { kind: 'held', holder, expiredForMs } : { kind: 'held', holder };
}

export function formatLeader(leader: Leader): string {
  switch (leader.kind) {
    case 'held':
      return leader.expiredForMs === undefined ? leader.holder : `${leader.holder} (its Lease expired ${shortDuration(leader.expiredForMs)} ago: no replica is renewing it)`;
    case 'none':
      return 'none (no replica holds the Lease)';
    case 'unknown':
      return `unknown (${leader.why})`;
  }
}

/** Rows under a header, each column as wide as its widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

export const conditionOf = (status: OAuthAppStatus | undefined, type: string): Condition | undefined => status?.conditions?.find((condition) => condition.type === type);

/** Messages are one line by contract; a stray line break would still break the table. */
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ');

export function formatFailure(failure: OAuthAppStatus['lastFailure'], now: number): string {
  if (failure === undefined) return 'none';
  return `${failure.reason} at ${timeWithDistance(failure.time, now)}, ${failure.attempts} attempt${failure.attempts === 1 ? '' : 's'} in a row`;
}

export interface StatusReport {
  readonly app: AppView;
  readonly leader: Leader;
  readonly leaseLocation: string;
  readonly now: number;
}

export function formatStatus({ app, leader, leaseLocation, now }: StatusReport): string {
  const { status } = app;
  const { name, namespace } = app.metadata;
  const ready = conditionOf(status, 'Ready');
  const authorized = conditionOf(status, 'Authorized');
  const fields: Array<[string, string]> = [
    ['Name', name],
    ['Namespace', namespace],
    ['Ready', ready ? `${ready.status} (${ready.reason})` : 'unknown (no status yet: is the operator running and watching this namespace?)'],
    ['Target Secret', status?.targetSecretName ?? '-'],
    ['Token expires', timeWithDistance(status?.accessTokenExpiresAt, now)],
    ['Last refresh', timeWithDistance(status?.lastRefreshTime, now)],
    ['Next refresh', status?.nextRefreshTime !== undefined ? timeWithDistance(status.nextRefreshTime, now) : ready?.status === 'False' ? 'none scheduled (a person must act: see the conditions)' : '-'],
    ['Last failure', formatFailure(status?.lastFailure, now)],
    ['Rotate request', status?.lastRotateRequest ?? '-'],
    ['Leader', `${formatLeader(leader)}  [Lease ${leaseLocation}]`],
  ];
  if (authorized?.status === 'False' && status?.authorizationURL !== undefined) {
    fields.push(['Authorization', `needed: run kubectl oauthapp authorize ${name} -n ${namespace}`]);
  }
  const width = Math.max(...fields.map(([label]) => label.length)) + 2;
  const lines = fields.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`);
  const conditions = status?.conditions ?? [];
  if (conditions.length === 0) lines.push('Conditions:    none yet');
  else {
    lines.push('Conditions:');
    lines.push(...table(['TYPE', 'STATUS', 'REASON', 'MESSAGE'], conditions.map((condition) => [condition.type, condition.status, condition.reason, oneLine(condition.message)])).map((line) => `  ${line}`));
  }
  return `${lines.join('\n')}\n`;
}

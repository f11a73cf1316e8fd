import { describe, expect, it } from '@jest/globals';
import type { OAuthAppStatus } from '../../../src/api/oauthapp.ts';
import type { KubeObject } from '../../../src/kube/objects.ts';
import { StatusWriter } from '../../../src/oauthapp/status-writer.ts';
import type { DerivedStatus } from '../../../src/oauthapp/status.ts';

const now = Date.parse('2026-11-27T08:00:00Z');

function setUp() {
  const patches: Array<Record<string, unknown>> = [];
  const events: string[] = [];
  const writer = new StatusWriter(
    { patchStatus: async (_kind, _namespace, _name, status) => (patches.push(status), { metadata: { name: 'crm-sync' } }) },
    { observeWrite: () => undefined },
    { record: async (_object, note) => void events.push(`${note.type}:${note.reason}`) },
  );
  return { writer, patches, events };
}

const app = (status?: OAuthAppStatus): KubeObject & { status?: OAuthAppStatus } => ({
  metadata: { name: 'crm-sync', namespace: 'sales', generation: 3 },
  ...(status ? { status } : {}),
});

const derived = (ready: 'True' | 'False', reason: string, fields: DerivedStatus['fields'] = {}): DerivedStatus => ({
  conditions: [
    { type: 'Ready', status: ready, reason, message: 'm' },
    { type: 'Authorized', status: 'True', reason: 'RefreshTokenPresent', message: 'm' },
    { type: 'ClientSecretValid', status: 'Unknown', reason: 'NotVerified', message: 'm' },
  ],
  fields,
});

describe('StatusWriter', () => {
  it('records no Event for a new app that is merely pending', async () => {
    const { writer, events, patches } = setUp();

    await writer.write(app(), derived('False', 'Pending'), now);

    expect(patches).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it('records a Warning at once when a new app starts with a problem', async () => {
    const { writer, events } = setUp();

    await writer.write(app(), derived('False', 'SecretNotFound'), now);

    expect(events).toEqual(['Warning:SecretNotFound']);
  });

  it('records an Event per condition that changes status or reason, and moves only its transition time', async () => {
    const { writer, events, patches } = setUp();
    await writer.write(app(), derived('False', 'Pending'), now);
    const first = patches[0] as OAuthAppStatus;

    await writer.write(app(first), derived('True', 'TokenValid', { accessTokenExpiresAt: '2026-11-27T09:00:00Z' }), now + 60_000);

    expect(events).toEqual(['Normal:TokenValid']);
    const second = patches[1] as OAuthAppStatus;
    const transition = (status: OAuthAppStatus, type: string) => status.conditions?.find((condition) => condition.type === type)?.lastTransitionTime;
    expect(transition(second, 'Ready')).not.toBe(transition(first, 'Ready'));
    expect(transition(second, 'Authorized')).toBe(transition(first, 'Authorized'));
    expect(second.observedGeneration).toBe(3);
  });

  it('writes nothing when the status is already what it should be', async () => {
    const { writer, patches } = setUp();
    await writer.write(app(), derived('True', 'TokenValid'), now);

    await writer.write(app(patches[0] as OAuthAppStatus), derived('True', 'TokenValid'), now + 60_000);

    expect(patches).toHaveLength(1);
  });

  it('clears a field the derived status no longer has', async () => {
    const { writer, patches } = setUp();
    await writer.write(app(), derived('False', 'AuthorizationRequired', { authorizationURL: 'https://oauth.example.com/authorize?state=x' }), now);

    await writer.write(app(patches[0] as OAuthAppStatus), derived('True', 'TokenValid'), now);

    expect(patches[1]).toMatchObject({ authorizationURL: null });
  });
});

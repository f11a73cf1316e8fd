import { describe, expect, it } from '@jest/globals';
import { isTerminalError, terminal, TerminalError } from '../../../src/controller/errors.ts';

describe('TerminalError', () => {
  it('carries the stable code TERMINAL and its cause', () => {
    const cause = new Error('unknown provider');
    const error = new TerminalError('spec is invalid', { cause });

    expect([error.code, error.name, error.message, error.cause]).toEqual(['TERMINAL', 'TerminalError', 'spec is invalid', cause]);
  });

  it('terminal() wraps an error keeping its message as the cause', () => {
    const cause = new Error('unknown provider');

    const error = terminal(cause);

    expect([error.message, error.cause]).toEqual(['unknown provider', cause]);
  });

  it('is recognised anywhere in a cause chain', () => {
    const wrapped = new Error('reconcile sales/crm-sync', { cause: new Error('building Secret', { cause: new TerminalError('invalid') }) });

    expect(isTerminalError(wrapped)).toBe(true);
  });

  it('is not recognised in ordinary errors or non-errors', () => {
    expect(isTerminalError(new Error('timeout', { cause: new Error('socket') }))).toBe(false);
    expect(isTerminalError('TERMINAL')).toBe(false);
    expect(isTerminalError({ code: 'TERMINAL' })).toBe(false);
  });
});

import { describe, expect, it } from '@jest/globals';
import { deliveryOf } from '../../../src/oauth/delivery.ts';

// got's timings once the connection is up, and before.
const connected = { connect: 1, secureConnect: 2 };
const tcpOnly = { connect: 1, secureConnect: undefined };
const nothing = { connect: undefined, secureConnect: undefined };

describe('deliveryOf', () => {
  it('is answered once response headers arrived, whatever failed after', () => {
    expect(deliveryOf({ answered: true, secure: true, code: 'ECONNRESET', timings: connected })).toBe('answered');
  });

  it.each(['lookup', 'connect', 'secureConnect'])('is not_sent for a timeout in the %s phase', (event) => {
    expect(deliveryOf({ answered: false, secure: true, code: 'ETIMEDOUT', event, timings: tcpOnly })).toBe('not_sent');
  });

  it.each(['send', 'response', 'request'])('is unknown for a timeout in the %s phase on an open connection', (event) => {
    expect(deliveryOf({ answered: false, secure: false, code: 'ETIMEDOUT', event, timings: connected })).toBe('unknown');
  });

  it('is not_sent for a whole-request timeout that struck before the connection was up', () => {
    expect(deliveryOf({ answered: false, secure: false, code: 'ETIMEDOUT', event: 'request', timings: nothing })).toBe('not_sent');
  });

  it('is not_sent when an https connection failed during the TLS handshake', () => {
    expect(deliveryOf({ answered: false, secure: true, code: 'ERR_TLS_CERT_ALTNAME_INVALID', timings: tcpOnly })).toBe('not_sent');
  });

  it('is unknown for a reset after an https connection was up', () => {
    expect(deliveryOf({ answered: false, secure: true, code: 'ECONNRESET', timings: connected })).toBe('unknown');
  });

  it.each(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED'])('is not_sent for %s without timings', (code) => {
    expect(deliveryOf({ answered: false, secure: true, code })).toBe('not_sent');
  });

  it('is unknown for an unrecognised failure without timings', () => {
    expect(deliveryOf({ answered: false, secure: true, code: 'EPIPE' })).toBe('unknown');
  });
});

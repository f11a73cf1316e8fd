import { describe, expect, it } from '@jest/globals';
import type { LookupAddress } from 'node:dns';
import { AddressNotAllowedError, createAddressPolicy, guardedLookup, literalAddress, parseCIDR, type LookupFunction } from '../../../src/oauth/address-policy.ts';

const strict = createAddressPolicy();

describe('the provider address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['0.0.0.0', 'loopback'],
    ['::1', 'loopback'],
    ['::', 'loopback'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['168.63.129.16', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['224.0.0.1', 'reserved'],
    ['ff02::1', 'reserved'],
  ])('refuses %s by default (%s)', (address, category) => {
    expect(strict.check(address)).toEqual({ allowed: false, category });
  });

  it.each(['93.184.215.14', '172.32.0.1', '8.8.8.8', '2606:4700::1111'])('allows the public address %s', (address) => {
    expect(strict.check(address)).toEqual({ allowed: true });
  });

  it('judges an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(strict.check('::ffff:127.0.0.1')).toEqual({ allowed: false, category: 'loopback' });
    expect(strict.check('::ffff:a9fe:a9fe')).toEqual({ allowed: false, category: 'metadata' });
    expect(strict.check('::ffff:10.0.0.1')).toEqual({ allowed: false, category: 'private' });
  });

  it('judges a NAT64 address as the IPv4 address it stands for', () => {
    expect(strict.check('64:ff9b::a9fe:a9fe')).toEqual({ allowed: false, category: 'metadata' });
    expect(strict.check('64:ff9b::7f00:1')).toEqual({ allowed: false, category: 'loopback' });
    expect(strict.check('64:ff9b::5db8:d70e')).toEqual({ allowed: true });
  });

  it('opens loopback only with allowLoopback', () => {
    expect(createAddressPolicy({ allowLoopback: true }).check('127.0.0.1')).toEqual({ allowed: true });
    expect(createAddressPolicy({ allowLoopback: true }).check('::1')).toEqual({ allowed: true });
    expect(createAddressPolicy({ allowNetworks: ['127.0.0.0/8', '::1/128'] }).check('127.0.0.1')).toMatchObject({ allowed: false });
    expect(createAddressPolicy({ allowLoopback: true }).check('10.0.0.1')).toMatchObject({ allowed: false });
  });

  it('opens the private and link-local ranges allowNetworks covers, and only those', () => {
    const policy = createAddressPolicy({ allowNetworks: ['10.20.0.0/16', 'fd00::/8', '169.254.10.0/24'] });
    expect(policy.check('10.20.30.40')).toEqual({ allowed: true });
    expect(policy.check('fd00::2')).toEqual({ allowed: true });
    expect(policy.check('169.254.10.7')).toEqual({ allowed: true });
    expect(policy.check('10.21.0.1')).toEqual({ allowed: false, category: 'private' });
    expect(policy.check('192.168.0.1')).toEqual({ allowed: false, category: 'private' });
  });

  it('never opens a cloud metadata address, not even inside an opened network', () => {
    const policy = createAddressPolicy({ allowNetworks: ['169.254.0.0/16', 'fd00::/8', '100.64.0.0/10'], allowLoopback: true });
    expect(policy.check('169.254.169.254')).toEqual({ allowed: false, category: 'metadata' });
    expect(policy.check('fd00:ec2::254')).toEqual({ allowed: false, category: 'metadata' });
    expect(policy.check('100.100.100.200')).toEqual({ allowed: false, category: 'metadata' });
  });

  it('reads CIDRs and single addresses, and refuses anything else', () => {
    expect(parseCIDR('10.0.0.0/8')).toEqual(['10.0.0.0', 8, 'ipv4']);
    expect(parseCIDR('fd00::/8')).toEqual(['fd00::', 8, 'ipv6']);
    expect(parseCIDR('10.1.2.3')).toEqual(['10.1.2.3', 32, 'ipv4']);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.0/x', '']) expect(() => parseCIDR(bad)).toThrow(RangeError);
  });

  it('names the address a URL gives literally, and none for a host name', () => {
    expect(literalAddress('https://127.0.0.1:8443/t')).toBe('127.0.0.1');
    expect(literalAddress('https://[::1]/t')).toBe('::1');
    expect(literalAddress('http://0x7f.1/t')).toBe('127.0.0.1');
    expect(literalAddress('https://localhost/t')).toBeUndefined();
  });
});

const resolvingTo = (...addresses: string[]): LookupFunction => (_hostname, _options, callback) =>
  callback(null, addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));

const lookup = (fn: LookupFunction, all: boolean) =>
  new Promise<{ error: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }>((resolve) =>
    fn('provider.example', { all }, (error, address, family) => resolve({ error, address, ...(family === undefined ? {} : { family }) })),
  );

describe('the guarded lookup', () => {
  it('fails with AddressNotAllowedError when the name resolves to refused addresses only', async () => {
    for (const address of ['127.0.0.1', '169.254.169.254', '10.1.2.3']) {
      const { error } = await lookup(guardedLookup(strict, resolvingTo(address)), false);
      expect(error).toBeInstanceOf(AddressNotAllowedError);
      expect(error).toMatchObject({ code: 'ERR_PROVIDER_ADDRESS_NOT_ALLOWED', hostname: 'provider.example' });
    }
  });

  it('drops the refused addresses and returns the allowed ones', async () => {
    const fn = guardedLookup(strict, resolvingTo('10.0.0.1', '93.184.215.14', '::1', '2606:4700::1111'));
    expect(await lookup(fn, true)).toEqual({ error: null, address: [{ address: '93.184.215.14', family: 4 }, { address: '2606:4700::1111', family: 6 }] });
    expect(await lookup(fn, false)).toEqual({ error: null, address: '93.184.215.14', family: 4 });
  });

  it('passes resolver errors through', async () => {
    const failing: LookupFunction = (_hostname, _options, callback) => callback(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), '');
    expect((await lookup(guardedLookup(strict, failing), false)).error?.code).toBe('ENOTFOUND');
  });

  it('asks again on every connection: an answer that changes to a refused address is refused (DNS rebinding)', async () => {
    const answers = ['93.184.215.14', '127.0.0.1'];
    const rebinding: LookupFunction = (hostname, options, callback) => resolvingTo(answers.shift() ?? '127.0.0.1')(hostname, options, callback);
    const fn = guardedLookup(strict, rebinding);
    expect((await lookup(fn, false)).address).toBe('93.184.215.14');
    expect((await lookup(fn, false)).error).toBeInstanceOf(AddressNotAllowedError);
  });
});

// Which IP addresses a token request may connect to. Checked on the address the connection is
// actually made to (a `lookup` hook on the token client's agents, and literal-IP URLs before the
// request), so a name that resolves to an internal address — at first, or only on a later lookup
// (DNS rebinding) — never gets the request.
import dns, { type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

export type AddressCategory = 'loopback' | 'link-local' | 'metadata' | 'private' | 'reserved';

export type AddressVerdict = { readonly allowed: true } | { readonly allowed: false; readonly category: AddressCategory };

export interface AddressPolicyOptions {
  /** CIDRs opened although private or link-local (an in-cluster identity provider). */
  readonly allowNetworks?: readonly string[] | undefined;
  /** Loopback addresses (127.0.0.0/8, ::1): development and tests only. */
  readonly allowLoopback?: boolean | undefined;
}

export interface AddressPolicy {
  check(address: string): AddressVerdict;
  /** Whether loopback addresses are allowed (then a loopback `http://` api_domain is too). */
  readonly allowsLoopback: boolean;
}

type Family = 'ipv4' | 'ipv6';
type Subnet = readonly [address: string, prefix: number];

const v4 = (entries: Subnet[]): Array<[string, number, Family]> => entries.map(([address, prefix]) => [address, prefix, 'ipv4']);
const v6 = (entries: Subnet[]): Array<[string, number, Family]> => entries.map(([address, prefix]) => [address, prefix, 'ipv6']);

/** Checked in this order; the first match decides the category. */
const categories: ReadonlyArray<readonly [AddressCategory, Array<[string, number, Family]>]> = [
  [
    'metadata',
    [
      // AWS, GCP, Azure IMDS, OpenStack, Oracle; AWS ECS task and EKS pod identity agents.
      ...v4([['169.254.169.254', 32], ['169.254.170.2', 32], ['169.254.170.23', 32]]),
      // Alibaba Cloud; Azure WireServer.
      ...v4([['100.100.100.200', 32], ['168.63.129.16', 32]]),
      // AWS IMDS and EKS pod identity over IPv6.
      ...v6([['fd00:ec2::254', 128], ['fd00:ec2::23', 128]]),
    ],
  ],
  ['loopback', [...v4([['127.0.0.0', 8], ['0.0.0.0', 8]]), ...v6([['::1', 128], ['::', 128]])]],
  ['reserved', [...v4([['224.0.0.0', 4], ['240.0.0.0', 4]]), ...v6([['ff00::', 8]])]],
  ['link-local', [...v4([['169.254.0.0', 16]]), ...v6([['fe80::', 10]])]],
  [
    'private',
    [
      ...v4([['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10]]),
      ...v6([['fc00::', 7]]),
    ],
  ],
];

const blockListOf = (subnets: Array<[string, number, Family]>): BlockList => {
  const list = new BlockList();
  for (const [address, prefix, family] of subnets) list.addSubnet(address, prefix, family);
  return list;
};

const categoryLists = categories.map(([category, subnets]) => [category, blockListOf(subnets)] as const);

/** `10.0.0.0/8`, `fd00::/8`, or a single address. @throws RangeError when it is not one. */
export const parseCIDR = (text: string): [string, number, Family] => {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) throw new RangeError(`${text} is not an IP network`);
  const max = version === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) throw new RangeError(`${text} has an invalid prefix length`);
  return [address, Number(prefixText), version === 4 ? 'ipv4' : 'ipv6'];
};

const familyOf = (address: string): Family | undefined => {
  const version = isIP(address);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
};

/** An IPv6 address without its zone (`fe80::1%eth0`). */
const withoutZone = (address: string): string => address.replace(/%.*$/, '');

/** The IPv4 address a NAT64 (64:ff9b::/96) address stands for. */
const nat64 = blockListOf(v6([['64:ff9b::', 96]]));
const embeddedIPv4 = (address: string): string | undefined => {
  if (!nat64.check(address, 'ipv6')) return undefined;
  const groups = address.split(':');
  const last = groups.at(-1) ?? '';
  if (isIP(last) === 4) return last;
  const [high = '0', low = '0'] = groups.slice(-2).map((group) => group || '0');
  const value = (Number.parseInt(high, 16) << 16) | Number.parseInt(low, 16);
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
};

/**
 * Refused unless allowed: loopback (only with allowLoopback), link-local and private ranges (10/8,
 * 172.16/12, 192.168/16, 100.64/10, fc00::/7; opened by allowNetworks). Never allowed: cloud
 * metadata addresses (not even inside an opened network) and multicast/reserved ranges.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address (net.BlockList does that).
 */
export const createAddressPolicy = ({ allowNetworks = [], allowLoopback = false }: AddressPolicyOptions = {}): AddressPolicy => {
  const opened = blockListOf(allowNetworks.map(parseCIDR));
  const categoryOf = (address: string, family: Family): AddressCategory | undefined =>
    categoryLists.find(([, list]) => list.check(address, family))?.[0];
  const judge = (address: string): AddressVerdict => {
    const family = familyOf(address);
    if (family === undefined) return { allowed: false, category: 'reserved' };
    const category = categoryOf(address, family);
    if (category === undefined) return { allowed: true };
    if (category === 'metadata' || category === 'reserved') return { allowed: false, category };
    if (category === 'loopback') return allowLoopback ? { allowed: true } : { allowed: false, category };
    return opened.check(address, family) ? { allowed: true } : { allowed: false, category };
  };
  return {
    allowsLoopback: allowLoopback,
    check(raw) {
      const address = withoutZone(raw);
      const verdict = judge(address);
      const embedded = verdict.allowed ? embeddedIPv4(address) : undefined;
      return embedded === undefined ? verdict : judge(embedded);
    },
  };
};

/** The policy with nothing opened: public addresses only. */
export const publicAddressesOnly: AddressPolicy = createAddressPolicy();

export const addressNotAllowedCode = 'ERR_PROVIDER_ADDRESS_NOT_ALLOWED';

/** A provider host resolved (or was written) only to addresses the policy refuses: nothing was sent. */
export class AddressNotAllowedError extends Error {
  override readonly name = 'AddressNotAllowedError';
  readonly code = addressNotAllowedCode;
  readonly hostname: string;
  /** What the host resolved to, with why each address was refused (for debug logs only). */
  readonly refused: ReadonlyArray<{ readonly address: string; readonly category: AddressCategory }>;

  constructor(hostname: string, refused: ReadonlyArray<{ address: string; category: AddressCategory }>) {
    super(`${hostname} resolves only to addresses that are not allowed: ${refused.map(({ address, category }) => `${address} (${category})`).join(', ')}`);
    this.hostname = hostname;
    this.refused = refused;
  }
}

export type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
export type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

const systemLookup: LookupFunction = (hostname, options, callback) => dns.lookup(hostname, { ...options, all: true }, callback);

/**
 * A `lookup` for http(s).Agent / net.connect that drops the addresses the policy refuses, and
 * fails with AddressNotAllowedError when none is left. The connection is made to an address this
 * function returned, so what was checked is what is connected to.
 */
export const guardedLookup = (policy: AddressPolicy, resolve: LookupFunction = systemLookup): LookupFunction =>
  (hostname, options, callback) => {
    const wanted: LookupOptions = typeof options === 'object' && options !== null ? options : { family: options as unknown as number };
    resolve(hostname, { ...wanted, all: true }, (error, addresses) => {
      if (error) {
        callback(error, wanted.all === true ? [] : '');
        return;
      }
      const resolved: LookupAddress[] = typeof addresses === 'string' ? [{ address: addresses, family: isIP(addresses) }] : addresses;
      const allowed: LookupAddress[] = [];
      const refused: Array<{ address: string; category: AddressCategory }> = [];
      for (const entry of resolved) {
        const verdict = policy.check(entry.address);
        if (verdict.allowed) allowed.push(entry);
        else refused.push({ address: entry.address, category: verdict.category });
      }
      const first = allowed[0];
      if (first === undefined) {
        callback(new AddressNotAllowedError(hostname, refused), wanted.all === true ? [] : '');
        return;
      }
      if (wanted.all === true) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };

/** The IP address a URL names literally (no lookup happens for it), or undefined for a name. */
export const literalAddress = (url: string): string | undefined => {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return undefined;
  }
  const bare = hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(bare) === 0 ? undefined : bare;
};

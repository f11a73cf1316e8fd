// An https token endpoint on loopback whose certificate names only `certificateName` (CN and
// SAN), made with the openssl CLI as src/localcluster/certificates.ts does. Trusting its
// certificate and calling it by another name (localhost) makes the TLS check fail with an error
// that quotes the certificate's names: what must never reach status or Events.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TLSProvider {
  /** https://localhost:PORT/oauth/token */
  readonly tokenURL: string;
  readonly port: number;
  /** The certificate (PEM), to trust it. */
  readonly certificate: string;
  /** Where the certificate is on disk (for NODE_EXTRA_CA_CERTS). */
  readonly certificatePath: string;
  /** Requests that got past the TLS handshake. */
  readonly requests: number;
  close(): Promise<void>;
}

export interface SelfSigned {
  readonly key: string;
  readonly certificate: string;
  readonly certificatePath: string;
  remove(): Promise<void>;
}

/** A self-signed certificate for `names` (DNS names; the first is the CN), in a directory of its own. */
export async function selfSignedCertificate(names: readonly string[]): Promise<SelfSigned> {
  const dir = await mkdtemp(join(tmpdir(), 'oauthapp-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certificatePath = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certificatePath, '-days', '2',
    '-subj', `/CN=${names[0] ?? ''}`, '-addext', `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}`,
  ]);
  const [key, certificate] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certificatePath, 'utf8')]);
  return { key, certificate, certificatePath, remove: () => rm(dir, { recursive: true, force: true }) };
}

export async function startTLSProvider(certificateName: string): Promise<TLSProvider> {
  const { key, certificate, certificatePath, remove } = await selfSignedCertificate([certificateName]);
  let requests = 0;
  const server = https.createServer({ key, cert: certificate }, (_request, response) => {
    requests += 1;
    response.writeHead(500).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    tokenURL: `https://localhost:${port}/oauth/token`,
    port,
    certificate,
    certificatePath,
    get requests() {
      return requests;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await remove();
    },
  };
}

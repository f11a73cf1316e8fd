import { request } from 'node:https';
import type { Certificates } from './certificates.ts';

/** One GET to the local apiserver as its admin, before any client library is configured. */
export function httpsGet(url: string, certificates: Certificates): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: certificates.caCert, cert: certificates.adminCert, key: certificates.adminKey, timeout: 5_000 },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// Certificates for a loopback control plane, made with the openssl CLI: a CA, the apiserver's
// serving certificate, a cluster-admin client certificate and the service-account signing key.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Certificates {
  caCert: string;
  adminCert: string;
  adminKey: string;
  files: {
    caCert: string;
    servingCert: string;
    servingKey: string;
    serviceAccountKey: string;
    serviceAccountPublicKey: string;
  };
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function generateCertificates(dir: string): Promise<Certificates> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = (name: string) => join(dir, name);
  await run('openssl', ['req', '-x509', ...ecKey, '-keyout', path('ca.key'), '-out', path('ca.crt'),
    '-days', '3650', '-subj', '/CN=oauthapp-local-ca']);
  await signed(dir, 'apiserver', '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth');
  await signed(dir, 'admin', '/O=system:masters/CN=oauthapp-local-admin', 'extendedKeyUsage=clientAuth');
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-out', path('service-account.key')]);
  await run('openssl', ['pkey', '-in', path('service-account.key'), '-pubout', '-out', path('service-account.pub')]);
  return {
    caCert: await readFile(path('ca.crt'), 'utf8'),
    adminCert: await readFile(path('admin.crt'), 'utf8'),
    adminKey: await readFile(path('admin.key'), 'utf8'),
    files: {
      caCert: path('ca.crt'),
      servingCert: path('apiserver.crt'),
      servingKey: path('apiserver.key'),
      serviceAccountKey: path('service-account.key'),
      serviceAccountPublicKey: path('service-account.pub'),
    },
  };
}

async function signed(dir: string, name: string, subject: string, extensions: string): Promise<void> {
  const path = (suffix: string) => join(dir, `${name}.${suffix}`);
  await writeFile(path('ext'), `${extensions}\n`);
  await run('openssl', ['req', ...ecKey, '-keyout', path('key'), '-out', path('csr'), '-subj', subject]);
  await run('openssl', ['x509', '-req', '-in', path('csr'), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-out', path('crt'), '-days', '3650', '-extfile', path('ext')]);
}

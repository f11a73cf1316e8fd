// TLS in front of a plain-HTTP server on loopback (the sandbox): each connection's TLS ends here
// and its bytes go on to the server unchanged, under a self-signed certificate for `names`.
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { selfSignedCertificate } from './tls-provider.ts';

export interface TLSFront {
  readonly port: number;
  /** Where the certificate is on disk (for NODE_EXTRA_CA_CERTS). */
  readonly certificatePath: string;
  close(): Promise<void>;
}

export async function startTLSFront(backendPort: number, names: readonly string[]): Promise<TLSFront> {
  const { key, certificate, certificatePath, remove } = await selfSignedCertificate(names);
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key, cert: certificate }, (socket) => {
    const backend = net.connect(backendPort, '127.0.0.1');
    for (const end of [socket, backend]) {
      sockets.add(end);
      end.once('close', () => sockets.delete(end));
    }
    socket.pipe(backend).pipe(socket);
    socket.on('error', () => backend.destroy());
    backend.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    certificatePath,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await remove();
    },
  };
}

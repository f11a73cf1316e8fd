// A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) started as
// local processes on loopback: the integration tests' cluster and the demo's sandbox cluster.
// Binaries come from hack/controlplane/build.sh; nothing here fakes an apiserver answer.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCertificates, type Certificates } from './certificates.ts';
import { freePort } from './ports.ts';
import { waitUntil } from './wait.ts';
import { renderKubeconfig } from './kubeconfig.ts';
import { httpsGet } from './https-get.ts';

export interface ControlPlaneOptions {
  /** Directory holding kube-apiserver, kube-controller-manager, kubectl and etcd. */
  binDir: string;
  /** Scratch directory for certificates, etcd data and logs; removed by stop(). */
  workDir: string;
  /** Start kube-controller-manager (garbage collection, namespaces, service accounts, rollouts). */
  controllerManager?: boolean;
  /** Receives every line the processes print; default: kept only in workDir's log files. */
  onOutput?: (component: string, line: string) => void;
}

export interface RunningControlPlane {
  readonly serverURL: string;
  /** A kubeconfig for a cluster-admin (system:masters) user. */
  readonly adminKubeconfigPath: string;
  readonly certificates: Certificates;
  readonly binDir: string;
  readonly workDir: string;
  /** kube-apiserver's own /version gitVersion, e.g. v1.36.3. */
  readonly version: string;
  /** Stops and starts kube-apiserver alone (same etcd, same port): an apiserver restart. */
  restartAPIServer(): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) kube-apiserver: requests hang as on a stuck control plane. */
  freezeAPIServer(frozen: boolean): void;
  stop(): Promise<void>;
}

const startTimeoutMs = 120_000;

export async function startControlPlane(options: ControlPlaneOptions): Promise<RunningControlPlane> {
  const { binDir, workDir } = options;
  await mkdir(workDir, { recursive: true });
  const certificates = await generateCertificates(join(workDir, 'pki'));
  const [etcdPort, etcdPeerPort, apiserverPort] = [await freePort(), await freePort(), await freePort()];
  const serverURL = `https://127.0.0.1:${apiserverPort}`;
  const adminKubeconfigPath = join(workDir, 'admin.kubeconfig');
  await writeFile(
    adminKubeconfigPath,
    renderKubeconfig({
      serverURL,
      caPEM: certificates.caCert,
      user: { clientCertPEM: certificates.adminCert, clientKeyPEM: certificates.adminKey },
    }),
    { mode: 0o600 },
  );

  const processes = new Processes(workDir, options.onOutput);
  const stopAll = async () => {
    await processes.stopAll();
  };
  try {
    processes.start('etcd', join(binDir, 'etcd'), [
      `--data-dir=${join(workDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      // Test data is disposable; fsync would only make the noisy machine slower.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitUntil('etcd healthy', startTimeoutMs, async () => {
      const response = await fetch(`http://127.0.0.1:${etcdPort}/health`).catch(() => undefined);
      return response?.ok === true;
    });

    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiserverPort}`,
      `--tls-cert-file=${certificates.files.servingCert}`,
      `--tls-private-key-file=${certificates.files.servingKey}`,
      `--client-ca-file=${certificates.files.caCert}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=https://kubernetes.default.svc`,
      `--service-account-key-file=${certificates.files.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${certificates.files.serviceAccountKey}`,
      `--api-audiences=https://kubernetes.default.svc`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      `--cert-dir=${join(workDir, 'apiserver-certs')}`,
      '--v=0',
    ];
    const startAPIServer = async () => {
      processes.start('kube-apiserver', join(binDir, 'kube-apiserver'), apiserverArgs);
      await waitUntil('kube-apiserver ready', startTimeoutMs, async () => {
        const answer = await httpsGet(`${serverURL}/readyz`, certificates).catch(() => undefined);
        return answer?.status === 200;
      });
    };
    await startAPIServer();

    if (options.controllerManager !== false) {
      processes.start('kube-controller-manager', join(binDir, 'kube-controller-manager'), [
        `--kubeconfig=${adminKubeconfigPath}`,
        `--authentication-kubeconfig=${adminKubeconfigPath}`,
        `--authorization-kubeconfig=${adminKubeconfigPath}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort()}`,
        `--cert-dir=${join(workDir, 'controller-manager-certs')}`,
        `--service-account-private-key-file=${certificates.files.serviceAccountKey}`,
        `--root-ca-file=${certificates.files.caCert}`,
        '--use-service-account-credentials=false',
        // Only what tests and the demo rely on: ownerReference GC, namespace deletion, service
        // account tokens, and the workload controllers that turn a rollout restart into pods.
        '--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,' +
          'root-ca-certificate-publisher-controller,deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller',
      ]);
    }

    const versionAnswer = await httpsGet(`${serverURL}/version`, certificates);
    const version = (JSON.parse(versionAnswer.body) as { gitVersion: string }).gitVersion;

    return {
      serverURL,
      adminKubeconfigPath,
      certificates,
      binDir,
      workDir,
      version,
      freezeAPIServer(frozen) {
        processes.signal('kube-apiserver', frozen ? 'SIGSTOP' : 'SIGCONT');
      },
      async restartAPIServer() {
        await processes.stop('kube-apiserver');
        await startAPIServer();
      },
      async stop() {
        await stopAll();
        await rm(workDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The control plane's child processes, stopped together (also if the parent exits abruptly). */
class Processes {
  private readonly running = new Map<string, ChildProcess>();
  private readonly killOnExit = () => {
    for (const child of this.running.values()) child.kill('SIGKILL');
  };

  private readonly workDir: string;
  private readonly onOutput: ((component: string, line: string) => void) | undefined;

  constructor(workDir: string, onOutput: ((component: string, line: string) => void) | undefined) {
    this.workDir = workDir;
    this.onOutput = onOutput;
    process.once('exit', this.killOnExit);
  }

  start(name: string, binary: string, args: string[]): void {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const logPath = join(this.workDir, `${name}.log`);
    const chunks: Buffer[] = [];
    const forward = (chunk: Buffer) => {
      chunks.push(chunk);
      if (this.onOutput) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) this.onOutput(name, line);
      }
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.once('exit', () => {
      void writeFile(logPath, Buffer.concat(chunks), { flag: 'a' }).catch(() => undefined);
    });
    this.running.set(name, child);
  }

  signal(name: string, signal: NodeJS.Signals): void {
    this.running.get(name)?.kill(signal);
  }

  async stop(name: string): Promise<void> {
    const child = this.running.get(name);
    if (!child) return;
    this.running.delete(name);
    if (child.exitCode !== null || (child.signalCode !== null && child.signalCode !== 'SIGSTOP')) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    // Clients of etcd go first so the apiserver does not spend its shutdown retrying etcd.
    for (const name of ['kube-controller-manager', 'kube-apiserver', 'etcd']) await this.stop(name);
    process.removeListener('exit', this.killOnExit);
  }
}

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { requiredEnvironment } from './environment.ts';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  input?: string;
  kubeconfig?: string;
}

/** Runs a command-line client (kubectl, helm) against the cluster of `options.kubeconfig` (default: the run's). */
export function runClient(binary: string, args: string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  const kubeconfig = options.kubeconfig ?? requiredEnvironment('kubeconfig');
  return new Promise((resolve) => {
    const child = execFile(binary, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs the kubectl built with the control plane (same version as the apiserver), as a user would. */
export function kubectl(args: string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  return runClient(join(requiredEnvironment('binDir'), 'kubectl'), args, options);
}

/** kubectl that must succeed; its output on success. */
/**
 * `kubectl wait --for=condition=Established` on CRDs, tried again for up to a minute: right after
 * an apply a CRD may have no status conditions yet, and kubectl wait then fails at once ("accessor
 * error") instead of waiting.
 */
export async function waitEstablished(targets: string[], options: KubectlOptions = {}): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const result = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...targets], options);
    if (result.code === 0) return;
    if (Date.now() > deadline) throw new Error(`kubectl wait for ${targets.join(' ')} failed (${result.code}): ${result.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function kubectlOK(args: string[], options: KubectlOptions = {}): Promise<string> {
  const result = await kubectl(args, options);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

/**
 * The rows of a table kubectl printed (`kubectl get`), each keyed by column header. Cells are cut
 * at the header's offsets, so a cell with spaces (a condition message) stays whole.
 */
export function tableRows(table: string): Array<Record<string, string>> {
  const [header = '', ...rows] = table.split('\n').filter((line) => line.trim() !== '');
  const columns = [...header.matchAll(/\S+/g)].map((match) => ({ name: match[0], start: match.index }));
  return rows.map((row) =>
    Object.fromEntries(columns.map(({ name, start }, index) => [name, row.slice(start, columns[index + 1]?.start).trim()])),
  );
}

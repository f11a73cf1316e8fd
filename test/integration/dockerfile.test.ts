// The Dockerfile without Docker (no engine here): its steps replayed on this machine. The build
// context is the working tree's files minus .dockerignore; the build stage's COPY and RUN lines
// run as written (so this fails when they drift), with the project's Node.js 24 standing in for
// the base image's. The runtime stage gets only what its COPY --from lines copy, and the
// operator starts from that layout as the image's USER would run it: a bad flag exits 2 with one
// line naming it; pointed at the test apiserver, it syncs its caches and exits 0 on SIGTERM.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { chmod, chown, copyFile, cp, lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, matchesGlob, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requiredEnvironment } from '../support/environment.ts';
import { eventually } from '../support/eventually.ts';
import { kubectlOK } from '../support/kubectl.ts';
import { expectNoSecretValuesLeaked } from '../support/leaks.ts';
import { createTestNamespace, deleteTestNamespace } from '../support/namespaces.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

// --- Dockerfile: the subset this project uses, parsed as BuildKit reads it ---------------------

interface Instruction {
  keyword: string;
  /** Leading --name=value options (COPY --from, RUN --mount). */
  flags: Record<string, string>;
  args: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue; // comments, parser directives, and comments inside continuations
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole) logical.push(whole);
  }
  const globalArgs: Record<string, string> = {};
  const substitute = (value: string) => value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_match, braced?: string, bare?: string) => globalArgs[braced ?? bare ?? ''] ?? '');
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, word = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const keyword = word.toUpperCase();
    const flags: Record<string, string> = {};
    let args = rest;
    for (let flag = /^--([\w-]+)=(\S+)\s+/.exec(args); flag; flag = /^--([\w-]+)=(\S+)\s+/.exec(args)) {
      flags[flag[1] as string] = flag[2] as string;
      args = args.slice(flag[0].length);
    }
    if (keyword === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      stages.push({ image: substitute(image), name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`Dockerfile: ${keyword} before the first FROM`);
      const [name = '', value = ''] = args.split('=', 2);
      globalArgs[name] = value;
    } else {
      stages.at(-1)?.instructions.push({ keyword, flags, args });
    }
  }
  return stages;
}

/** The exec form of ENTRYPOINT/CMD: a JSON array. */
const execForm = (args: string) => JSON.parse(args) as string[];

// --- Build context: the working tree's files (what `docker build .` sends), minus .dockerignore ---

async function contextFiles(): Promise<string[]> {
  // Tracked and untracked-but-not-gitignored files: the working tree as Docker would see it,
  // without node_modules, dist or other local output.
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, maxBuffer: 16 << 20 });
  const files = [...new Set(stdout.split('\0').filter(Boolean))];
  const present = await Promise.all(files.map((file) => lstat(join(repoRoot, file)).then((stats) => stats.isFile(), () => false)));
  const patterns = (await readFile(join(repoRoot, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => ({ exclude: !line.startsWith('!'), glob: posix.normalize(line.replace(/^!/, '').replace(/^\/+/, '')).replace(/\/+$/, '') }));
  // As in Docker: the last pattern that matches the file or one of its parent directories decides.
  const ignored = (file: string) => {
    const paths = file.split('/').map((_part, index, parts) => parts.slice(0, index + 1).join('/'));
    let excluded = false;
    for (const { exclude, glob } of patterns) if (paths.some((path) => matchesGlob(path, glob))) excluded = exclude;
    return excluded;
  };
  return files.filter((file, index) => present[index] && !ignored(file)).sort();
}

// --- Replay ---------------------------------------------------------------------------------

interface ReplayedStage extends Stage {
  /** Where this stage's filesystem root is on this machine. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  entrypoint: string[] | undefined;
  exposed: string[];
}

/**
 * The environment for RUN lines: this machine's (its proxy and CA settings reach the registry),
 * without what npm and jest set for this test process, with the project's Node.js 24 first on
 * PATH and npm preferring its cache.
 */
function buildEnvironment(nodeDir: string): Record<string, string> {
  const inherited = Object.entries(process.env).filter(
    (entry): entry is [string, string] => entry[1] !== undefined && !/^(npm_|NODE_OPTIONS$|JEST_WORKER_ID$|NODE_ENV$)/i.test(entry[0]),
  );
  const env = Object.fromEntries(inherited);
  return { ...env, PATH: `${nodeDir}:${env.PATH ?? '/usr/bin:/bin'}`, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
}

async function replay(stages: Stage[], contextDir: string, scratch: string, nodeDir: string): Promise<ReplayedStage[]> {
  const done: ReplayedStage[] = [];
  for (const [index, stage] of stages.entries()) {
    const current: ReplayedStage = { ...stage, root: join(scratch, `stage-${index}`), workdir: '/', env: {}, user: undefined, entrypoint: undefined, exposed: [] };
    await mkdir(current.root, { recursive: true });
    const inStage = (path: string) => join(current.root, posix.resolve(current.workdir, path));
    for (const { keyword, flags, args } of stage.instructions) {
      switch (keyword) {
        case 'WORKDIR':
          current.workdir = posix.resolve(current.workdir, args);
          await mkdir(inStage('.'), { recursive: true });
          break;
        case 'COPY': {
          if (args.startsWith('[')) throw new Error('COPY in exec form is not replayed');
          const parts = args.split(/\s+/);
          const destination = parts.pop() as string;
          const from = flags.from === undefined ? undefined : done.find((candidate) => candidate.name === flags.from);
          if (flags.from !== undefined && !from) throw new Error(`COPY --from=${flags.from}: no such stage`);
          for (const source of parts) {
            if (/[*?[]/.test(source)) throw new Error(`COPY ${source}: wildcards are not replayed`);
            const sourcePath = from ? join(from.root, source) : join(contextDir, source);
            // Docker copies a directory's contents; a file into a directory when the target ends in /.
            const target = (await stat(sourcePath)).isDirectory() || !(destination.endsWith('/') || parts.length > 1) ? inStage(destination) : join(inStage(destination), basename(source));
            await mkdir(dirname(target), { recursive: true });
            await cp(sourcePath, target, { recursive: true, verbatimSymlinks: true });
          }
          break;
        }
        case 'RUN': {
          if (args.startsWith('[')) throw new Error('RUN in exec form is not replayed');
          const env = { ...buildEnvironment(nodeDir), ...current.env };
          await run('sh', ['-c', args], { cwd: inStage('.'), env, maxBuffer: 64 << 20, timeout: 180_000 }).catch((error: Error & { stdout?: string; stderr?: string }) => {
            throw new Error(`RUN ${args} failed: ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
          });
          break;
        }
        case 'ENV':
          for (const [, name = '', value = ''] of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) current.env[name] = value.replace(/^"|"$/g, '');
          break;
        case 'USER':
          current.user = args;
          break;
        case 'EXPOSE':
          current.exposed.push(...args.split(/\s+/));
          break;
        case 'ENTRYPOINT':
          current.entrypoint = execForm(args);
          break;
        case 'LABEL':
        case 'ARG':
          break;
        default:
          throw new Error(`Dockerfile instruction ${keyword} is not replayed by this test: teach it, or keep the Dockerfile plain`);
      }
    }
    done.push(current);
  }
  return done;
}

// --- The operator started from the runtime layout -------------------------------------------

interface Started {
  exited: Promise<number | NodeJS.Signals>;
  output(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
}

let scratch: string;
let context: string[];
let stages: ReplayedStage[];
let runtime: ReplayedStage;
let nodeBinary: string;
/** The image's USER, when this test may switch to it (it runs as root); else the current user. */
let identity: { uid: number; gid: number } | undefined;

function startEntrypoint(args: string[]): Started {
  const [command, ...entryArgs] = runtime.entrypoint ?? [];
  if (command !== 'node') throw new Error(`ENTRYPOINT starts ${command}, not node`);
  const env = { PATH: `${dirname(nodeBinary)}:/usr/bin:/bin`, HOME: '/', ...runtime.env };
  const child = spawn(nodeBinary, [...entryArgs, ...args], { cwd: join(runtime.root, runtime.workdir), env, stdio: ['ignore', 'pipe', 'pipe'], ...identity });
  const out: string[] = [];
  const err: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk.toString('utf8')));
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? 0)));
  return {
    exited,
    output: () => out.join(''),
    stderr: () => err.join(''),
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

beforeAll(async () => {
  nodeBinary = await realpath(join(repoRoot, 'node_modules/.bin/node'));
  scratch = await mkdtemp(join(tmpdir(), 'oauthapp-dockerfile-'));
  const contextDir = join(scratch, 'context');
  context = [];
  for (const file of await contextFiles()) {
    await mkdir(dirname(join(contextDir, file)), { recursive: true });
    // Others edit this checkout concurrently: a file may be gone since it was listed.
    const copied = await copyFile(join(repoRoot, file), join(contextDir, file)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    if (copied) context.push(file);
  }
  stages = await replay(parseDockerfile(await readFile(join(repoRoot, 'Dockerfile'), 'utf8')), contextDir, scratch, dirname(nodeBinary));
  runtime = stages.at(-1) as ReplayedStage;

  const [uid, gid] = (runtime.user ?? '').split(':').map(Number);
  if (process.getuid?.() === 0 && uid !== undefined && gid !== undefined) {
    identity = { uid, gid };
    // mkdtemp makes 0700 directories: open the way down to the runtime stage for that user.
    for (const dir of [scratch, runtime.root]) await chmod(dir, 0o755);
    // The checkout (and so node_modules/.bin/node) may sit below a directory that user cannot
    // enter, as a CI clone into a fresh mktemp directory does: give the image's node a place of
    // its own, as /usr/local/bin/node is in the image.
    const imageBin = join(scratch, 'usr-local-bin');
    await mkdir(imageBin, { mode: 0o755 });
    await copyFile(nodeBinary, join(imageBin, 'node'));
    await chmod(join(imageBin, 'node'), 0o755);
    nodeBinary = join(imageBin, 'node');
  }
}, 240_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the build context (.dockerignore)', () => {
  it('holds the sources and the package manifests, and no tests, local output or git data', () => {
    expect(context).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/main.ts']));
    expect(context.filter((file) => /^(test|node_modules|dist|\.git|\.tmp|coverage)\//.test(file))).toEqual([]);
  });
});

describe('the Dockerfile', () => {
  it('builds on Node.js 24 (package.json engines) in two stages, the runtime stage copying from the build stage', async () => {
    const engines = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(/^>=24 <25$/);
    expect(stages).toHaveLength(2);
    for (const stage of stages) expect(stage.image).toMatch(/^node:24[.-]/);
    const copies = runtime.instructions.filter((instruction) => instruction.keyword === 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy.flags.from).toBe(stages[0]?.name);
  });

  it('runs as a numeric non-root user and group, with node as PID 1, exposing metrics and callback ports', () => {
    expect(runtime.user).toMatch(/^\d+:\d+$/);
    expect(runtime.user).toBe('65532:65532');
    expect(runtime.entrypoint).toEqual(['node', 'dist/main.js']);
    expect(runtime.exposed.sort()).toEqual(['8080', '8081']);
    expect(runtime.env.NODE_ENV).toBe('production');
  });

  it('ships dist/, the production dependencies and package.json, and nothing for development', async () => {
    const app = join(runtime.root, runtime.workdir);
    expect((await readdir(app)).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    const manifest = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { type: string; bin: Record<string, string>; dependencies: Record<string, string> };
    expect(manifest.type).toBe('module');
    for (const target of Object.values(manifest.bin)) await expect(stat(join(app, target))).resolves.toBeTruthy();
    // Exactly the production tree of package-lock.json: every package it marks dev-only is gone
    // (the npm `node` package that brings Node.js for development, TypeScript, jest), every other
    // one is there.
    const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }> };
    const packages = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
    const installed = async (path: string) => lstat(join(app, path)).then(() => true, () => false);
    const shipped = async (paths: string[]) => (await Promise.all(paths.map(async (path) => ((await installed(path)) ? [path] : [])))).flat();
    const devOnly = packages.filter(([, entry]) => entry.dev).map(([path]) => path);
    const production = packages.filter(([, entry]) => !entry.dev && !entry.devOptional && !entry.optional).map(([path]) => path);
    expect(devOnly).toEqual(expect.arrayContaining(['node_modules/node', 'node_modules/typescript', 'node_modules/jest']));
    expect(await shipped(devOnly)).toEqual([]);
    expect(await shipped(production)).toEqual(production);
    for (const name of Object.keys(manifest.dependencies)) expect(production).toContain(`node_modules/${name}`);
    await expect(lstat(join(app, 'node_modules/.bin/node'))).rejects.toThrow();
    expect((await readdir(join(app, 'dist'))).filter((entry) => entry.endsWith('.ts'))).toEqual([]);
  });
});

describe('the operator started from the runtime stage', () => {
  it('exits 2 with one line naming a bad flag', async () => {
    const started = startEntrypoint(['--metrics-addr=nonsense']);
    expect(await started.exited).toBe(2);
    const lines = started.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('--metrics-addr');
    expect(started.output()).toBe('');
  });

  it('starts against the apiserver, syncs its caches and exits 0 on SIGTERM', async () => {
    // Its own namespace for everything it watches and writes, so it never meets other tests' apps.
    const namespace = await createTestNamespace('dockerfile');
    // The image's user reads the kubeconfig it is given (mounted, in a real cluster).
    const kubeconfig = join(runtime.root, 'kubeconfig');
    await copyFile(requiredEnvironment('kubeconfig'), kubeconfig);
    if (identity) await chown(kubeconfig, identity.uid, identity.gid);
    const started = startEntrypoint([
      `--kubeconfig=${kubeconfig}`,
      `--namespaces=${namespace}`,
      `--operator-namespace=${namespace}`,
      '--no-leader-elect',
      '--metrics-addr=127.0.0.1:0',
      '--callback-addr=127.0.0.1:0',
    ]);
    try {
      const messages = () => started.output().split('\n').flatMap((line) => (line.startsWith('{') && line.endsWith('}') ? [(JSON.parse(line) as { msg?: string }).msg] : []));
      const logged = (message: string) => messages().includes(message);
      await eventually('the operator logs "starting" and "caches synced"', async () => {
        const exit = await Promise.race([started.exited, Promise.resolve(undefined)]);
        if (exit !== undefined) throw new Error(`exited with ${exit}: ${started.output()}${started.stderr()}`);
        return logged('starting') && logged('caches synced') ? true : undefined;
      });
      started.kill('SIGTERM');
      expect(await started.exited).toBe(0);
      expect(started.stderr()).toBe('');
      // The one secret this operator handled: the state-signing key it made at start.
      const key = Buffer.from(await kubectlOK(['get', 'secret', 'oauthapp-state-signing-key', '-n', namespace, '-o', 'jsonpath={.data.key}']), 'base64');
      expect(key.length).toBeGreaterThan(0);
      await expectNoSecretValuesLeaked([key.toString('base64'), key.toString('hex'), key.toString('base64url')], { namespace, logs: started.output() + started.stderr() });
    } finally {
      started.kill('SIGKILL');
      await deleteTestNamespace(namespace);
    }
  });
});

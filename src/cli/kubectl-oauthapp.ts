#!/usr/bin/env node
// kubectl-oauthapp: the kubectl plugin (`kubectl oauthapp …`). Wiring only: the process's
// environment, files, clock and streams in, the exit code out.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './run.ts';

const code = await run(process.argv.slice(2), {
  env: process.env,
  home: process.env.HOME || homedir() || undefined,
  exists: existsSync,
  io: { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
  clock: { now: Date.now, sleep: (ms) => sleep(ms) },
});
process.exitCode = code;
// Let stdout drain; but a leftover handle must not keep a finished command alive.
setTimeout(() => process.exit(code), 2_000).unref();

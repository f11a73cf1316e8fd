// Sums a V8 CPU profile (node --cpu-prof) by self time: per function and per package or source
// file, to see what limits the operator. Run: node bench/cpu-summary.ts FILE.cpuprofile [TOP]
import { readFile } from 'node:fs/promises';

const [file, top = '20'] = process.argv.slice(2);
if (!file) throw new Error('usage: cpu-summary.ts FILE.cpuprofile [TOP]');
interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
const profile = JSON.parse(await readFile(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
const selfMs = new Map<number, number>();
for (const [index, id] of profile.samples.entries()) selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000);
const totalMs = (profile.endTime - profile.startTime) / 1000;

const where = (url: string) => {
  if (!url) return '(native/V8)';
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1] as string;
  const sourceMatch = /\/work\/main\/(.*)$/.exec(url.replace(/^file:\/\//, ''));
  return sourceMatch ? (sourceMatch[1] as string) : url.startsWith('node:') ? url : url.replace(/^file:\/\//, '');
};
const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
for (const node of profile.nodes) {
  const ms = selfMs.get(node.id) ?? 0;
  if (!ms) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const fn = `${functionName || '(anonymous)'} ${where(url)}:${lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
  byPlace.set(where(url), (byPlace.get(where(url)) ?? 0) + ms);
}
const table = (title: string, entries: Map<string, number>) => {
  process.stdout.write(`\n| ${title} | self ms | share of ${(totalMs / 1000).toFixed(1)} s |\n|---|---|---|\n`);
  for (const [key, ms] of [...entries].sort(([, a], [, b]) => b - a).slice(0, Number(top))) {
    process.stdout.write(`| ${key} | ${ms.toFixed(0)} | ${((100 * ms) / totalMs).toFixed(1)}% |\n`);
  }
};
table('package / file', byPlace);
table('function', byFunction);

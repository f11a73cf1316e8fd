// Sums a V8 heap snapshot's self sizes by node type and constructor name: where the operator's
// memory goes. Run: node bench/heap-summary.ts FILE.heapsnapshot [TOP]
import { readFile } from 'node:fs/promises';

const [file, top = '25'] = process.argv.slice(2);
if (!file) throw new Error('usage: heap-summary.ts FILE.heapsnapshot [TOP]');
const snapshot = JSON.parse(await readFile(file, 'utf8')) as {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
};
const fields = snapshot.snapshot.meta.node_fields;
const types = snapshot.snapshot.meta.node_types[0];
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field)) as [number, number, number];
const byKey = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let index = 0; index < snapshot.nodes.length; index += fields.length) {
  const type = types[snapshot.nodes[index + typeAt] as number] ?? '?';
  const name = type === 'object' || type === 'closure' ? (snapshot.strings[snapshot.nodes[index + nameAt] as number] ?? '?') : '';
  const key = `${type}${name ? ` ${name.slice(0, 60)}` : ''}`;
  const size = snapshot.nodes[index + sizeAt] as number;
  total += size;
  const entry = byKey.get(key) ?? { count: 0, bytes: 0 };
  entry.count += 1;
  entry.bytes += size;
  byKey.set(key, entry);
}
process.stdout.write(`total self size ${(total / 1048576).toFixed(1)} MiB\n| type / constructor | count | MiB |\n|---|---|---|\n`);
for (const [key, { count, bytes }] of [...byKey].sort(([, a], [, b]) => b.bytes - a.bytes).slice(0, Number(top))) {
  process.stdout.write(`| ${key} | ${count} | ${(bytes / 1048576).toFixed(1)} |\n`);
}

// Fails when a built entry is missing from package.json "exports" or an export points at nothing.
import { existsSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const tsup = readFileSync('tsup.config.ts', 'utf8');
const entries = [...tsup.matchAll(/'?([\w/-]+)'?:\s*'src\/[\w/-]+\.ts'/g)].map((m) => m[1]);
const problems = [];
for (const entry of entries) {
  const subpath = entry === 'index' ? '.' : `./${entry.replace(/\/index$/, '')}`;
  const target = pkg.exports[subpath];
  if (!target) problems.push(`entry ${entry} has no "exports" key ${subpath}`);
  for (const file of [`dist/${entry}.js`, `dist/${entry}.cjs`, `dist/${entry}.d.ts`, `dist/${entry}.d.cts`]) {
    if (!existsSync(file)) problems.push(`missing built file ${file}`);
  }
}
for (const key of Object.keys(pkg.exports)) {
  if (key === './package.json') continue;
  const entry = key === '.' ? 'index' : `${key.slice(2)}/index`;
  if (!entries.includes(entry)) problems.push(`"exports" key ${key} has no tsup entry`);
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`exports map and ${entries.length} built entries agree`);

// Prints the gzip size of every built chunk and of the first load (the entry chunk, its
// static imports and the stylesheets index.html links), so bundle growth is visible in
// every build.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const assets = join(dist, 'assets');
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const gzipped = (file) => gzipSync(readFileSync(file), { level: 9 }).length;

const rows = readdirSync(assets)
  .filter((name) => /\.(js|css)$/.test(name))
  .map((name) => {
    const file = join(assets, name);
    return { name, raw: statSync(file).size, gzip: gzipped(file) };
  })
  .sort((a, b) => b.gzip - a.gzip);

console.log('\nchunk                                         raw        gzip');
for (const row of rows) {
  console.log(`${row.name.padEnd(44)} ${kb(row.raw).padStart(10)} ${kb(row.gzip).padStart(10)}`);
}

// First load: what index.html references directly (module entry, modulepreload, CSS).
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const referenced = [...html.matchAll(/(?:src|href)="\/assets\/([^"]+)"/g)].map((m) => m[1]);
const first = rows.filter((row) => referenced.includes(row.name));
const firstTotal = first.reduce((sum, row) => sum + row.gzip, 0) + gzipSync(html).length;
console.log(`\nfirst load (index.html + ${first.map((r) => r.name).join(', ')}): ${kb(firstTotal)} gzipped`);
console.log(`all chunks: ${kb(rows.reduce((sum, row) => sum + row.gzip, 0))} gzipped`);

// Unit tests of the WDS stylesheet purge and its split by chunk (the build step itself).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { transformSync } from 'esbuild';

const source = readFileSync(new URL('../build/purgeWdsCss.ts', import.meta.url), 'utf8');
const { code } = transformSync(source, { loader: 'ts', format: 'esm', target: 'es2020' });
const { planCss, purge } = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);

const P = 'wds_1_328_0';
const css = [
  `:root{--x:1}`,
  `.${P}_Box__root{display:flex}`,
  `.${P}_Modal__root{position:fixed}`,
  `.${P}_Dropdown__root{width:1px}`,
  `.${P}_Modal__root .${P}_Dropdown__root{z-index:2}`,
  `.${P}_Unused__root{color:red}`,
  `.${P}-segmented-toggle{display:flex}`,
  `@media (max-width:600px){.${P}_Box__root{display:block}.${P}_Modal__root{inset:0}}`,
  `@keyframes spin{to{transform:rotate(1turn)}}`,
  `.app{margin:0}`,
].join('\n');

const chunks = [
  { id: 'entry', code: `"${P}_Box"`, imports: [] },
  { id: 'QueuePage', code: `"${P}_Modal" "segmented-toggle"`, imports: ['Dropdown'] },
  { id: 'ProductsPage', code: '', imports: ['Dropdown'] },
  { id: 'Dropdown', code: `"${P}_Dropdown"`, imports: [] },
];

test('rules of the first load stay in the main stylesheet, with non-WDS rules and at-rules', () => {
  const { main } = planCss(css, chunks, new Set(['entry']));
  assert.match(main, /:root\{--x:1\}/);
  assert.match(main, new RegExp(`\\.${P}_Box__root\\{display:flex\\}`));
  assert.match(main, /@keyframes spin/);
  assert.match(main, /\.app\{margin:0\}/);
  assert.match(main, new RegExp(`@media \\(max-width:600px\\)\\{\\.${P}_Box__root\\{display:block\\}\\}`));
  assert.doesNotMatch(main, /Unused|Modal|Dropdown|segmented/);
});

test('a rule only lazy code needs goes with the chunk that holds that code', () => {
  const { byChunk } = planCss(css, chunks, new Set(['entry']));
  assert.deepEqual([...byChunk.keys()].sort(), ['Dropdown', 'QueuePage']);
  // The shared component's rule goes with the shared chunk, once, not with each page.
  assert.equal(byChunk.get('Dropdown').trim(), `.${P}_Dropdown__root{width:1px}`);
  const queue = byChunk.get('QueuePage');
  assert.match(queue.trim(), new RegExp(`^\\.${P}_Modal__root\\{position:fixed\\}`));
  // A rule naming a page's component and a component it imports belongs to the page.
  assert.match(queue, new RegExp(`\\.${P}_Modal__root \\.${P}_Dropdown__root\\{z-index:2\\}`));
  assert.match(queue, new RegExp(`\\.${P}-segmented-toggle\\{display:flex\\}`));
  assert.match(queue, new RegExp(`@media \\(max-width:600px\\)\\{\\.${P}_Modal__root\\{inset:0\\}\\}`));
  assert.doesNotMatch([...byChunk.values()].join(''), /Unused|Box/);
});

test('a rule whose classes no single chunk accounts for stays in the main stylesheet', () => {
  const apart = [
    { id: 'entry', code: '', imports: [] },
    { id: 'A', code: `"${P}_Modal"`, imports: [] },
    { id: 'B', code: `"${P}_Dropdown"`, imports: [] },
  ];
  const { main, byChunk } = planCss(`.${P}_Modal__root .${P}_Dropdown__root{z-index:2}`, apart, new Set(['entry']));
  assert.equal(main, `.${P}_Modal__root .${P}_Dropdown__root{z-index:2}`);
  assert.equal(byChunk.size, 0);
});

test('purge alone keeps every rule some code uses', () => {
  const all = chunks.map((c) => c.code).join('\n');
  const kept = purge(css, all);
  assert.doesNotMatch(kept, /Unused/);
  for (const name of ['Box', 'Modal', 'Dropdown', 'segmented-toggle']) assert.match(kept, new RegExp(name));
});

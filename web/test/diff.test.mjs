// Unit tests of the word diff and the HTML-to-text step (pure TypeScript, compiled with
// esbuild on the fly).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { transformSync } from 'esbuild';

const source = readFileSync(new URL('../src/components/diff.ts', import.meta.url), 'utf8');
const { code } = transformSync(source, { loader: 'ts', format: 'esm', target: 'es2020' });
const { diffWords, diffStats, htmlToText, splitLead, tokenize } = await import(
  `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`
);

const render = (segments) =>
  segments
    .map(({ kind, text }) => {
      const [lead, words] = splitLead(text);
      return kind === 'same' ? text : `${lead}${kind === 'added' ? '+' : '-'}[${words}]`;
    })
    .join('');

test('identical texts are one unchanged segment', () => {
  assert.deepEqual(diffWords('Linen shirt, blue', 'Linen shirt, blue'), [{ kind: 'same', text: 'Linen shirt, blue' }]);
  assert.deepEqual(diffWords('', ''), []);
});

test('a replaced word is shown removed then added, with the spacing kept outside the marks', () => {
  assert.equal(render(diffWords('The red shirt', 'The blue shirt')), 'The -[red] +[blue] shirt');
});

test('added and removed words at the edges', () => {
  assert.equal(render(diffWords('Linen shirt', 'Premium linen shirt for summer')), '-[Linen] +[Premium linen] shirt +[for summer]');
  assert.equal(render(diffWords('', 'New title')), '+[New title]');
  assert.equal(render(diffWords('Old title', '')), '-[Old title]');
});

test('the longest common subsequence is kept across scattered edits', () => {
  const segments = diffWords('a b c d e f', 'a x c d y f');
  assert.equal(render(segments), 'a -[b] +[x] c d -[e] +[y] f');
  assert.deepEqual(diffStats(segments), { added: 2, removed: 2 });
  // Joining every segment in order reads both texts' words.
  const same = segments.filter((s) => s.kind !== 'added').map((s) => s.text).join('');
  assert.equal(same, 'a b c d e f');
});

test('punctuation is its own token, so a changed word does not swallow its comma', () => {
  assert.equal(render(diffWords('Soft, warm tee.', 'Soft, cozy tee!')), 'Soft, -[warm] +[cozy] tee-[.]+[!]');
  assert.deepEqual(
    tokenize("Don't  stop—now").map((t) => t.lead + t.word),
    ["Don't", ' stop', '—', 'now'],
  );
});

test('non-Latin words are words', () => {
  assert.equal(render(diffWords('ספל קרמיקה לבן', 'ספל קרמיקה כחול')), 'ספל קרמיקה -[לבן] +[כחול]');
});

test('line breaks survive as one newline', () => {
  assert.equal(render(diffWords('One\n\nTwo', 'One\nThree')), 'One\n-[Two]\n+[Three]');
});

test('long texts beyond the table limit still diff their common edges', () => {
  const words = (n, w) => Array.from({ length: n }, (_, i) => `${w}${i}`).join(' ');
  const before = `start ${words(2500, 'a')} end`;
  const after = `start ${words(2500, 'b')} end`;
  const segments = diffWords(before, after);
  assert.equal(segments[0].text, 'start');
  assert.equal(segments.at(-1).text, ' end');
  assert.deepEqual(diffStats(segments), { added: 2500, removed: 2500 });
});

test('HTML becomes text: tags stripped, blocks and list items on their own lines, entities decoded', () => {
  const html =
    '<p>The <strong>Ridgeline&nbsp;Tee</strong> &amp; more.</p><ul><li>100% cotton</li><li>Fits &#8220;true&#x201D;</li></ul>' +
    '<script>alert(1)</script><style>p{}</style><!-- note --><p>Line<br>break &lt;b&gt;</p>';
  assert.equal(htmlToText(html), 'The Ridgeline Tee & more.\n• 100% cotton\n• Fits “true”\nLine\nbreak <b>');
  assert.equal(htmlToText(''), '');
  assert.equal(htmlToText('plain &unknown; text'), 'plain &unknown; text');
});

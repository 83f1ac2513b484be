// Word-level differences between a product's text before and after optimization, and the
// HTML-to-text step that lets descriptions be compared as prose. Pure functions: no DOM.

export type DiffKind = 'same' | 'added' | 'removed';

/** A run of words of one kind. `text` keeps the whitespace before its first word, so the
 * segments joined in order read as the text (removed and added runs both included). */
export interface DiffSegment {
  kind: DiffKind;
  text: string;
}

interface Token {
  /** Whitespace before the word: '', ' ' or '\n'. */
  lead: string;
  word: string;
}

// A word (letters, marks, digits, inner apostrophes and hyphens) or one other visible character.
const TOKEN = /(\s*)([\p{L}\p{M}\p{N}_]+(?:['’-][\p{L}\p{M}\p{N}_]+)*|\S)/gu;

/** Splits text into words and punctuation, remembering the whitespace before each. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (const match of text.matchAll(TOKEN)) {
    const space = match[1];
    const lead = tokens.length === 0 || space === '' ? '' : space.includes('\n') ? '\n' : ' ';
    tokens.push({ lead, word: match[2] });
  }
  return tokens;
}

/** Above this many cells (before words × after words) the LCS table is not built: the
 * changed middle is shown as removed, then added. */
const MAX_CELLS = 4_000_000;

const WORDY = /[\p{L}\p{M}\p{N}_]/u;

type Op = { kind: DiffKind; token: Token };

function lcsOps(a: Token[], b: Token[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0 || n * m > MAX_CELLS) {
    return [...a.map((token) => ({ kind: 'removed' as const, token })), ...b.map((token) => ({ kind: 'added' as const, token }))];
  }
  // lengths[i * (m + 1) + j] = LCS length of a[i..] and b[j..]
  const width = m + 1;
  const lengths = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i * width + j] =
        a[i].word === b[j].word
          ? lengths[(i + 1) * width + j + 1] + 1
          : Math.max(lengths[(i + 1) * width + j], lengths[i * width + j + 1]);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i].word === b[j].word) {
      ops.push({ kind: 'same', token: b[j] });
      i++;
      j++;
    } else if (lengths[(i + 1) * width + j] >= lengths[i * width + j + 1]) {
      ops.push({ kind: 'removed', token: a[i++] });
    } else {
      ops.push({ kind: 'added', token: b[j++] });
    }
  }
  while (i < n) ops.push({ kind: 'removed', token: a[i++] });
  while (j < m) ops.push({ kind: 'added', token: b[j++] });
  return ops;
}

/** Within each changed stretch, removed words come before added ones, so a replaced
 * phrase reads "old new" rather than interleaved word by word. */
function groupChanges(ops: Op[]): Op[] {
  const result: Op[] = [];
  let removed: Op[] = [];
  let added: Op[] = [];
  const flush = () => {
    result.push(...removed, ...added);
    removed = [];
    added = [];
  };
  for (const op of ops) {
    if (op.kind === 'same') {
      flush();
      result.push(op);
    } else if (op.kind === 'removed') {
      removed.push(op);
    } else {
      added.push(op);
    }
  }
  flush();
  return result;
}

/** The word-level difference of `before` and `after`: the longest common subsequence of
 * their words is kept, the rest is marked removed (only in before) or added (only in after). */
export function diffWords(before: string, after: string): DiffSegment[] {
  const a = tokenize(before);
  const b = tokenize(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start].word === b[start].word) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1].word === b[endB - 1].word) {
    endA--;
    endB--;
  }
  const ops: Op[] = [
    ...b.slice(0, start).map((token) => ({ kind: 'same' as const, token })),
    ...groupChanges(lcsOps(a.slice(start, endA), b.slice(start, endB))),
    ...b.slice(endB).map((token) => ({ kind: 'same' as const, token })),
  ];
  const segments: DiffSegment[] = [];
  for (const { kind, token } of ops) {
    const text = token.lead + token.word;
    const last = segments[segments.length - 1];
    if (last && last.kind === kind) last.text += text;
    else if (last?.kind === 'removed' && kind === 'added' && token.lead === '' && WORDY.test(last.text.slice(-1)) && WORDY.test(token.word[0])) {
      // A replacement at a spot without whitespace ("Linen" → "Premium linen" at the start):
      // keep the two words apart on screen.
      segments.push({ kind, text: ` ${text}` });
    } else segments.push({ kind, text });
  }
  // A segment that opens the text has no whitespace to keep before it.
  if (segments[0]) segments[0].text = segments[0].text.replace(/^\s+/, '');
  return segments;
}

/** Splits a segment's leading whitespace from its words, so only the words get marked. */
export function splitLead(text: string): [string, string] {
  const lead = /^\s*/.exec(text)?.[0] ?? '';
  return [lead, text.slice(lead.length)];
}

/** How many words a diff adds and removes. */
export function diffStats(segments: DiffSegment[]): { added: number; removed: number } {
  const count = (kind: DiffKind) =>
    segments.filter((s) => s.kind === kind).reduce((sum, s) => sum + tokenize(s.text).length, 0);
  return { added: count('added'), removed: count('removed') };
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  ndash: '–',
  mdash: '—',
  hellip: '…',
  rsquo: '’',
  lsquo: '‘',
  rdquo: '”',
  ldquo: '“',
  copy: '©',
  reg: '®',
  trade: '™',
  deg: '°',
  times: '×',
  euro: '€',
  pound: '£',
};

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** An HTML fragment as plain text: tags stripped, one line per block and list item
 * (list items start with "• "), entities decoded, whitespace collapsed. */
export function htmlToText(html: string): string {
  const text = html
    .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '\n• ')
    .replace(/<\/?(p|div|ul|ol|li|h[1-6]|blockquote|tr|table|section|article|header|footer)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '');
  return decodeEntities(text)
    .split('\n')
    .map((line) => line.replace(/[ \t\f\v\u00a0]+/g, ' ').trim())
    .filter((line) => line !== '')
    .join('\n');
}

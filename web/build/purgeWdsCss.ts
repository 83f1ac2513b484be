// The Wix Design System ships one global stylesheet (~120 KB gzipped) with the styles of
// every component. This build step keeps only the rules of components our bundle can render:
// a rule survives when every WDS class in (at least one of) its selectors belongs to a
// component whose class namespace appears in our JavaScript. Non-WDS rules are untouched.
//
// It also splits what survives by route: a rule that only code of lazily loaded chunks
// needs (a page, or a component chunk pages share) moves out of the first-load stylesheet
// into a stylesheet of the chunk that needs it, which Vite loads together with that chunk
// (before its code runs). A rule whose classes are spread over chunks no single chunk
// accounts for stays in the first-load stylesheet, so nothing is ever lost.
import { createHash } from 'node:crypto';
import type { Plugin, Rollup } from 'vite';

const PREFIX = 'wds_1_328_0';
const CLASS = new RegExp(`\\.${PREFIX}([_-])([A-Za-z0-9-]+?)(?=__|--|[^A-Za-z0-9-]|$)`, 'g');

function isUsed(kind: string, name: string, code: string): boolean {
  // `wds_1_328_0_Button__root`: the JS holds the namespace `wds_1_328_0_Button`.
  if (kind === '_') return code.includes(`${PREFIX}_${name}`);
  // `wds_1_328_0-section-helper--skin`: the JS names the block `"section-helper"`.
  return code.includes(`"${name}"`) || code.includes(`'${name}'`) || code.includes(`${PREFIX}-${name}`);
}

/** Splits CSS into top-level blocks (`selector{…}` or `@rule{…}`) without a full parser. */
function blocks(css: string): string[] {
  const result: string[] = [];
  let depth = 0;
  let start = 0;
  let quote: string | null = null;
  for (let i = 0; i < css.length; i++) {
    const ch = css[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) {
        result.push(css.slice(start, i + 1));
        start = i + 1;
      }
    } else if (ch === ';' && depth === 0) {
      result.push(css.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < css.length) result.push(css.slice(start));
  return result;
}

/** JavaScript chunks of the bundle: which code each holds and which chunks it imports statically. */
export interface ChunkCode {
  id: string;
  code: string;
  imports: string[];
}

/** Where each surviving rule goes: the first-load stylesheet, or one per lazy chunk. */
export interface CssPlan {
  main: string;
  byChunk: Map<string, string>;
}

/**
 * Purges `css` against the chunks' code and assigns every surviving rule a place.
 * `initial` are the chunks of the first load (the entry and what it imports statically).
 */
export function planCss(css: string, chunks: ChunkCode[], initial: Set<string>): CssPlan {
  const ids = chunks.map((c) => c.id);
  const byId = new Map(chunks.map((c) => [c.id, c]));
  // Which chunks hold each WDS class name, computed once per name.
  const holders = new Map<string, Set<string>>();
  const holdersOf = (kind: string, name: string) => {
    const key = kind + name;
    let found = holders.get(key);
    if (!found) {
      found = new Set(chunks.filter((c) => isUsed(kind, name, c.code)).map((c) => c.id));
      holders.set(key, found);
    }
    return found;
  };
  // A lazy chunk runs with the first-load chunks and its static imports around it.
  const closure = (id: string, seen = new Set<string>()): Set<string> => {
    if (seen.has(id)) return seen;
    seen.add(id);
    for (const next of byId.get(id)?.imports ?? []) closure(next, seen);
    return seen;
  };
  const lazy = ids.filter((id) => !initial.has(id));
  const contexts = new Map(lazy.map((id) => [id, new Set([...initial, ...closure(id)])]));
  const everything = new Set(ids);

  /** Whether some selector of the rule has all its WDS classes in the given chunks. */
  const usedIn = (head: string, available: Set<string>, without?: string) =>
    head.split(',').some((selector) => {
      for (const match of selector.matchAll(CLASS)) {
        const found = holdersOf(match[1], match[2]);
        let any = false;
        for (const id of found) {
          if (id !== without && available.has(id)) {
            any = true;
            break;
          }
        }
        if (!any) return false;
      }
      return true;
    });

  const walk = (text: string): { main: string[]; byChunk: Map<string, string[]> } => {
    const main: string[] = [];
    const byChunk = new Map<string, string[]>();
    const add = (id: string, block: string) => {
      const list = byChunk.get(id) ?? [];
      list.push(block);
      byChunk.set(id, list);
    };
    for (const block of blocks(text)) {
      const open = block.indexOf('{');
      if (open < 0) {
        main.push(block);
        continue;
      }
      const head = block.slice(0, open);
      if (/^\s*@(media|supports|container|layer)/.test(head)) {
        const inner = walk(block.slice(open + 1, -1));
        const wrap = (parts: string[]) => `${head}{${parts.join('')}}`;
        if (inner.main.join('').trim()) main.push(wrap(inner.main));
        for (const [id, parts] of inner.byChunk) add(id, wrap(parts));
      } else if (/^\s*@/.test(head) || !head.includes(PREFIX)) {
        main.push(block);
      } else if (!usedIn(head, everything)) {
        // No chunk renders this component: purged.
      } else if (usedIn(head, initial)) {
        main.push(block);
      } else {
        // The chunks whose code the rule needs (the rule holds with the chunk, not without it).
        const owners = lazy.filter((id) => usedIn(head, contexts.get(id)!) && !usedIn(head, contexts.get(id)!, id));
        if (owners.length === 0) main.push(block);
        for (const id of owners) add(id, block);
      }
    }
    return { main, byChunk };
  };

  const result = walk(css);
  return {
    main: result.main.join(''),
    byChunk: new Map([...result.byChunk].map(([id, parts]) => [id, parts.join('')])),
  };
}

/** Purges `css` against all of `code` (no splitting). */
export function purge(css: string, code: string): string {
  return planCss(css, [{ id: 'all', code, imports: [] }], new Set(['all'])).main;
}

export function purgeWdsCss(): Plugin {
  return {
    name: 'purge-unused-wds-css',
    apply: 'build',
    // Runs before Vite's import analysis, which turns each chunk's stylesheets into the
    // preload list of the dynamic import that loads it.
    enforce: 'post',
    generateBundle(_options, bundle) {
      const jsChunks = Object.values(bundle).filter((item) => item.type === 'chunk');
      const chunks: ChunkCode[] = jsChunks.map((chunk) => ({ id: chunk.fileName, code: chunk.code, imports: chunk.imports }));
      const initial = new Set<string>();
      const addInitial = (id: string) => {
        if (initial.has(id)) return;
        initial.add(id);
        const chunk = bundle[id];
        if (chunk?.type === 'chunk') chunk.imports.forEach(addInitial);
      };
      jsChunks.filter((chunk) => chunk.isEntry).forEach((chunk) => addInitial(chunk.fileName));

      for (const item of Object.values(bundle)) {
        if (item.type !== 'asset' || !item.fileName.endsWith('.css') || typeof item.source !== 'string') continue;
        if (!item.source.includes(PREFIX)) continue;
        // Split only the stylesheet of the first load; any other is purged in place.
        const firstLoad = jsChunks.some((chunk) => initial.has(chunk.fileName) && chunk.viteMetadata?.importedCss.has(item.fileName));
        const plan = planCss(item.source, chunks, firstLoad ? initial : new Set(chunks.map((c) => c.id)));
        item.source = plan.main;
        rehash(bundle, item);
        for (const [id, source] of plan.byChunk) {
          const chunk = bundle[id];
          if (chunk?.type !== 'chunk' || !chunk.viteMetadata) continue;
          const name = `${chunk.name}.wds.css`;
          const reference = this.emitFile({ type: 'asset', name, source });
          chunk.viteMetadata.importedCss.add(this.getFileName(reference));
        }
      }
    },
  };
}

/**
 * Vite named the stylesheet after the hash of the full WDS stylesheet, which does not change
 * when the purge keeps other rules; assets are cached as immutable, so the name must follow
 * the content. Renames the asset and every reference made to it so far.
 */
function rehash(bundle: Rollup.OutputBundle, asset: Rollup.OutputAsset): void {
  const hash = createHash('sha256').update(asset.source).digest('base64url').replace(/[-_]/g, '').slice(0, 8);
  const old = asset.fileName;
  const renamed = old.replace(/-[A-Za-z0-9_-]{8}\.css$/, `-${hash}.css`);
  if (renamed === old) return;
  delete bundle[old];
  asset.fileName = renamed;
  bundle[renamed] = asset;
  for (const item of Object.values(bundle)) {
    if (item.type === 'chunk') {
      if (item.viteMetadata?.importedCss.delete(old)) item.viteMetadata.importedCss.add(renamed);
      item.code = item.code.split(old).join(renamed);
    } else if (typeof item.source === 'string' && item.fileName.endsWith('.html')) {
      item.source = item.source.split(old).join(renamed);
    }
  }
}

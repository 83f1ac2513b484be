// The Wix Design System ships one global stylesheet (~120 KB gzipped) with the styles of
// every component. This build step keeps only the rules of components our bundle can render:
// a rule survives when every WDS class in (at least one of) its selectors belongs to a
// component whose class namespace appears in our JavaScript. Non-WDS rules are untouched.
import type { Plugin } from 'vite';

const PREFIX = 'wds_1_328_0';
const CLASS = new RegExp(`\\.${PREFIX}([_-])([A-Za-z0-9-]+?)(?=__|--|[^A-Za-z0-9-]|$)`, 'g');

function isUsed(kind: string, name: string, code: string): boolean {
  // `wds_1_328_0_Button__root`: the JS holds the namespace `wds_1_328_0_Button`.
  if (kind === '_') return code.includes(`${PREFIX}_${name}`);
  // `wds_1_328_0-section-helper--skin`: the JS names the block `"section-helper"`.
  return code.includes(`"${name}"`) || code.includes(`'${name}'`) || code.includes(`${PREFIX}-${name}`);
}

function selectorUsed(selector: string, code: string): boolean {
  for (const match of selector.matchAll(CLASS)) {
    if (!isUsed(match[1], match[2], code)) return false;
  }
  return true;
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

export function purge(css: string, code: string): string {
  const kept: string[] = [];
  for (const block of blocks(css)) {
    const open = block.indexOf('{');
    if (open < 0) {
      kept.push(block);
      continue;
    }
    const head = block.slice(0, open);
    if (/^\s*@(media|supports|container|layer)/.test(head)) {
      const inner = purge(block.slice(open + 1, -1), code);
      if (inner.trim()) kept.push(`${head}{${inner}}`);
    } else if (/^\s*@/.test(head)) {
      kept.push(block);
    } else if (head.split(',').some((selector) => selectorUsed(selector, code))) {
      kept.push(block);
    }
  }
  return kept.join('');
}

export function purgeWdsCss(): Plugin {
  return {
    name: 'purge-unused-wds-css',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      const code = Object.values(bundle)
        .map((item) => (item.type === 'chunk' ? item.code : ''))
        .join('\n');
      for (const item of Object.values(bundle)) {
        if (item.type === 'asset' && item.fileName.endsWith('.css') && typeof item.source === 'string') {
          item.source = purge(item.source, code);
        }
      }
    },
  };
}

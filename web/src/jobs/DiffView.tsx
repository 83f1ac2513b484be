// Before/after views of one optimized field: a highlighted word diff, or the two versions
// side by side as (sanitized) rendered HTML.
import { useMemo } from 'react';
import type { AttributeId, ContentValue, InfoSection } from '../api';
import { diffWords, htmlToText, splitLead } from '../components/diff';
import { sanitizeHtml } from '../components/format';

const HTML_FIELDS = new Set<AttributeId>(['description']);

export function TextDiff({ before, after }: { before: string; after: string }) {
  const segments = useMemo(() => diffWords(before, after), [before, after]);
  if (segments.length === 0) return <p className="uo-diff uo-muted">(empty)</p>;
  return (
    <p className="uo-diff" data-hook="text-diff">
      {segments.map((segment, index) => {
        if (segment.kind === 'same') return <span key={index}>{segment.text}</span>;
        const [lead, words] = splitLead(segment.text);
        return (
          <span key={index}>
            {lead}
            {segment.kind === 'removed' ? (
              <del className="uo-del" data-hook="diff-removed">
                {words}
              </del>
            ) : (
              <ins className="uo-ins" data-hook="diff-added">
                {words}
              </ins>
            )}
          </span>
        );
      })}
    </p>
  );
}

function asSections(value: ContentValue | null): InfoSection[] {
  return Array.isArray(value) ? value : [];
}

function asText(value: ContentValue | null): string {
  return typeof value === 'string' ? value : '';
}

function Rendered({ html, label }: { html: string; label: string }) {
  return (
    <div className="uo-rendered-column">
      <div className="uo-column-label">{label}</div>
      {html.trim() ? (
        <div className="uo-description" data-hook="rendered-html" dangerouslySetInnerHTML={{ __html: sanitizeHtml(html) }} />
      ) : (
        <p className="uo-muted">(empty)</p>
      )}
    </div>
  );
}

/** The change of one field. `after` null (not optimized yet, or failed) shows the current text only. */
export function ValueDiff({
  attribute,
  before,
  after,
  rendered,
}: {
  attribute: AttributeId;
  before: ContentValue | null;
  after: ContentValue | null;
  rendered: boolean;
}) {
  if (attribute === 'info_sections' || Array.isArray(before) || Array.isArray(after)) {
    const a = asSections(before);
    const b = after === null ? a : asSections(after);
    const count = Math.max(a.length, b.length);
    if (count === 0) return <p className="uo-diff uo-muted">(no sections)</p>;
    return (
      <div className="uo-sections">
        {Array.from({ length: count }, (_, index) => {
          const old = a[index] ?? { title: '', html: '' };
          const next = b[index] ?? { title: '', html: '' };
          return (
            <div key={index} className="uo-section" data-hook="section-diff">
              <div className="uo-section-title">
                <TextDiff before={old.title} after={next.title} />
              </div>
              {rendered ? (
                <div className="uo-rendered">
                  <Rendered label="Before" html={old.html} />
                  <Rendered label="After" html={next.html} />
                </div>
              ) : (
                <TextDiff before={htmlToText(old.html)} after={htmlToText(next.html)} />
              )}
            </div>
          );
        })}
      </div>
    );
  }
  const html = HTML_FIELDS.has(attribute);
  const oldText = asText(before);
  const newText = after === null ? oldText : asText(after);
  if (html && rendered) {
    return (
      <div className="uo-rendered">
        <Rendered label="Before" html={oldText} />
        <Rendered label="After" html={newText} />
      </div>
    );
  }
  return <TextDiff before={html ? htmlToText(oldText) : oldText} after={html ? htmlToText(newText) : newText} />;
}

/** A value as it stands (the store's current value on a conflict). */
export function ValuePreview({ attribute, value }: { attribute: AttributeId; value: ContentValue | null | undefined }) {
  if (value === null || value === undefined) return <p className="uo-muted">(unknown)</p>;
  if (Array.isArray(value)) {
    return (
      <div className="uo-sections">
        {value.map((section, index) => (
          <div key={index} className="uo-section">
            <div className="uo-section-title">{section.title}</div>
            <p className="uo-diff">{htmlToText(section.html)}</p>
          </div>
        ))}
      </div>
    );
  }
  return <p className="uo-diff" data-hook="current-value">{HTML_FIELDS.has(attribute) ? htmlToText(value) : value || '(empty)'}</p>;
}

export function isUnchanged(before: ContentValue | null, after: ContentValue | null): boolean {
  return after !== null && JSON.stringify(before) === JSON.stringify(after);
}

export function hasHtml(attribute: AttributeId): boolean {
  return HTML_FIELDS.has(attribute) || attribute === 'info_sections';
}

function wording(attribute: AttributeId, value: ContentValue | null): string {
  if (Array.isArray(value)) return value.map((s) => `${s.title}\n${htmlToText(s.html)}`).join('\n');
  const text = value ?? '';
  return (HTML_FIELDS.has(attribute) ? htmlToText(text) : text).replace(/\s+/g, ' ').trim();
}

/** The markup changed but not a word of the text (so the diff highlights nothing). */
export function sameWording(item: { attribute: AttributeId; before: ContentValue | null; after: ContentValue | null }): boolean {
  return item.after !== null && !isUnchanged(item.before, item.after) && wording(item.attribute, item.before) === wording(item.attribute, item.after);
}

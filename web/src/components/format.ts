import type { ProductSummary } from '../api';

export function formatPrice(price: string | null | undefined, currency: string): string {
  if (!price) return '—';
  const amount = Number(price);
  if (Number.isNaN(amount)) return `${price} ${currency}`;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount);
  } catch {
    return `${price} ${currency}`;
  }
}

export const AVAILABILITY_LABEL: Record<ProductSummary['availability'], string> = {
  in_stock: 'In stock',
  out_of_stock: 'Out of stock',
  preorder: 'Preorder',
};

const ALLOWED_TAGS = new Set(['P', 'BR', 'UL', 'OL', 'LI', 'STRONG', 'EM', 'B', 'I', 'H3', 'H4', 'H5', 'SPAN', 'BLOCKQUOTE']);

/** Product descriptions come from stores and files: keep only harmless formatting tags,
 * drop every attribute, script and style, before showing them. */
export function sanitizeHtml(html: string): string {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
  const clean = (node: Node, into: Node) => {
    node.childNodes.forEach((child) => {
      if (child.nodeType === Node.TEXT_NODE) {
        into.appendChild(document.createTextNode(child.textContent ?? ''));
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        const element = child as Element;
        if (element.tagName === 'SCRIPT' || element.tagName === 'STYLE') return;
        if (ALLOWED_TAGS.has(element.tagName)) {
          const copy = document.createElement(element.tagName.toLowerCase());
          clean(element, copy);
          into.appendChild(copy);
        } else {
          clean(element, into);
        }
      }
    });
  };
  const container = document.createElement('div');
  clean(doc.body, container);
  return container.innerHTML;
}

// Words and badges shared by the optimizer, queue and completed-jobs pages.
import { Badge } from '@wix/design-system';
import type { AttributeId, Job, JobStatus } from '../api';

export const ATTRIBUTE_LABEL: Record<AttributeId, string> = {
  title: 'Product title',
  description: 'Description',
  seo_title: 'SEO title',
  seo_description: 'Meta description',
  info_sections: 'Info sections',
};

export const STATUS_LABEL: Record<JobStatus, string> = {
  pending: 'Waiting',
  running: 'Running',
  done: 'Done',
  failed: 'Failed',
  canceled: 'Canceled',
};

const STATUS_SKIN = {
  pending: 'neutralLight',
  running: 'standard',
  done: 'success',
  failed: 'danger',
  canceled: 'neutral',
} as const;

export function StatusBadge({ status, dataHook }: { status: JobStatus; dataHook?: string }) {
  return (
    <Badge size="small" skin={STATUS_SKIN[status]} dataHook={dataHook ?? 'status-badge'}>
      {STATUS_LABEL[status]}
    </Badge>
  );
}

export function isTerminal(status: JobStatus): boolean {
  return status === 'done' || status === 'failed' || status === 'canceled';
}

export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}

/** "Product title, Description" */
export function attributeList(attributes: AttributeId[]): string {
  return attributes.map((a) => ATTRIBUTE_LABEL[a] ?? a).join(', ');
}

/** "2 products × 2 fields" */
export function jobSize(job: Job): string {
  return `${plural(job.productCount, 'product')} × ${plural(job.attributes.length, 'field')}`;
}

export function formatDateTime(iso: string | null): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? `Today, ${date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' })}`
    : date.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

/** "3 of 4 items done · 1 failed" */
export function countsSummary(job: Job): string {
  const { counts } = job;
  const parts = [`${counts.done.toLocaleString()} of ${plural(counts.total, 'item')} done`];
  if (counts.failed) parts.push(`${counts.failed.toLocaleString()} failed`);
  if (counts.canceled) parts.push(`${counts.canceled.toLocaleString()} canceled`);
  return parts.join(' · ');
}

/** Words for a 402 `insufficient_credits`. */
export function shortfallMessage(required: number, remaining: number, what = 'This job'): string {
  return `${what} needs ${plural(required, 'credit')}, but your account has ${plural(remaining, 'credit')} left this month.`;
}

/** Server messages are phrases ("the AI provider did not answer"); shown alone they read as sentences. */
export function sentence(message: string): string {
  const text = message.trim();
  if (!text) return text;
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

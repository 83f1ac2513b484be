// The before/after drawer of one job: every item's change as a word diff, publish and
// revert per item or in bulk, conflicts explained with the store's current value, and a
// retry of the failed items.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link as RouterLink } from 'react-router-dom';
import {
  Badge,
  Box,
  Button,
  Checkbox,
  Loader,
  Modal,
  SectionHelper,
  SidePanel,
  Text,
  ToggleSwitch,
} from '@wix/design-system';
import { ApiError, api, creditShortfall, type Job, type JobItem, type PublishResult } from '../api';
import { asApiError } from '../components/forms';
import { ValueDiff, ValuePreview, hasHtml, isUnchanged, sameWording } from './DiffView';
import { ATTRIBUTE_LABEL, StatusBadge, countsSummary, formatDateTime, jobSize, plural, sentence, shortfallMessage } from './labels';

const ITEM_PAGE = 50;
const PUBLISH_BATCH = 500;

type Action = 'publish' | 'revert';

interface Outcome {
  action: Action;
  result: PublishResult;
}

interface Notice {
  appearance: 'success' | 'danger' | 'warning' | 'premium';
  text: string;
  link?: { to: string; label: string };
}

function later(a: string | null, b: string | null): boolean {
  if (!a) return false;
  if (!b) return true;
  return new Date(a).getTime() >= new Date(b).getTime();
}

/** Whether the store holds the optimized value now (published and not reverted since). */
export function isPublished(item: JobItem): boolean {
  return later(item.publishedAt, item.revertedAt);
}

function bulkSummary(action: Action, results: PublishResult[]): Notice {
  const done = results.filter((r) => r.outcome === 'published' || r.outcome === 'reverted').length;
  const unchanged = results.filter((r) => r.outcome === 'unchanged').length;
  const conflicts = results.filter((r) => r.outcome === 'conflict').length;
  const errors = results.filter((r) => r.outcome === 'error').length;
  const verb = action === 'publish' ? 'Published' : 'Reverted';
  const parts = [`${verb} ${plural(done, 'item')}`];
  if (unchanged) parts.push(`${unchanged.toLocaleString()} already ${action === 'publish' ? 'published' : 'reverted'}`);
  if (conflicts) parts.push(`${conflicts.toLocaleString()} changed in the store meanwhile`);
  if (errors) parts.push(`${errors.toLocaleString()} failed`);
  return {
    appearance: conflicts || errors ? 'warning' : 'success',
    text: `${parts.join(', ')}.${conflicts || errors ? ' See the items below.' : ''}`,
  };
}

export function JobReview({ jobId, onClose, onJobChanged }: { jobId: string; onClose: () => void; onJobChanged: (job: Job) => void }) {
  const [job, setJob] = useState<Job | null>(null);
  const [items, setItems] = useState<JobItem[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [rendered, setRendered] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [outcomes, setOutcomes] = useState<Map<string, Outcome>>(new Map());
  const [busy, setBusy] = useState<string | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);

  const loadItems = useCallback(async () => {
    const page = await api.jobItems(jobId, { limit: ITEM_PAGE });
    setItems(page.items);
    setCursor(page.nextCursor);
  }, [jobId]);

  useEffect(() => {
    setJob(null);
    setItems(null);
    setError(null);
    setSelected(new Set());
    setOutcomes(new Map());
    setNotice(null);
    Promise.all([api.job(jobId).then(setJob), loadItems()]).catch((err) => setError(asApiError(err).message));
  }, [jobId, loadItems]);

  async function loadMore() {
    if (!cursor) return;
    setLoadingMore(true);
    try {
      const page = await api.jobItems(jobId, { cursor, limit: ITEM_PAGE });
      setItems((current) => [...(current ?? []), ...page.items]);
      setCursor(page.nextCursor);
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setLoadingMore(false);
    }
  }

  /** Publishes or reverts items; records each outcome and what it means for the item. */
  async function send(action: Action, ids: string[], force = false, key: string = action): Promise<PublishResult[] | null> {
    if (ids.length === 0) return [];
    setBusy(key);
    setNotice(null);
    try {
      const results: PublishResult[] = [];
      // The API takes a bounded number of items per call.
      for (let start = 0; start < ids.length; start += PUBLISH_BATCH) {
        const batch = ids.slice(start, start + PUBLISH_BATCH);
        const answer = action === 'publish' ? await api.publish(batch, force) : await api.revert(batch, force);
        results.push(...answer.results);
      }
      const now = new Date().toISOString();
      const byId = new Map(results.map((r) => [r.itemId, r]));
      setOutcomes((current) => {
        const next = new Map(current);
        for (const result of results) next.set(result.itemId, { action, result });
        return next;
      });
      setItems((current) =>
        (current ?? []).map((item) => {
          const result = byId.get(item.id);
          if (!result) return item;
          if (result.outcome === 'published') return { ...item, publishedAt: now };
          if (result.outcome === 'reverted') return { ...item, publishedAt: null, revertedAt: now };
          return item;
        }),
      );
      // What went through leaves the selection; what needs attention stays selected.
      const settled = (id: string) => ['published', 'reverted', 'unchanged'].includes(byId.get(id)?.outcome ?? '');
      setSelected((current) => new Set([...current].filter((id) => !settled(id))));
      return results;
    } catch (err) {
      setNotice({ appearance: 'danger', text: asApiError(err).message });
      return null;
    } finally {
      setBusy(null);
    }
  }

  async function sendBulk(action: Action, ids: string[]) {
    const results = await send(action, ids, false, `bulk-${action}`);
    if (results && results.length > 0) setNotice(bulkSummary(action, results));
  }

  /** Every done item of the job that is not in the store yet, across all item pages. */
  async function publishAllDone() {
    setBusy('publish-all');
    setNotice(null);
    const ids: string[] = [];
    try {
      let next: string | undefined;
      do {
        const page = await api.jobItems(jobId, { status: ['done'], cursor: next, limit: 100 });
        for (const item of page.items) {
          const local = items?.find((i) => i.id === item.id) ?? item;
          if (!isPublished(local)) ids.push(item.id);
        }
        next = page.nextCursor ?? undefined;
      } while (next);
    } catch (err) {
      setNotice({ appearance: 'danger', text: asApiError(err).message });
      setBusy(null);
      return;
    }
    if (ids.length === 0) {
      setBusy(null);
      setNotice({ appearance: 'success', text: 'Every done item is published already.' });
      return;
    }
    const results = await send('publish', ids, false, 'publish-all');
    if (results) setNotice(bulkSummary('publish', results));
  }

  async function retry() {
    if (!job) return;
    setBusy('retry');
    setNotice(null);
    try {
      const updated = await api.retryJob(job.id);
      setJob(updated);
      onJobChanged(updated);
      const again = updated.counts.pending;
      setNotice({
        appearance: 'success',
        text: `${plural(again, 'failed item')} ${again === 1 ? 'is' : 'are'} queued again and charged again.`,
        link: { to: '/queue', label: 'Follow it in the Queue' },
      });
      await loadItems();
    } catch (err) {
      const apiError = asApiError(err);
      const shortfall = creditShortfall(apiError);
      setNotice(
        shortfall
          ? {
              appearance: 'premium',
              text: `${shortfallMessage(shortfall.required, shortfall.remaining, 'Retrying the failed items')} Upgrade your plan to retry them.`,
              link: { to: '/account', label: 'Upgrade plan' },
            }
          : apiError.code === 'nothing_to_retry'
            ? { appearance: 'warning', text: 'No item of this job has failed, so there is nothing to retry.' }
            : { appearance: 'danger', text: retryError(apiError) },
      );
    } finally {
      setBusy(null);
    }
  }

  const groups = useMemo(() => {
    const byProduct = new Map<string, { productId: string; title: string; items: JobItem[] }>();
    for (const item of items ?? []) {
      const group = byProduct.get(item.productId) ?? { productId: item.productId, title: item.productTitle, items: [] };
      group.items.push(item);
      byProduct.set(item.productId, group);
    }
    return [...byProduct.values()];
  }, [items]);

  const selectable = (items ?? []).filter((item) => item.status === 'done');
  const allSelected = selectable.length > 0 && selectable.every((item) => selected.has(item.id));
  const selectedItems = selectable.filter((item) => selected.has(item.id));
  const toPublish = selectedItems.filter((item) => !isPublished(item)).map((item) => item.id);
  const toRevert = selectedItems.filter(isPublished).map((item) => item.id);
  const showHtmlToggle = (items ?? []).some((item) => hasHtml(item.attribute)) || (job?.attributes ?? []).some(hasHtml);

  function toggle(id: string) {
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  return (
    <Modal
      isOpen
      onRequestClose={onClose}
      shouldCloseOnOverlayClick
      horizontalPosition="end"
      verticalPosition="start"
      screen="full"
      transition="moveHorizontal"
      contentLabel="Job results"
      dataHook="job-review-modal"
    >
      <div className="uo-drawer">
        <SidePanel width="min(920px, 100vw)" height="100vh" closeButtonProps={{ onClick: onClose, ariaLabel: 'Close' }} dataHook="job-review">
          <SidePanel.Header
            title="Before and after"
            subtitle={job ? `${jobSize(job)} · ${job.storeName} · ${formatDateTime(job.finishedAt ?? job.createdAt)}` : 'Loading…'}
          >
            {job && (
              <Box padding="0 24px 12px" gap="12px" verticalAlign="middle" dataHook="review-summary">
                <StatusBadge status={job.status} dataHook="review-status" />
                <Text size="small" secondary>
                  {countsSummary(job)} · {plural(job.credits.charged, 'credit')} charged
                  {job.credits.refunded ? `, ${job.credits.refunded.toLocaleString()} refunded` : ''}
                </Text>
              </Box>
            )}
          </SidePanel.Header>
          <SidePanel.Content>
            <Box direction="vertical" gap="18px" paddingBottom="24px">
              {error && (
                <SectionHelper appearance="danger" dataHook="review-error">
                  {error}
                </SectionHelper>
              )}
              {items === null && !error && <Loader size="medium" />}
              {items && (
                <div className="uo-review-toolbar">
                  <Checkbox
                    checked={allSelected}
                    indeterminate={selected.size > 0 && !allSelected}
                    disabled={selectable.length === 0}
                    onChange={() => setSelected(allSelected ? new Set() : new Set(selectable.map((item) => item.id)))}
                    dataHook="select-all-items"
                  >
                    {selected.size > 0 ? `${plural(selected.size, 'item')} selected` : 'Select all done items'}
                  </Checkbox>
                  <Box gap="8px" verticalAlign="middle" className="uo-review-actions">
                    {selected.size > 0 && (
                      <>
                        <Button size="small" disabled={busy !== null || toPublish.length === 0} onClick={() => sendBulk('publish', toPublish)} dataHook="publish-selected">
                          {busy === 'bulk-publish' ? <Loader size="tiny" /> : `Publish selected (${toPublish.length})`}
                        </Button>
                        <Button
                          size="small"
                          priority="secondary"
                          disabled={busy !== null || toRevert.length === 0}
                          onClick={() => sendBulk('revert', toRevert)}
                          dataHook="revert-selected"
                        >
                          {busy === 'bulk-revert' ? <Loader size="tiny" /> : `Revert selected (${toRevert.length})`}
                        </Button>
                      </>
                    )}
                    {selected.size === 0 && (
                      <Button size="small" disabled={busy !== null || (job?.counts.done ?? 0) === 0} onClick={publishAllDone} dataHook="publish-all">
                        {busy === 'publish-all' ? <Loader size="tiny" /> : 'Publish all done items'}
                      </Button>
                    )}
                    {job && job.counts.failed > 0 && (
                      <Button size="small" priority="secondary" disabled={busy !== null} onClick={retry} dataHook="retry-failed">
                        {busy === 'retry' ? <Loader size="tiny" /> : `Retry failed items (${job.counts.failed})`}
                      </Button>
                    )}
                  </Box>
                  {showHtmlToggle && (
                    <label className="uo-toggle-label">
                      <ToggleSwitch size="small" checked={rendered} onChange={() => setRendered((r) => !r)} dataHook="render-html" />
                      <Text size="small">Show formatted HTML</Text>
                    </label>
                  )}
                </div>
              )}
              {notice && (
                <SectionHelper appearance={notice.appearance} dataHook="review-notice">
                  {notice.text}{' '}
                  {notice.link && (
                    <RouterLink to={notice.link.to} data-hook="review-notice-link">
                      {notice.link.label}
                    </RouterLink>
                  )}
                </SectionHelper>
              )}
              {items && items.length === 0 && (
                <Text secondary dataHook="review-empty">
                  This job has no items.
                </Text>
              )}
              {groups.map((group) => (
                <section key={group.productId} className="uo-review-product" data-hook="review-product" aria-label={group.title}>
                  <Box verticalAlign="middle" align="space-between" gap="12px">
                    <Text weight="bold" dataHook="review-product-title">
                      {group.title}
                    </Text>
                    <RouterLink to={`/products/${group.productId}`} className="uo-small-link">
                      Open product
                    </RouterLink>
                  </Box>
                  {group.items.map((item) => (
                    <ItemCard
                      key={item.id}
                      item={item}
                      rendered={rendered}
                      selected={selected.has(item.id)}
                      onToggle={() => toggle(item.id)}
                      outcome={outcomes.get(item.id)}
                      busy={busy}
                      onSend={(action, force) => send(action, [item.id], force, `${action}-${item.id}`)}
                    />
                  ))}
                </section>
              ))}
              {cursor && (
                <Box>
                  <Button size="small" priority="secondary" onClick={loadMore} disabled={loadingMore} dataHook="items-load-more">
                    {loadingMore ? <Loader size="tiny" /> : 'Load more items'}
                  </Button>
                </Box>
              )}
            </Box>
          </SidePanel.Content>
        </SidePanel>
      </div>
    </Modal>
  );
}

function retryError(error: ApiError): string {
  return error.message || 'The failed items could not be queued again.';
}

function ItemCard({
  item,
  rendered,
  selected,
  onToggle,
  outcome,
  busy,
  onSend,
}: {
  item: JobItem;
  rendered: boolean;
  selected: boolean;
  onToggle: () => void;
  outcome: Outcome | undefined;
  busy: string | null;
  onSend: (action: Action, force: boolean) => void;
}) {
  const published = isPublished(item);
  const label = ATTRIBUTE_LABEL[item.attribute] ?? item.attribute;
  const unchanged = item.status === 'done' && isUnchanged(item.before, item.after);
  return (
    <article className={`uo-item${selected ? ' uo-selected' : ''}`} data-hook="review-item" data-item-id={item.id} data-attribute={item.attribute} aria-label={`${label} of ${item.productTitle}`}>
      <div className="uo-item-head">
        {item.status === 'done' ? (
          <Checkbox checked={selected} onChange={onToggle} dataHook="item-checkbox">
            <span className="uo-visually-hidden">Select {label} of {item.productTitle}</span>
          </Checkbox>
        ) : (
          <span className="uo-check-spacer" />
        )}
        <Text weight="bold" size="small">
          {label}
        </Text>
        <StatusBadge status={item.status} dataHook="item-status" />
        {item.status === 'done' && (published || item.revertedAt) && (
          <Badge size="small" skin={published ? 'success' : 'neutralLight'} type="outlined" dataHook="item-published">
            {published ? 'Published' : 'Reverted'}
          </Badge>
        )}
        <span className="uo-item-spacer" />
        {item.status === 'done' && (
          <Box gap="6px">
            <Button size="tiny" disabled={busy !== null || published} onClick={() => onSend('publish', false)} dataHook="publish-item">
              {busy === `publish-${item.id}` ? <Loader size="tiny" /> : 'Publish'}
            </Button>
            <Button size="tiny" priority="secondary" disabled={busy !== null || !published} onClick={() => onSend('revert', false)} dataHook="revert-item">
              {busy === `revert-${item.id}` ? <Loader size="tiny" /> : 'Revert'}
            </Button>
          </Box>
        )}
      </div>
      {item.status === 'failed' ? (
        <SectionHelper appearance="danger" dataHook="item-error">
          {item.error ? sentence(item.error.message) : 'This field could not be optimized.'}
          {item.attempts > 1 ? ` (tried ${item.attempts} times)` : ''}
        </SectionHelper>
      ) : item.status === 'canceled' ? (
        <Text size="small" secondary>
          Canceled before it was optimized; its credit was refunded.
        </Text>
      ) : item.status === 'pending' || item.status === 'running' ? (
        <Text size="small" secondary>
          {item.status === 'running' ? 'Being optimized right now…' : 'Waiting to be optimized.'}
        </Text>
      ) : unchanged ? (
        <Text size="small" secondary dataHook="item-unchanged">
          The optimizer kept this field as it was.
        </Text>
      ) : (
        <>
          {sameWording(item) && (
            <Text size="small" secondary dataHook="item-formatting-only">
              Only the formatting changed; the wording is the same.
            </Text>
          )}
          <ValueDiff attribute={item.attribute} before={item.before} after={item.after} rendered={rendered} />
        </>
      )}
      {outcome && <OutcomeNote item={item} outcome={outcome} busy={busy} onForce={() => onSend(outcome.action, true)} />}
    </article>
  );
}

function OutcomeNote({ item, outcome, busy, onForce }: { item: JobItem; outcome: Outcome; busy: string | null; onForce: () => void }) {
  const { action, result } = outcome;
  if (result.outcome === 'published') {
    return (
      <SectionHelper appearance="success" dataHook="item-outcome">
        Published: the store now shows the new text.
      </SectionHelper>
    );
  }
  if (result.outcome === 'reverted') {
    return (
      <SectionHelper appearance="success" dataHook="item-outcome">
        Reverted: the store shows the original text again.
      </SectionHelper>
    );
  }
  if (result.outcome === 'unchanged') {
    return (
      <SectionHelper appearance="standard" dataHook="item-outcome">
        {action === 'publish' ? 'Already published: nothing needed to change.' : 'Nothing to revert: the store already has the original text.'}
      </SectionHelper>
    );
  }
  if (result.outcome === 'conflict') {
    return (
      <SectionHelper appearance="warning" title="The store changed this field" dataHook="item-conflict">
        <Box direction="vertical" gap="8px">
          <span>
            {action === 'publish'
              ? 'Someone edited this field in the store after the optimizer read it. Publishing now would replace their edit. The store has:'
              : 'Someone edited this field in the store after it was published. Reverting now would replace their edit. The store has:'}
          </span>
          <div className="uo-current">
            <ValuePreview attribute={item.attribute} value={result.current} />
          </div>
          <Box>
            <Button size="tiny" skin="destructive" disabled={busy !== null} onClick={onForce} dataHook="overwrite-anyway">
              {busy === `${action}-${item.id}` ? <Loader size="tiny" /> : 'Overwrite anyway'}
            </Button>
          </Box>
        </Box>
      </SectionHelper>
    );
  }
  return (
    <SectionHelper appearance="danger" dataHook="item-outcome">
      {action === 'publish' ? 'Not published. ' : 'Not reverted. '}
      {result.error ? sentence(result.error.message) : `The store answered ${result.status}.`}
    </SectionHelper>
  );
}

import { useCallback, useEffect, useRef, useState } from 'react';
import { Link as RouterLink, useLocation } from 'react-router-dom';
import {
  Box,
  Button,
  Card,
  Heading,
  LinearProgressBar,
  Loader,
  MessageModalLayout,
  Modal,
  SectionHelper,
  Text,
} from '@wix/design-system';
import { api, type Job } from '../api';
import { asApiError } from '../components/forms';
import { useMe } from '../meContext';
import { StatusBadge, attributeList, countsSummary, formatDateTime, isTerminal, jobSize, plural } from '../jobs/labels';
import { useJobEvents } from '../jobs/useJobEvents';
import './jobs.css';

const ACTIVE = ['pending', 'running'] as const;
const LIMIT = 100;

export default function QueuePage() {
  const { reload: reloadMe } = useMe();
  const location = useLocation();
  const createdJobId = (location.state as { createdJobId?: string } | null)?.createdJobId;
  const [active, setActive] = useState<Job[] | null>(null);
  const [finished, setFinished] = useState<Job[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Job | null>(null);
  const activeRef = useRef<Job[] | null>(null);
  activeRef.current = active;
  // Jobs seen finishing on this page: a list fetched before they finished must not bring them back.
  const finishedIds = useRef(new Set<string>());
  const [openedAt] = useState(() => Date.now());

  /** A job reached a terminal state: it leaves the queue for the "finished" list. */
  const finish = useCallback(
    (job: Job) => {
      const already = finishedIds.current.has(job.id);
      finishedIds.current.add(job.id);
      setActive((current) => current && current.filter((j) => j.id !== job.id));
      setFinished((current) => [job, ...current.filter((j) => j.id !== job.id)]);
      // Failed and canceled items give their credits back.
      if (!already) reloadMe();
    },
    [reloadMe],
  );

  const upsert = useCallback(
    (job: Job) => {
      if (isTerminal(job.status)) {
        // A job that finishes while the queue is open is shown even if it was never seen
        // waiting (small jobs can finish between two updates).
        const known = activeRef.current?.some((j) => j.id === job.id) || job.id === createdJobId;
        const justNow = job.finishedAt !== null && new Date(job.finishedAt).getTime() >= openedAt - 5_000;
        if (known || justNow) finish(job);
        return;
      }
      // Events arrive in order: a job that runs again after finishing was retried.
      finishedIds.current.delete(job.id);
      setActive((current) => {
        const list = current ?? [];
        const index = list.findIndex((j) => j.id === job.id);
        if (index < 0) return [job, ...list];
        const next = [...list];
        next[index] = job;
        return next;
      });
      setFinished((current) => current.filter((j) => j.id !== job.id));
    },
    [createdJobId, finish, openedAt],
  );

  const refresh = useCallback(async () => {
    try {
      const page = await api.jobs({ status: [...ACTIVE], limit: LIMIT });
      page.items = page.items.filter((j) => !finishedIds.current.has(j.id));
      const fresh = new Set(page.items.map((j) => j.id));
      const oldest = page.items[page.items.length - 1]?.createdAt;
      // Jobs that left the list finished meanwhile: ask for their final state.
      const gone = (activeRef.current ?? []).filter(
        (j) => !fresh.has(j.id) && (!page.nextCursor || (oldest !== undefined && j.createdAt >= oldest)),
      );
      setActive((current) => {
        // Jobs older than the first page stay as "Load more" brought them.
        const beyond = page.nextCursor
          ? (current ?? []).filter((j) => !fresh.has(j.id) && oldest !== undefined && j.createdAt < oldest)
          : [];
        // A list fetched while events arrived may be older than what an event brought.
        const merged = page.items.map((job) => {
          const known = current?.find((j) => j.id === job.id);
          return known && known.percent > job.percent ? known : job;
        });
        return [...merged, ...beyond];
      });
      if (activeRef.current === null) setCursor(page.nextCursor);
      setError(null);
      const finals = await Promise.all(gone.map((j) => api.job(j.id).catch(() => null)));
      for (const job of finals) if (job && isTerminal(job.status)) finish(job);
    } catch (err) {
      setError(asApiError(err).message);
    }
  }, [finish]);

  useEffect(() => {
    void refresh();
    // A job created a moment ago may have finished before the queue loaded.
    if (createdJobId) {
      api
        .job(createdJobId)
        .then((job) => isTerminal(job.status) && finish(job))
        .catch(() => undefined);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const mode = useJobEvents(upsert, refresh);

  async function loadMore() {
    if (!cursor) return;
    try {
      const page = await api.jobs({ status: [...ACTIVE], cursor, limit: LIMIT });
      setActive((current) => [...(current ?? []), ...page.items.filter((j) => !current?.some((c) => c.id === j.id))]);
      setCursor(page.nextCursor);
    } catch (err) {
      setError(asApiError(err).message);
    }
  }

  return (
    <Box direction="vertical" gap="24px">
      <Box verticalAlign="bottom" align="space-between" gap="12px">
        <Box direction="vertical" gap="4px">
          <Heading size="large" as="h2">
            Queue
          </Heading>
          <Text secondary>Jobs waiting or being optimized right now.</Text>
        </Box>
        <Box verticalAlign="middle" gap="6px" dataHook="queue-mode">
          <span className={`uo-live-dot ${mode}`} aria-hidden="true" />
          <Text size="small" secondary>
            {mode === 'live' ? 'Live updates' : mode === 'polling' ? 'Updating every 3 seconds' : 'Connecting…'}
          </Text>
        </Box>
      </Box>
      {error && (
        <SectionHelper appearance="danger" dataHook="queue-error">
          {error}
        </SectionHelper>
      )}
      {finished.length > 0 && (
        <Card dataHook="finished-jobs">
          <Card.Header title="Just finished" subtitle="These jobs left the queue. Review the changes before you publish them." />
          <Card.Divider />
          <Card.Content>
            <Box direction="vertical" gap="12px">
              {finished.map((job) => (
                <div key={job.id} className="uo-finished-row" data-hook="finished-job" data-job-id={job.id}>
                  <StatusBadge status={job.status} dataHook="finished-status" />
                  <Box direction="vertical" flex={1}>
                    <Text weight="bold" size="small">
                      {attributeList(job.attributes)}
                    </Text>
                    <Text size="tiny" secondary>
                      {jobSize(job)} · {countsSummary(job)}
                    </Text>
                  </Box>
                  <RouterLink to={`/jobs?job=${job.id}`} data-hook="view-results">
                    View results
                  </RouterLink>
                </div>
              ))}
            </Box>
          </Card.Content>
        </Card>
      )}
      {active === null ? (
        <Loader size="medium" />
      ) : active.length === 0 ? (
        <Card>
          <Card.Content>
            <Box direction="vertical" align="center" padding="36px" gap="8px" dataHook="queue-empty">
              <Text weight="bold">Nothing in the queue</Text>
              <Text secondary size="small">
                Start a job on the <RouterLink to="/optimizer">Optimizer</RouterLink>; finished jobs are under{' '}
                <RouterLink to="/jobs">Completed</RouterLink>.
              </Text>
            </Box>
          </Card.Content>
        </Card>
      ) : (
        <Box direction="vertical" gap="12px" dataHook="queue-list">
          {active.map((job) => (
            <QueueCard key={job.id} job={job} onCancel={() => setConfirming(job)} />
          ))}
          {cursor && (
            <Box>
              <Button size="small" priority="secondary" onClick={loadMore} dataHook="queue-load-more">
                Load more
              </Button>
            </Box>
          )}
        </Box>
      )}
      <CancelDialog
        job={confirming}
        onClose={() => setConfirming(null)}
        onCanceled={(job) => {
          setConfirming(null);
          finish(job);
        }}
      />
    </Box>
  );
}

function QueueCard({ job, onCancel }: { job: Job; onCancel: () => void }) {
  return (
    <Card dataHook="queue-job">
      <Card.Content>
        <div className="uo-queue-row" data-job-id={job.id}>
          <Box direction="vertical" gap="8px" flex={1}>
            <Box verticalAlign="middle" gap="8px">
              <StatusBadge status={job.status} dataHook="queue-status" />
              <Text weight="bold">{attributeList(job.attributes)}</Text>
            </Box>
            <Text size="small" secondary>
              {jobSize(job)} · {job.storeName} · started {formatDateTime(job.startedAt ?? job.createdAt)}
            </Text>
            <LinearProgressBar
              value={job.percent}
              showProgressIndication
              skin={job.counts.failed > 0 ? 'warning' : 'standard'}
              aria-label={`Progress of the job: ${job.percent}%`}
              dataHook="queue-progress"
            />
            <Text size="tiny" secondary dataHook="queue-counts">
              {countsSummary(job)}
              {job.counts.running ? ` · ${job.counts.running.toLocaleString()} in progress` : ''}
            </Text>
          </Box>
          <Button size="small" priority="secondary" skin="destructive" onClick={onCancel} dataHook="cancel-job">
            Cancel
          </Button>
        </div>
      </Card.Content>
    </Card>
  );
}

function CancelDialog({ job, onClose, onCanceled }: { job: Job | null; onClose: () => void; onCanceled: (job: Job) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setError(null);
    setBusy(false);
  }, [job?.id]);

  async function confirm() {
    if (!job) return;
    setBusy(true);
    setError(null);
    try {
      onCanceled(await api.cancelJob(job.id));
    } catch (err) {
      setError(asApiError(err).message);
      setBusy(false);
    }
  }

  const waiting = job ? job.counts.pending : 0;
  const running = job ? job.counts.running : 0;
  return (
    <Modal isOpen={job !== null} onRequestClose={onClose} shouldCloseOnOverlayClick contentLabel="Cancel this job?">
      <MessageModalLayout
        theme="destructive"
        title="Cancel this job?"
        primaryButtonText={busy ? <Loader size="tiny" /> : 'Cancel job'}
        primaryButtonProps={{ disabled: busy, dataHook: 'confirm-cancel' }}
        primaryButtonOnClick={confirm}
        secondaryButtonText="Keep it running"
        secondaryButtonOnClick={onClose}
        onCloseButtonClick={onClose}
        dataHook="cancel-dialog"
      >
        <Box direction="vertical" gap="12px">
          <Text>
            {waiting > 0
              ? `${plural(waiting, 'item')} not started yet will be canceled and ${waiting === 1 ? 'its credit' : 'their credits'} refunded.`
              : 'Every item has started already, so nothing will be refunded.'}
            {running > 0 ? ` ${plural(running, 'item')} being optimized right now will finish and be charged.` : ''}
            {' '}Finished items stay available for review.
          </Text>
          {error && <SectionHelper appearance="danger">{error}</SectionHelper>}
        </Box>
      </MessageModalLayout>
    </Modal>
  );
}

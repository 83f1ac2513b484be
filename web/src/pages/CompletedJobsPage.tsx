import { useCallback, useEffect, useState } from 'react';
import { Link as RouterLink, useSearchParams } from 'react-router-dom';
import { Box, Button, Card, Heading, Loader, SectionHelper, SegmentedToggle, Text } from '@wix/design-system';
import { api, type Job, type JobStatus } from '../api';
import { asApiError } from '../components/forms';
import { useMe } from '../meContext';
import { JobReview } from '../jobs/JobReview';
import { StatusBadge, attributeList, formatDateTime, isTerminal, plural } from '../jobs/labels';
import './catalog.css';
import './jobs.css';

const PAGE_SIZE = 20;
const FILTERS: Record<string, JobStatus[]> = {
  all: ['done', 'failed', 'canceled'],
  done: ['done'],
  failed: ['failed'],
  canceled: ['canceled'],
};

export default function CompletedJobsPage() {
  const { reload: reloadMe } = useMe();
  const [params, setParams] = useSearchParams();
  const filter = params.get('status') && FILTERS[params.get('status')!] ? params.get('status')! : 'all';
  const openJobId = params.get('job');
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const setParam = (key: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: key === 'status' });
  };

  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    setError(null);
    api
      .jobs({ status: FILTERS[filter], limit: PAGE_SIZE })
      .then((page) => {
        if (cancelled) return;
        setJobs(page.items);
        setCursor(page.nextCursor);
      })
      .catch((err) => !cancelled && setError(asApiError(err).message))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
  }, [filter]);

  async function loadMore() {
    if (!cursor) return;
    setLoading(true);
    try {
      const page = await api.jobs({ status: FILTERS[filter], cursor, limit: PAGE_SIZE });
      setJobs((current) => [...(current ?? []), ...page.items]);
      setCursor(page.nextCursor);
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setLoading(false);
    }
  }

  const jobChanged = useCallback(
    (job: Job) => {
      // A retried job is back in the queue: it leaves the history until it finishes again.
      setJobs((current) =>
        current && (isTerminal(job.status) ? current.map((j) => (j.id === job.id ? job : j)) : current.filter((j) => j.id !== job.id)),
      );
      reloadMe();
    },
    [reloadMe],
  );

  return (
    <Box direction="vertical" gap="24px">
      <Box direction="vertical" gap="4px">
        <Heading size="large" as="h2">
          Completed jobs
        </Heading>
        <Text secondary>Review what the optimizer wrote, publish it to your store, or put the original back.</Text>
      </Box>
      <Box width="520px" maxWidth="100%">
        <SegmentedToggle
          fullWidth
          size="small"
          selected={filter}
          onClick={(_event, value) => setParam('status', value === 'all' ? null : value)}
          ariaLabel="Show jobs"
          dataHook="status-filter"
        >
          <SegmentedToggle.Button value="all">All</SegmentedToggle.Button>
          <SegmentedToggle.Button value="done">Done</SegmentedToggle.Button>
          <SegmentedToggle.Button value="failed">Failed</SegmentedToggle.Button>
          <SegmentedToggle.Button value="canceled">Canceled</SegmentedToggle.Button>
        </SegmentedToggle>
      </Box>
      {error && (
        <SectionHelper appearance="danger" dataHook="jobs-error">
          {error}
        </SectionHelper>
      )}
      <Card>
        <Card.Content>
          {jobs === null && loading ? (
            <Loader size="medium" />
          ) : jobs && jobs.length === 0 ? (
            <Box direction="vertical" align="center" padding="36px" gap="8px" dataHook="jobs-empty">
              <Text weight="bold">{filter === 'all' ? 'No finished jobs yet' : `No ${filter} jobs`}</Text>
              <Text secondary size="small">
                {filter === 'all' ? (
                  <>
                    Start one on the <RouterLink to="/optimizer">Optimizer</RouterLink>; running jobs are in the{' '}
                    <RouterLink to="/queue">Queue</RouterLink>.
                  </>
                ) : (
                  'Try another filter.'
                )}
              </Text>
            </Box>
          ) : (
            <table className="uo-table" data-hook="jobs-table">
              <thead>
                <tr>
                  <th>Finished</th>
                  <th>Fields</th>
                  <th>Products</th>
                  <th>Result</th>
                  <th>Credits</th>
                  <th>Status</th>
                </tr>
              </thead>
              <tbody>
                {(jobs ?? []).map((job) => (
                  <tr
                    key={job.id}
                    onClick={() => setParam('job', job.id)}
                    data-hook="job-row"
                    data-job-id={job.id}
                    tabIndex={0}
                    onKeyDown={(event) => {
                      if (event.key !== 'Enter' && event.key !== ' ') return;
                      event.preventDefault();
                      setParam('job', job.id);
                    }}
                    aria-label={`Review the job of ${formatDateTime(job.finishedAt ?? job.createdAt)}`}
                  >
                    <td>
                      <div>{formatDateTime(job.finishedAt ?? job.createdAt)}</div>
                      <div className="uo-muted">{job.storeName}</div>
                    </td>
                    <td>{attributeList(job.attributes)}</td>
                    <td>{job.productCount.toLocaleString()}</td>
                    <td>
                      <div>{plural(job.counts.done, 'item')} done</div>
                      {(job.counts.failed > 0 || job.counts.canceled > 0) && (
                        <div className="uo-muted">
                          {[job.counts.failed && `${job.counts.failed} failed`, job.counts.canceled && `${job.counts.canceled} canceled`]
                            .filter(Boolean)
                            .join(' · ')}
                        </div>
                      )}
                    </td>
                    <td>{job.credits.charged.toLocaleString()}</td>
                    <td>
                      <StatusBadge status={job.status} dataHook="job-status" />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {jobs && jobs.length > 0 && (
            <Box marginTop="16px" verticalAlign="middle" gap="12px">
              <Text size="small" secondary dataHook="jobs-count">
                Showing {plural(jobs.length, 'job')}
              </Text>
              {loading && <Loader size="tiny" />}
              {cursor && !loading && (
                <Button size="small" priority="secondary" onClick={loadMore} dataHook="jobs-load-more">
                  Load more
                </Button>
              )}
            </Box>
          )}
        </Card.Content>
      </Card>
      {openJobId && <JobReview jobId={openJobId} onClose={() => setParam('job', null)} onJobChanged={jobChanged} />}
    </Box>
  );
}

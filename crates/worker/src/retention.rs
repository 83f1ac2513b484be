//! The retention task: the scheduler's leader deletes data past its retention window
//! (ARCHITECTURE §7) — finished jobs with their items, old publish logs, and accounts
//! whose deletion grace period ended. What counts as past its window, and what is kept
//! regardless (running jobs, revertible publishes, the credit ledger), is decided by the
//! storage layer; see `storage::lifecycle`.
//!
//! Everything is deleted in bounded batches, one short transaction each, and one pass
//! stops after [`RetentionPolicy::max_batches`] batches of a kind, so a large backlog is
//! worked off over several passes and no pass holds up the scheduler's other tasks for
//! long.

use chrono::{DateTime, Utc};
use storage::{RetentionCutoffs, Storage, StorageError};

/// How long each kind of data is kept, and how much one pass deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Done and canceled jobs, after they finished. `None` keeps them forever.
    pub completed_jobs: Option<chrono::Duration>,
    /// Failed jobs, after they finished. `None` keeps them forever.
    pub failed_jobs: Option<chrono::Duration>,
    /// Publish logs, after they were applied. `None` keeps them forever.
    pub publish_logs: Option<chrono::Duration>,
    /// Deactivated accounts, after their deactivation. `None` never deletes them.
    pub account_deletion_grace: Option<chrono::Duration>,
    /// Rows per batch (each batch is one transaction).
    pub batch_size: i64,
    /// Batches of each kind per pass; the rest waits for the next pass.
    pub max_batches: u32,
}

impl RetentionPolicy {
    /// The policy of the four day-count settings, where `0` switches that deletion off.
    pub fn from_days(
        completed_jobs: u32,
        failed_jobs: u32,
        publish_logs: u32,
        account_deletion_grace: u32,
    ) -> Self {
        let window = |days: u32| (days > 0).then(|| chrono::Duration::days(i64::from(days)));
        RetentionPolicy {
            completed_jobs: window(completed_jobs),
            failed_jobs: window(failed_jobs),
            publish_logs: window(publish_logs),
            account_deletion_grace: window(account_deletion_grace),
            ..Default::default()
        }
    }

    /// The instants before which each kind of row goes, for a pass at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> RetentionCutoffs {
        RetentionCutoffs {
            completed_jobs_before: self.completed_jobs.map(|window| now - window),
            failed_jobs_before: self.failed_jobs.map(|window| now - window),
            publish_logs_before: self.publish_logs.map(|window| now - window),
        }
    }
}

impl Default for RetentionPolicy {
    /// The documented defaults: completed jobs 90 days, failed jobs 30 days, publish logs
    /// one year, deactivated accounts deleted 30 days after deactivation.
    fn default() -> Self {
        RetentionPolicy {
            completed_jobs: Some(chrono::Duration::days(90)),
            failed_jobs: Some(chrono::Duration::days(30)),
            publish_logs: Some(chrono::Duration::days(365)),
            account_deletion_grace: Some(chrono::Duration::days(30)),
            batch_size: storage::MAX_RETENTION_BATCH,
            max_batches: 100,
        }
    }
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub jobs: u64,
    pub job_items: u64,
    pub publish_logs: u64,
    pub accounts: u64,
    /// Transactions that deleted something.
    pub batches: u64,
    /// False when a kind of data hit [`RetentionPolicy::max_batches`]: more is due, and
    /// the next pass should come soon.
    pub complete: bool,
}

/// One retention pass at `now`: jobs, then publish logs, then accounts past their grace
/// period, each in batches until a batch comes back short. Logs one line with the counts.
/// Not leader-aware itself; the scheduler calls it only while it leads.
pub async fn run_retention(
    storage: &dyn Storage,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<RetentionReport, StorageError> {
    let batch = policy.batch_size.clamp(1, storage::MAX_RETENTION_BATCH);
    let cutoffs = policy.cutoffs(now);
    let mut report = RetentionReport {
        complete: true,
        ..Default::default()
    };
    let max_batches = policy.max_batches.max(1);

    if cutoffs.completed_jobs_before.is_some() || cutoffs.failed_jobs_before.is_some() {
        let drained = report.absorb(
            drain(max_batches, batch, || async {
                let purged = storage.purge_finished_jobs(&cutoffs, batch).await?;
                Ok((purged.jobs, purged.items))
            })
            .await?,
        );
        (report.jobs, report.job_items) = (drained.rows, drained.dependent_rows);
    }
    if let Some(before) = cutoffs.publish_logs_before {
        let drained = report.absorb(
            drain(max_batches, batch, || async move {
                Ok((storage.purge_publish_logs(before, batch).await?, 0))
            })
            .await?,
        );
        report.publish_logs = drained.rows;
    }
    if let Some(grace) = policy.account_deletion_grace {
        let drained = report.absorb(
            drain(max_batches, batch, || async move {
                let deleted = storage
                    .delete_accounts_inactive_since(now - grace, batch)
                    .await?;
                for deletion in &deleted {
                    tracing::info!(
                        account.id = %deletion.account_id,
                        rows.deleted = deletion.total(),
                        "deleted an account past its deletion grace period"
                    );
                }
                Ok((deleted.len() as u64, 0))
            })
            .await?,
        );
        report.accounts = drained.rows;
    }

    tracing::info!(
        retention.jobs = report.jobs,
        retention.job_items = report.job_items,
        retention.publish_logs = report.publish_logs,
        retention.accounts = report.accounts,
        retention.batches = report.batches,
        retention.complete = report.complete,
        "retention pass finished"
    );
    Ok(report)
}

impl RetentionReport {
    /// Counts the batches of one kind into the pass, and hands them back.
    fn absorb(&mut self, drained: Drained) -> Drained {
        self.batches += drained.batches;
        self.complete &= drained.complete;
        drained
    }
}

/// What repeating one kind of batch deleted.
struct Drained {
    /// The rows the batches are counted in (jobs, publish logs, accounts).
    rows: u64,
    /// Rows deleted along with them (a job's items).
    dependent_rows: u64,
    batches: u64,
    complete: bool,
}

/// Runs `next_batch` (answering rows and dependent rows deleted) until a batch deletes
/// fewer than `batch` rows, or `max_batches` batches ran (then `complete` is false).
async fn drain<F, Fut>(
    max_batches: u32,
    batch: i64,
    mut next_batch: F,
) -> Result<Drained, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u64, u64), StorageError>>,
{
    let mut drained = Drained {
        rows: 0,
        dependent_rows: 0,
        batches: 0,
        complete: true,
    };
    loop {
        if drained.batches == u64::from(max_batches) {
            drained.complete = false;
            return Ok(drained);
        }
        let (rows, dependent_rows) = next_batch().await?;
        if rows == 0 {
            return Ok(drained);
        }
        drained.batches += 1;
        drained.rows += rows;
        drained.dependent_rows += dependent_rows;
        if rows < batch as u64 {
            return Ok(drained);
        }
    }
}

//! The data lifecycle (ARCHITECTURE §7): old jobs and publish logs are deleted by the
//! retention task, and deleting an account removes everything it owns.
//!
//! Retention rules, applied by [`LifecycleStorage::purge_finished_jobs`] and
//! [`LifecycleStorage::purge_publish_logs`]:
//! - A *completed* job (status `done` or `canceled`) goes with its items once it finished
//!   before the completed-jobs cutoff. A `done` job with some failed items counts as
//!   completed: its succeeded items are content the merchant may still publish or revert.
//! - A *failed* job (status `failed`: every item failed, nothing was produced) goes once it
//!   finished before the failed-jobs cutoff, normally the shorter window.
//! - A job still pending or running, or with an item still pending or running, is never
//!   deleted, whatever its age.
//! - A job with an item that is published (not reverted) and whose publish log is still
//!   inside the publish-log window is kept: reverting needs the item and the log. Once that
//!   log ages out of its window, the job is deleted like any other.
//! - Publish logs are the audit record of every write to a store: deleting a job leaves
//!   its logs, which go only when older than the publish-log cutoff — then regardless of
//!   whether an item could still have been reverted with them.
//! - The credit ledger is the money record and is never touched by retention.
//!
//! Each call deletes one bounded batch in one short transaction, oldest first; the
//! caller (the scheduler's retention task) repeats until a batch comes back short, so a
//! big backlog never holds one long transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Result;

/// Where each retention window ends for one pass: rows older than a cutoff go. `None`
/// keeps that kind of row forever (its window is switched off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCutoffs {
    /// Done and canceled jobs that finished before this instant are deleted.
    pub completed_jobs_before: Option<DateTime<Utc>>,
    /// Failed jobs that finished before this instant are deleted.
    pub failed_jobs_before: Option<DateTime<Utc>>,
    /// Publish logs applied before this instant are deleted; newer ones, when not
    /// reverted, keep their job (and so their item) for a revert.
    pub publish_logs_before: Option<DateTime<Utc>>,
}

/// What one batch of job retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgedJobs {
    pub jobs: u64,
    pub items: u64,
}

/// What deleting an account removed: rows per table, in the order they were deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDeletion {
    pub account_id: Uuid,
    pub account_name: String,
    /// Every table that holds account rows, with how many rows went (zeros included, so
    /// an operator sees what was checked).
    pub rows: Vec<(&'static str, u64)>,
}

impl AccountDeletion {
    /// Rows deleted from `table` (0 for a table not in the list).
    pub fn count(&self, table: &str) -> u64 {
        self.rows
            .iter()
            .find(|(name, _)| *name == table)
            .map_or(0, |(_, count)| *count)
    }

    /// Rows deleted across all tables, the account row included.
    pub fn total(&self) -> u64 {
        self.rows.iter().map(|(_, count)| count).sum()
    }
}

/// The most rows one retention batch deletes: keeps each transaction short and every
/// statement under both engines' bind-parameter limits.
pub const MAX_RETENTION_BATCH: i64 = crate::jobs::CHUNK as i64;

/// Every table holding an account's rows besides `accounts` itself, children before their
/// parents so foreign keys hold at every step, each with the statement that deletes the
/// account's rows (`$1` is the account id). The foreign keys also cascade from
/// `accounts`, but deleting explicitly yields the per-table counts an operator is shown.
pub(crate) const ACCOUNT_TABLES: &[(&str, &str)] = &[
    ("job_items", "DELETE FROM job_items WHERE account_id = $1"),
    (
        "publish_logs",
        "DELETE FROM publish_logs WHERE account_id = $1",
    ),
    ("jobs", "DELETE FROM jobs WHERE account_id = $1"),
    (
        "product_collections",
        "DELETE FROM product_collections \
         WHERE product_id IN (SELECT id FROM products WHERE account_id = $1) \
         OR collection_id IN (SELECT id FROM collections WHERE account_id = $1)",
    ),
    (
        "collections",
        "DELETE FROM collections WHERE account_id = $1",
    ),
    ("products", "DELETE FROM products WHERE account_id = $1"),
    (
        "sync_requests",
        "DELETE FROM sync_requests WHERE account_id = $1",
    ),
    (
        "sync_batches",
        "DELETE FROM sync_batches WHERE account_id = $1",
    ),
    (
        "woocommerce_authorizations",
        "DELETE FROM woocommerce_authorizations WHERE account_id = $1",
    ),
    (
        "webhook_events",
        "DELETE FROM webhook_events WHERE account_id = $1",
    ),
    (
        "login_links",
        "DELETE FROM login_links WHERE account_id = $1",
    ),
    (
        "refresh_tokens",
        "DELETE FROM refresh_tokens WHERE account_id = $1",
    ),
    ("users", "DELETE FROM users WHERE account_id = $1"),
    ("stores", "DELETE FROM stores WHERE account_id = $1"),
    (
        "credit_ledger",
        "DELETE FROM credit_ledger WHERE account_id = $1",
    ),
];

/// How often an account deletion that lost a deadlock (PostgreSQL) is tried. A deadlock
/// needs a worker ending several of the account's items during the deletion (it locks them
/// one by one, in its own order, while the deletion locks them in table order); the test
/// that hammers an account with workers while deleting it loses about one attempt in
/// sixty, so a few attempts are plenty.
pub(crate) const DELETE_ATTEMPTS: usize = 10;

/// Whether an error is PostgreSQL aborting the transaction to break a deadlock or a
/// serialization conflict: the transaction did nothing and can simply run again.
pub(crate) fn is_transient_conflict(err: &crate::StorageError) -> bool {
    match err {
        crate::StorageError::Database(err) => err
            .as_database_error()
            .and_then(|db_err| db_err.code())
            .is_some_and(|code| code == "40P01" || code == "40001"),
        _ => false,
    }
}

/// Retention and account deletion.
#[async_trait]
pub trait LifecycleStorage: Send + Sync {
    /// Deletes up to `limit` (at most [`MAX_RETENTION_BATCH`]) jobs past their retention
    /// window, oldest first, with their items, in one transaction (module docs for the
    /// rules). Publish logs and ledger rows stay. Across all accounts: for the retention
    /// task only.
    async fn purge_finished_jobs(
        &self,
        cutoffs: &RetentionCutoffs,
        limit: i64,
    ) -> Result<PurgedJobs>;
    /// Deletes up to `limit` (at most [`MAX_RETENTION_BATCH`]) publish logs applied
    /// before `applied_before`, oldest first; returns how many went. Across all accounts:
    /// for the retention task only.
    async fn purge_publish_logs(&self, applied_before: DateTime<Utc>, limit: i64) -> Result<u64>;

    /// Removes the account and every row it owns, in every table, in one transaction.
    /// [`crate::StorageError::NotFound`] for an unknown account. Workers still holding
    /// items of the account find them gone: their answers are fenced off, not errors.
    async fn delete_account(&self, account_id: Uuid) -> Result<AccountDeletion>;
    /// Deletes up to `limit` accounts inactive since before `cutoff` (the end of their
    /// grace period), oldest deactivation first, each in its own transaction. An account
    /// reactivated meanwhile is left alone. Billing marks accounts inactive and active
    /// again ([`crate::BillingStorage::set_account_status`], which keeps the first
    /// `deactivated_at`); the retention task calls this with `now - grace period`.
    async fn delete_accounts_inactive_since(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AccountDeletion>>;
}

macro_rules! impl_lifecycle_storage {
    ($storage:ty, $db:ty, $skip_locked:expr, $for_update:expr) => {
        impl $storage {
            /// Deletes the account and its rows in one transaction, retried when
            /// PostgreSQL breaks a deadlock with a worker by aborting this transaction.
            /// With `inactive_before`, only an account still inactive since before that
            /// instant is deleted. `None`: there was no such account.
            async fn delete_account_rows(
                &self,
                account_id: &str,
                inactive_before: Option<i64>,
            ) -> $crate::Result<Option<$crate::lifecycle::AccountDeletion>> {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match self.delete_account_once(account_id, inactive_before).await {
                        Err(err)
                            if attempt < $crate::lifecycle::DELETE_ATTEMPTS
                                && $crate::lifecycle::is_transient_conflict(&err) =>
                        {
                            tracing::warn!(
                                account.id = account_id,
                                error.cause = %err,
                                "account deletion met a concurrent transaction; trying again"
                            );
                            // A short random pause, so the deletion and the transaction it
                            // met do not collide the same way again.
                            let pause = {
                                use rand::Rng;
                                rand::thread_rng().gen_range(5..50)
                            };
                            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        }
                        other => return other,
                    }
                }
            }

            /// Children first, the account row last, in the order workers take their
            /// locks (item rows, then job rows, then the account row). A retry, which locks
            /// its job first, skips the item rows this transaction holds.
            async fn delete_account_once(
                &self,
                account_id: &str,
                inactive_before: Option<i64>,
            ) -> $crate::Result<Option<$crate::lifecycle::AccountDeletion>> {
                let mut tx = self.begin_write().await?;
                let name: Option<String> = match inactive_before {
                    Some(cutoff) => sqlx::query_scalar(
                        "SELECT name FROM accounts WHERE id = $1 AND status = 'inactive' \
                         AND deactivated_at < $2",
                    )
                    .bind(account_id)
                    .bind(cutoff)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => sqlx::query_scalar("SELECT name FROM accounts WHERE id = $1")
                        .bind(account_id)
                        .fetch_optional(&mut *tx)
                        .await?,
                };
                let Some(account_name) = name else {
                    return Ok(None);
                };
                let mut rows = Vec::with_capacity($crate::lifecycle::ACCOUNT_TABLES.len() + 1);
                for (table, sql) in $crate::lifecycle::ACCOUNT_TABLES {
                    let deleted = sqlx::query(sql)
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    rows.push((*table, deleted));
                }
                // The conditions again, on the row as it is now: a reactivation (or
                // another deletion) that committed meanwhile wins, and nothing is deleted.
                let deleted = match inactive_before {
                    Some(cutoff) => sqlx::query(
                        "DELETE FROM accounts WHERE id = $1 AND status = 'inactive' \
                         AND deactivated_at < $2",
                    )
                    .bind(account_id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?,
                    None => sqlx::query("DELETE FROM accounts WHERE id = $1")
                        .bind(account_id)
                        .execute(&mut *tx)
                        .await?,
                }
                .rows_affected();
                if deleted == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                rows.push(("accounts", deleted));
                tx.commit().await?;
                Ok(Some($crate::lifecycle::AccountDeletion {
                    account_id: $crate::rows::uuid(account_id)?,
                    account_name,
                    rows,
                }))
            }
        }

        #[async_trait::async_trait]
        impl $crate::lifecycle::LifecycleStorage for $storage {
            async fn purge_finished_jobs(
                &self,
                cutoffs: &$crate::lifecycle::RetentionCutoffs,
                limit: i64,
            ) -> $crate::Result<$crate::lifecycle::PurgedJobs> {
                let limit = limit.clamp(1, $crate::lifecycle::MAX_RETENTION_BATCH);
                // A switched-off window is a cutoff nothing is older than; for publish
                // logs, one every log is newer than (each unreverted publish keeps its job).
                let cutoff = |at: Option<chrono::DateTime<chrono::Utc>>| {
                    at.map($crate::rows::millis).unwrap_or(i64::MIN)
                };
                let completed = cutoff(cutoffs.completed_jobs_before);
                let failed = cutoff(cutoffs.failed_jobs_before);
                let publish = cutoff(cutoffs.publish_logs_before);
                let revertible = "SELECT 1 FROM job_items r JOIN publish_logs l ON l.item_id = r.id \
                                  WHERE r.job_id = j.id AND r.published_at IS NOT NULL \
                                  AND l.reverted_at IS NULL AND l.applied_at >= $3";
                let mut tx = self.begin_write().await?;
                // Jobs a retry holds right now are skipped (they are about to run again).
                let candidates: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT j.id FROM jobs j \
                     WHERE ((j.status IN ('done', 'canceled') AND j.finished_at < $1) \
                     OR (j.status = 'failed' AND j.finished_at < $2)) \
                     AND NOT EXISTS (SELECT 1 FROM job_items a WHERE a.job_id = j.id \
                     AND a.status IN ('pending', 'running')) \
                     AND NOT EXISTS ({revertible}) \
                     ORDER BY j.finished_at, j.id LIMIT $4{}",
                    $skip_locked
                ))
                .bind(completed)
                .bind(failed)
                .bind(publish)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                if candidates.is_empty() {
                    tx.commit().await?;
                    return Ok($crate::lifecycle::PurgedJobs::default());
                }
                let list = $crate::jobs::placeholders(2, candidates.len());
                // Lock the items, then look again: a publish that committed while this
                // transaction waited for one of them makes its job revertible, and keeps it.
                let lock_sql = format!(
                    "SELECT id FROM job_items WHERE job_id IN ({}){}",
                    $crate::jobs::placeholders(1, candidates.len()),
                    $for_update
                );
                let mut lock = sqlx::query_scalar::<_, String>(&lock_sql);
                for id in &candidates {
                    lock = lock.bind(id);
                }
                lock.fetch_all(&mut *tx).await?;
                let held_sql = format!(
                    "SELECT DISTINCT r.job_id FROM job_items r JOIN publish_logs l ON l.item_id = r.id \
                     WHERE r.job_id IN ({list}) AND r.published_at IS NOT NULL \
                     AND l.reverted_at IS NULL AND l.applied_at >= $1"
                );
                let mut held = sqlx::query_scalar::<_, String>(&held_sql).bind(publish);
                for id in &candidates {
                    held = held.bind(id);
                }
                let held: std::collections::HashSet<String> =
                    held.fetch_all(&mut *tx).await?.into_iter().collect();
                let doomed: Vec<&String> = candidates.iter().filter(|id| !held.contains(*id)).collect();
                let mut purged = $crate::lifecycle::PurgedJobs::default();
                if !doomed.is_empty() {
                    let list = $crate::jobs::placeholders(1, doomed.len());
                    for (table, column, counter) in [
                        ("job_items", "job_id", &mut purged.items),
                        ("jobs", "id", &mut purged.jobs),
                    ] {
                        let sql = format!("DELETE FROM {table} WHERE {column} IN ({list})");
                        let mut delete = sqlx::query(&sql);
                        for id in &doomed {
                            delete = delete.bind(*id);
                        }
                        *counter = delete.execute(&mut *tx).await?.rows_affected();
                    }
                }
                tx.commit().await?;
                Ok(purged)
            }

            async fn purge_publish_logs(
                &self,
                applied_before: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::Result<u64> {
                let limit = limit.clamp(1, $crate::lifecycle::MAX_RETENTION_BATCH);
                let mut tx = self.begin_write().await?;
                let deleted = sqlx::query(
                    "DELETE FROM publish_logs WHERE id IN (SELECT id FROM publish_logs \
                     WHERE applied_at < $1 ORDER BY applied_at, id LIMIT $2)",
                )
                .bind($crate::rows::millis(applied_before))
                .bind(limit)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(deleted)
            }

            async fn delete_account(
                &self,
                account_id: uuid::Uuid,
            ) -> $crate::Result<$crate::lifecycle::AccountDeletion> {
                self.delete_account_rows(&account_id.to_string(), None)
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("account"))
            }

            async fn delete_accounts_inactive_since(
                &self,
                cutoff: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::lifecycle::AccountDeletion>> {
                let cutoff = $crate::rows::millis(cutoff);
                let due: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM accounts WHERE status = 'inactive' AND deactivated_at < $1 \
                     ORDER BY deactivated_at, id LIMIT $2",
                )
                .bind(cutoff)
                .bind(limit.max(1))
                .fetch_all(self.pool())
                .await?;
                let mut deleted = Vec::with_capacity(due.len());
                for id in due {
                    if let Some(deletion) = self.delete_account_rows(&id, Some(cutoff)).await? {
                        deleted.push(deletion);
                    }
                }
                Ok(deleted)
            }
        }
    };
}

pub(crate) use impl_lifecycle_storage;

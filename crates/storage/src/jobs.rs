//! Optimization jobs and the durable queue of their items (ARCHITECTURE §4).
//!
//! - A job is created in one transaction: resolve the products, reserve the credits with a
//!   conditional update (no check-then-act race), insert the job, its items and the ledger
//!   row.
//! - Workers claim items in batches under a lease token, interleaving accounts so one big
//!   job cannot starve a small one. PostgreSQL skips rows other workers hold
//!   (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time (`BEGIN IMMEDIATE`).
//! - Every completion, failure, retry and release names the claim's token (fencing): once
//!   a lease expired and the item was recovered, a late worker's answer changes nothing.
//! - A failed or canceled item gives its credits back through the ledger, exactly once (the
//!   ledger's unique reference), in the transaction that ends the item.
//!
//! The SQL is written once in [`impl_job_storage`] for both engines; the engine-specific
//! parts are the row-locking suffixes the backend passes in and the wake-up signal.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Attribute, ContentValue, ItemStatus, JobCounts, JobKind, JobStatus, Platform, SourceProduct,
    SourceScope,
};
use uuid::Uuid;

use crate::Result;

/// A job to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub store_id: Uuid,
    pub kind: JobKind,
    pub source_scope: SourceScope,
    /// Product or collection ids, as the merchant picked them.
    pub source_ids: Vec<Uuid>,
    pub attributes: Vec<Attribute>,
    pub target_lang: Option<String>,
    pub user_prompt: Option<String>,
    pub brand_voice: Option<String>,
    /// The provider that will write the content (`rules`, `openai`).
    pub provider: String,
    pub credits_per_item: i64,
    /// More products than this is refused ([`crate::StorageError::SelectionTooLarge`]).
    pub max_products: usize,
}

/// A job with its progress and its credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: Uuid,
    pub account_id: Uuid,
    pub store_id: Uuid,
    pub store_name: String,
    pub kind: JobKind,
    pub status: JobStatus,
    pub source_scope: SourceScope,
    pub source_ids: Vec<Uuid>,
    pub attributes: Vec<Attribute>,
    pub target_lang: Option<String>,
    pub user_prompt: Option<String>,
    pub brand_voice: Option<String>,
    pub provider: String,
    pub product_count: i64,
    pub credits_per_item: i64,
    pub counts: JobCounts,
    /// Reserved at creation and by every retry round.
    pub credits_reserved: i64,
    /// Given back for failed and canceled items.
    pub credits_refunded: i64,
    pub retry_rounds: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// Credits spent on items that succeeded.
    pub fn credits_charged(&self) -> i64 {
        self.counts.done * self.credits_per_item
    }
}

/// Filters and cursor of a job listing, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Empty: every status.
    pub statuses: Vec<JobStatus>,
    /// Jobs older than this id (the previous page's `next_cursor`).
    pub before: Option<Uuid>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPage {
    pub items: Vec<Job>,
    pub next_cursor: Option<Uuid>,
}

/// One product × attribute of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobItem {
    pub id: Uuid,
    pub job_id: Uuid,
    pub account_id: Uuid,
    pub store_id: Uuid,
    pub product_id: Uuid,
    /// The product's current title in the catalog cache (`None` once it left the store).
    pub product_title: Option<String>,
    pub attribute: Attribute,
    pub status: ItemStatus,
    pub attempts: i64,
    /// The value the job read from the product, and the value it proposes.
    pub before: Option<ContentValue>,
    pub after: Option<ContentValue>,
    /// The catalog revision the job read.
    pub product_revision: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub reverted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters and cursor of a job's item listing, in creation order.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    pub statuses: Vec<ItemStatus>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    pub items: Vec<JobItem>,
    pub next_cursor: Option<Uuid>,
}

/// An item a worker claimed, with everything needed to work on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedItem {
    pub id: Uuid,
    pub job_id: Uuid,
    pub account_id: Uuid,
    pub store_id: Uuid,
    pub platform: Platform,
    pub product_id: Uuid,
    pub attribute: Attribute,
    /// Claims so far, this one included.
    pub attempts: i64,
    pub target_lang: Option<String>,
    pub user_prompt: Option<String>,
    pub brand_voice: Option<String>,
    /// The product as cached now and its revision; `None` when it left the store.
    pub product: Option<(SourceProduct, i64)>,
}

/// A batch of claimed items and the token that fences them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemClaim {
    pub token: Uuid,
    pub items: Vec<ClaimedItem>,
}

/// How one attempt at an item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    Done {
        before: ContentValue,
        after: ContentValue,
        product_revision: i64,
    },
    /// A transient failure: back to the queue, due at `at`.
    Retry {
        at: DateTime<Utc>,
        code: String,
        message: String,
    },
    /// Failed for good; its credits are refunded.
    Fail { code: String, message: String },
    /// Handed back unworked (shutdown): due now, the attempt not counted.
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutcome {
    pub item_id: Uuid,
    pub result: ItemResult,
}

/// What [`JobStorage::finish_items`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinishReport {
    pub applied: u64,
    /// Outcomes refused because the claim no longer held the item (its lease expired and
    /// another worker took it over).
    pub fenced: u64,
}

/// What lease recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Items put back in the queue.
    pub requeued: u64,
    /// Items past their last attempt, failed and refunded.
    pub failed: u64,
}

/// A write to a store, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPublishLog {
    pub store_id: Uuid,
    pub product_id: Uuid,
    pub item_id: Uuid,
    pub attribute: Attribute,
    pub value_before: ContentValue,
    pub value_applied: ContentValue,
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishLog {
    pub id: Uuid,
    pub store_id: Uuid,
    pub product_id: Uuid,
    pub item_id: Uuid,
    pub attribute: Attribute,
    pub value_before: ContentValue,
    pub value_applied: ContentValue,
    pub forced: bool,
    pub applied_at: DateTime<Utc>,
    pub reverted_at: Option<DateTime<Utc>>,
}

/// Jobs, their items' queue, and the publish log.
#[async_trait]
pub trait JobStorage: Send + Sync {
    /// Resolves the products, reserves `products × attributes × credits_per_item` credits
    /// and inserts the job and its items, all in one transaction.
    /// [`crate::StorageError::InsufficientCredits`] when the balance is short (nothing is
    /// written).
    async fn create_job(&self, account_id: Uuid, job: NewJob, now: DateTime<Utc>) -> Result<Job>;
    async fn get_job(&self, account_id: Uuid, job_id: Uuid) -> Result<Job>;
    async fn list_jobs(&self, account_id: Uuid, query: &JobQuery) -> Result<JobPage>;
    /// Jobs of the account changed at or after `since` (oldest change first), optionally
    /// only one job: what a progress stream sends.
    async fn jobs_changed_since(
        &self,
        account_id: Uuid,
        since: DateTime<Utc>,
        job_id: Option<Uuid>,
    ) -> Result<Vec<Job>>;
    async fn list_job_items(
        &self,
        account_id: Uuid,
        job_id: Uuid,
        query: &ItemQuery,
    ) -> Result<ItemPage>;
    /// The account's items with these ids, in the order given; unknown ids are left out.
    async fn get_job_items(&self, account_id: Uuid, item_ids: &[Uuid]) -> Result<Vec<JobItem>>;
    /// Cancels the pending items (refunded) and marks the job canceled; running items
    /// finish. [`crate::StorageError::InvalidState`] when the job already ended.
    async fn cancel_job(&self, account_id: Uuid, job_id: Uuid, now: DateTime<Utc>) -> Result<Job>;
    /// Puts the failed items back in the queue, reserving their credits again.
    async fn retry_job(&self, account_id: Uuid, job_id: Uuid, now: DateTime<Utc>) -> Result<Job>;

    /// Claims up to `limit` due items across all accounts, interleaving accounts, leased
    /// until `now + lease`. For workers only.
    async fn claim_items(
        &self,
        limit: i64,
        lease: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<ItemClaim>;
    /// Extends the lease of the items the claim still holds; returns how many.
    async fn extend_item_leases(&self, token: Uuid, until: DateTime<Utc>) -> Result<u64>;
    /// Ends items of a claim, in one transaction. Items the claim no longer holds are
    /// left alone and counted as fenced.
    async fn finish_items(
        &self,
        token: Uuid,
        outcomes: &[ItemOutcome],
        now: DateTime<Utc>,
    ) -> Result<FinishReport>;
    /// Puts items whose lease expired (their worker died) back in the queue, or fails
    /// them (refunded) when they used `max_attempts`. Safe to run from every worker.
    async fn recover_expired_items(
        &self,
        now: DateTime<Utc>,
        max_attempts: i64,
    ) -> Result<RecoveryReport>;
    /// Wakes workers waiting in [`JobStorage::wait_for_job_work`] (in every process on
    /// PostgreSQL, through `NOTIFY`; in this process on SQLite).
    async fn notify_job_work(&self) -> Result<()>;
    /// Returns when work may have arrived, or after `timeout` (the backstop poll).
    async fn wait_for_job_work(&self, timeout: std::time::Duration);

    /// Records a write to a store and marks the item published, in one transaction.
    async fn record_publish(
        &self,
        account_id: Uuid,
        log: NewPublishLog,
        now: DateTime<Utc>,
    ) -> Result<PublishLog>;
    /// The item's newest publish log entry.
    async fn latest_publish(&self, account_id: Uuid, item_id: Uuid) -> Result<Option<PublishLog>>;
    /// Marks a publish reverted (and its item no longer published).
    async fn record_revert(
        &self,
        account_id: Uuid,
        publish_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// The per-job change of counters a batch of item transitions makes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JobDelta {
    pub pending: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub canceled: i64,
    pub refunded: i64,
}

pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, crate::StorageError> {
    serde_json::from_str(text).map_err(|err| crate::StorageError::Corrupt(format!("{what}: {err}")))
}

/// Ledger reference of an item's refund: one per item and charge.
pub(crate) fn item_refund_reference(item_id: &str, charge: i64) -> String {
    format!("item:{item_id}:{charge}")
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bind limits.
pub(crate) const CHUNK: usize = 500;

/// Columns of a job with its store's name (`j` is jobs, `s` is stores).
pub(crate) const JOB_COLUMNS: &str = "j.id, j.account_id, j.store_id, s.name AS store_name, \
    j.kind, j.status, j.source_scope, j.source_ids, j.attributes, j.target_lang, j.user_prompt, \
    j.brand_voice, j.provider, j.product_count, j.credits_per_item, j.total_items, \
    j.pending_items, j.running_items, j.done_items, j.failed_items, j.canceled_items, \
    j.credits_reserved, j.credits_refunded, j.retry_rounds, j.created_at, j.started_at, \
    j.finished_at, j.canceled_at, j.updated_at";

/// Columns of an item with its product's title (`i` is job_items, `p` products).
pub(crate) const ITEM_COLUMNS: &str = "i.id, i.job_id, i.account_id, i.store_id, i.product_id, \
    p.title AS product_title, i.attribute, i.status, i.attempts, i.before_value, i.after_value, \
    i.product_revision, i.error_code, i.error_message, i.published_at, i.reverted_at, \
    i.created_at, i.updated_at";

macro_rules! impl_job_storage {
    ($storage:ty, $db:ty, $skip_locked:expr, $for_update:expr) => {
        impl $storage {
            async fn job_by_id(
                executor: &mut <$db as sqlx::Database>::Connection,
                account_id: &str,
                job_id: &str,
            ) -> $crate::Result<$crate::jobs::Job> {
                let sql = format!(
                    "SELECT {} FROM jobs j JOIN stores s ON s.id = j.store_id \
                     WHERE j.id = $1 AND j.account_id = $2",
                    $crate::jobs::JOB_COLUMNS
                );
                sqlx::query_as::<_, $crate::rows::JobRow>(&sql)
                    .bind(job_id)
                    .bind(account_id)
                    .fetch_optional(&mut *executor)
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("job"))?
                    .try_into()
            }

            /// Takes `amount` credits from the account if it has them, with a ledger row.
            async fn reserve_credits(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
                amount: i64,
                reference: &str,
                now_ms: i64,
            ) -> $crate::Result<()> {
                // The condition and the change are one statement: two concurrent requests
                // cannot both see the same balance and both spend it.
                let taken = sqlx::query(
                    "UPDATE accounts SET credits_used = credits_used + $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'active' AND credits_total - credits_used >= $2",
                )
                .bind(account_id)
                .bind(amount)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if taken == 0 {
                    let (total, used, status): (i64, i64, String) = sqlx::query_as(
                        "SELECT credits_total, credits_used, status FROM accounts WHERE id = $1",
                    )
                    .bind(account_id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| $crate::StorageError::not_found("account"))?;
                    if status != "active" {
                        return Err($crate::StorageError::InvalidState(
                            "the account is inactive (the app was removed); reinstall it to run jobs".into(),
                        ));
                    }
                    return Err($crate::StorageError::InsufficientCredits {
                        required: amount,
                        remaining: (total - used).max(0),
                    });
                }
                sqlx::query(
                    "INSERT INTO credit_ledger (id, account_id, delta, reason, reference, created_at) \
                     VALUES ($1, $2, $3, 'reserve', $4, $5)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(account_id)
                .bind(-amount)
                .bind(reference)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Gives `amount` credits back once per `reference`; returns what was given
            /// back. Used credits never go below zero (a refund after a monthly reset has
            /// nothing left to give back), and the ledger row records what was applied,
            /// so the ledger and the counters agree.
            async fn refund_credits(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
                amount: i64,
                reference: &str,
                now_ms: i64,
            ) -> $crate::Result<i64> {
                let used: Option<i64> = sqlx::query_scalar(&format!(
                    "SELECT credits_used FROM accounts WHERE id = $1{}",
                    $for_update
                ))
                .bind(account_id)
                .fetch_optional(&mut **tx)
                .await?;
                let Some(used) = used else { return Ok(0) };
                let seen: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM credit_ledger WHERE account_id = $1 AND reason = 'refund' \
                     AND reference = $2",
                )
                .bind(account_id)
                .bind(reference)
                .fetch_optional(&mut **tx)
                .await?;
                if seen.is_some() {
                    return Ok(0);
                }
                let applied = amount.min(used).max(0);
                sqlx::query(
                    "UPDATE accounts SET credits_used = credits_used - $2, updated_at = $3 WHERE id = $1",
                )
                .bind(account_id)
                .bind(applied)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO credit_ledger (id, account_id, delta, reason, reference, created_at) \
                     VALUES ($1, $2, $3, 'refund', $4, $5)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(account_id)
                .bind(applied)
                .bind(reference)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                Ok(applied)
            }

            /// Locks job rows, in id order, before any account row: every transaction that
            /// ends, cancels or retries items takes its locks in this order (jobs, then
            /// accounts), so two of them never wait on each other.
            async fn lock_jobs(
                tx: &mut sqlx::Transaction<'_, $db>,
                job_ids: impl IntoIterator<Item = &String>,
            ) -> $crate::Result<()> {
                let mut job_ids: Vec<&String> = job_ids.into_iter().collect();
                job_ids.sort();
                for job_id in job_ids {
                    sqlx::query(&format!("SELECT id FROM jobs WHERE id = $1{}", $for_update))
                        .bind(job_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// Items of a canceled job that came back to the queue (a retry or a release
            /// that ended after the cancel, or a recovered lease) are canceled and refunded
            /// instead: nothing claims them again, and their credits must not stay reserved.
            async fn cancel_leftovers(
                tx: &mut sqlx::Transaction<'_, $db>,
                deltas: &mut std::collections::BTreeMap<String, $crate::jobs::JobDelta>,
                now_ms: i64,
            ) -> $crate::Result<()> {
                let job_ids: Vec<String> = deltas
                    .iter()
                    .filter(|(_, delta)| delta.pending > 0)
                    .map(|(job_id, _)| job_id.clone())
                    .collect();
                for job_id in job_ids {
                    // The caller holds the job row (`lock_jobs`), so a cancel that ran
                    // meanwhile has committed and is seen here.
                    let canceled: Option<Option<i64>> =
                        sqlx::query_scalar("SELECT canceled_at FROM jobs WHERE id = $1")
                            .bind(&job_id)
                            .fetch_optional(&mut **tx)
                            .await?;
                    if !matches!(canceled, Some(Some(_))) {
                        continue;
                    }
                    // Items a claim holds now are skipped, as in `cancel_job`.
                    let leftovers: Vec<(String, String, i64)> = sqlx::query_as(&format!(
                        "UPDATE job_items SET status = 'canceled', finished_at = $2, updated_at = $2 \
                         WHERE id IN (SELECT id FROM job_items WHERE job_id = $1 AND status = 'pending'{}) \
                         RETURNING id, account_id, charge",
                        $skip_locked
                    ))
                    .bind(&job_id)
                    .bind(now_ms)
                    .fetch_all(&mut **tx)
                    .await?;
                    let count = leftovers.len() as i64;
                    let delta = deltas.entry(job_id.clone()).or_default();
                    delta.pending -= count;
                    delta.canceled += count;
                    let refunds = leftovers
                        .into_iter()
                        .map(|(item, account, charge)| (job_id.clone(), account, item, charge))
                        .collect();
                    Self::refund_failed_items(tx, refunds, deltas, now_ms).await?;
                }
                Ok(())
            }

            /// Refunds failed or canceled items (job, account, item, charge) once each, at their job's
            /// credits per item, and counts the refunds into the jobs' deltas.
            async fn refund_failed_items(
                tx: &mut sqlx::Transaction<'_, $db>,
                mut refunds: Vec<(String, String, String, i64)>,
                deltas: &mut std::collections::BTreeMap<String, $crate::jobs::JobDelta>,
                now_ms: i64,
            ) -> $crate::Result<()> {
                let mut per_item_cost: std::collections::HashMap<String, i64> =
                    std::collections::HashMap::new();
                // Sorted, so concurrent transactions take the account rows in one order.
                refunds.sort();
                for (job_id, account_id, item, charge) in refunds {
                    let cost = match per_item_cost.get(&job_id) {
                        Some(cost) => *cost,
                        None => {
                            let cost: i64 =
                                sqlx::query_scalar("SELECT credits_per_item FROM jobs WHERE id = $1")
                                    .bind(&job_id)
                                    .fetch_one(&mut **tx)
                                    .await?;
                            per_item_cost.insert(job_id.clone(), cost);
                            cost
                        }
                    };
                    Self::refund_credits(
                        tx,
                        &account_id,
                        cost,
                        &$crate::jobs::item_refund_reference(&item, charge),
                        now_ms,
                    )
                    .await?;
                    deltas.entry(job_id).or_default().refunded += cost;
                }
                Ok(())
            }

            /// Moves a job's counters by `delta` and re-derives its status from them.
            async fn apply_job_delta(
                tx: &mut sqlx::Transaction<'_, $db>,
                job_id: &str,
                delta: $crate::jobs::JobDelta,
                started: bool,
                now_ms: i64,
            ) -> $crate::Result<()> {
                let row: Option<(String, i64, i64, i64, i64, i64, i64, Option<i64>, Option<i64>)> =
                    sqlx::query_as(
                        "UPDATE jobs SET pending_items = pending_items + $2, \
                         running_items = running_items + $3, done_items = done_items + $4, \
                         failed_items = failed_items + $5, canceled_items = canceled_items + $6, \
                         credits_refunded = credits_refunded + $7, updated_at = $8 WHERE id = $1 \
                         RETURNING status, total_items, pending_items, running_items, done_items, \
                         failed_items, canceled_items, started_at, canceled_at",
                    )
                    .bind(job_id)
                    .bind(delta.pending)
                    .bind(delta.running)
                    .bind(delta.done)
                    .bind(delta.failed)
                    .bind(delta.canceled)
                    .bind(delta.refunded)
                    .bind(now_ms)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some((status, total, pending, running, done, failed, canceled, started_at, canceled_at)) =
                    row
                else {
                    return Ok(());
                };
                let counts = domain::JobCounts { total, pending, running, done, failed, canceled };
                let next = counts.status(canceled_at.is_some(), started || started_at.is_some());
                let terminal_now = counts.total > 0 && counts.terminal() == counts.total;
                if next.as_str() != status || started && started_at.is_none() || terminal_now {
                    sqlx::query(
                        "UPDATE jobs SET status = $2, \
                         started_at = CASE WHEN $3 THEN COALESCE(started_at, $5) ELSE started_at END, \
                         finished_at = CASE WHEN $4 THEN COALESCE(finished_at, $5) ELSE NULL END \
                         WHERE id = $1",
                    )
                    .bind(job_id)
                    .bind(next.as_str())
                    .bind(started)
                    .bind(terminal_now)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            /// The ids of `ids` that exist in `table` within the account and store.
            async fn owned_ids(
                tx: &mut sqlx::Transaction<'_, $db>,
                table: &str,
                account_id: &str,
                store_id: &str,
                ids: &[String],
            ) -> $crate::Result<std::collections::HashSet<String>> {
                let mut found = std::collections::HashSet::new();
                for chunk in ids.chunks($crate::jobs::CHUNK) {
                    let sql = format!(
                        "SELECT id FROM {table} WHERE account_id = $1 AND store_id = $2 AND id IN ({})",
                        $crate::jobs::placeholders(3, chunk.len())
                    );
                    let mut query = sqlx::query_scalar::<_, String>(&sql).bind(account_id).bind(store_id);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    found.extend(query.fetch_all(&mut **tx).await?);
                }
                Ok(found)
            }

            /// The products a job's selection names, in the merchant's order (products) or
            /// by id (collections), each once.
            async fn resolve_job_products(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
                store_id: &str,
                scope: domain::SourceScope,
                source_ids: &[uuid::Uuid],
            ) -> $crate::Result<Vec<String>> {
                let mut ids: Vec<String> = Vec::new();
                for id in source_ids {
                    let id = id.to_string();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                match scope {
                    domain::SourceScope::Products => {
                        let found = Self::owned_ids(tx, "products", account_id, store_id, &ids).await?;
                        if found.len() != ids.len() {
                            return Err($crate::StorageError::not_found("product"));
                        }
                        Ok(ids)
                    }
                    domain::SourceScope::Collections => {
                        let found = Self::owned_ids(tx, "collections", account_id, store_id, &ids).await?;
                        if found.len() != ids.len() {
                            return Err($crate::StorageError::not_found("collection"));
                        }
                        let mut products = std::collections::BTreeSet::new();
                        for chunk in ids.chunks($crate::jobs::CHUNK) {
                            let sql = format!(
                                "SELECT pc.product_id FROM product_collections pc \
                                 JOIN products p ON p.id = pc.product_id \
                                 WHERE p.account_id = $1 AND pc.collection_id IN ({})",
                                $crate::jobs::placeholders(2, chunk.len())
                            );
                            let mut query = sqlx::query_scalar::<_, String>(&sql).bind(account_id);
                            for id in chunk {
                                query = query.bind(id);
                            }
                            products.extend(query.fetch_all(&mut **tx).await?);
                        }
                        Ok(products.into_iter().collect())
                    }
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::jobs::JobStorage for $storage {
            async fn create_job(
                &self,
                account_id: uuid::Uuid,
                job: $crate::jobs::NewJob,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::jobs::Job> {
                $crate::shared::storable_opt("targetLang", job.target_lang.as_deref())?;
                $crate::shared::storable_opt("userPrompt", job.user_prompt.as_deref())?;
                $crate::shared::storable_opt("brandVoice", job.brand_voice.as_deref())?;
                $crate::shared::storable("provider", &job.provider)?;
                let account = account_id.to_string();
                let store = job.store_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                Self::ensure_store_in_account(&mut tx, &account, &store).await?;
                let products =
                    Self::resolve_job_products(&mut tx, &account, &store, job.source_scope, &job.source_ids)
                        .await?;
                if products.is_empty() {
                    return Err($crate::StorageError::EmptySelection);
                }
                if products.len() > job.max_products {
                    return Err($crate::StorageError::SelectionTooLarge {
                        count: products.len(),
                        max: job.max_products,
                    });
                }
                let total_items = (products.len() * job.attributes.len()) as i64;
                let cost = total_items * job.credits_per_item;
                let job_id = uuid::Uuid::now_v7();
                let job_text = job_id.to_string();
                Self::reserve_credits(&mut tx, &account, cost, &format!("job:{job_text}"), now_ms).await?;
                sqlx::query(
                    "INSERT INTO jobs (id, account_id, store_id, kind, status, source_scope, source_ids, \
                     attributes, target_lang, user_prompt, brand_voice, provider, product_count, \
                     credits_per_item, total_items, pending_items, credits_reserved, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $16)",
                )
                .bind(&job_text)
                .bind(&account)
                .bind(&store)
                .bind(job.kind.as_str())
                .bind(job.source_scope.as_str())
                .bind($crate::jobs::to_json(&job.source_ids))
                .bind($crate::jobs::to_json(&job.attributes))
                .bind(&job.target_lang)
                .bind(&job.user_prompt)
                .bind(&job.brand_voice)
                .bind(&job.provider)
                .bind(products.len() as i64)
                .bind(job.credits_per_item)
                .bind(total_items)
                .bind(cost)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let rows: Vec<(String, domain::Attribute)> = products
                    .iter()
                    .flat_map(|product| job.attributes.iter().map(move |a| (product.clone(), *a)))
                    .collect();
                for chunk in rows.chunks($crate::jobs::CHUNK / 2) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO job_items (id, job_id, account_id, store_id, product_id, attribute, \
                         status, next_attempt_at, created_at, updated_at) ",
                    );
                    insert.push_values(chunk, |mut row, (product, attribute)| {
                        row.push_bind(uuid::Uuid::now_v7().to_string())
                            .push_bind(&job_text)
                            .push_bind(&account)
                            .push_bind(&store)
                            .push_bind(product)
                            .push_bind(attribute.as_str())
                            .push_bind("pending")
                            .push_bind(now_ms)
                            .push_bind(now_ms)
                            .push_bind(now_ms);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                let created = Self::job_by_id(&mut *tx, &account, &job_text).await?;
                tx.commit().await?;
                self.notify_job_work().await.ok();
                Ok(created)
            }

            async fn get_job(
                &self,
                account_id: uuid::Uuid,
                job_id: uuid::Uuid,
            ) -> $crate::Result<$crate::jobs::Job> {
                let mut conn = self.pool().acquire().await?;
                Self::job_by_id(&mut *conn, &account_id.to_string(), &job_id.to_string()).await
            }

            async fn list_jobs(
                &self,
                account_id: uuid::Uuid,
                query: &$crate::jobs::JobQuery,
            ) -> $crate::Result<$crate::jobs::JobPage> {
                let limit = query.limit.clamp(1, 200);
                let mut sql = format!(
                    "SELECT {} FROM jobs j JOIN stores s ON s.id = j.store_id WHERE j.account_id = $1",
                    $crate::jobs::JOB_COLUMNS
                );
                let mut next = 2;
                if query.before.is_some() {
                    sql.push_str(&format!(" AND j.id < ${next}"));
                    next += 1;
                }
                if !query.statuses.is_empty() {
                    sql.push_str(&format!(
                        " AND j.status IN ({})",
                        $crate::jobs::placeholders(next, query.statuses.len())
                    ));
                    next += query.statuses.len();
                }
                sql.push_str(&format!(" ORDER BY j.id DESC LIMIT ${next}"));
                let mut q = sqlx::query_as::<_, $crate::rows::JobRow>(&sql).bind(account_id.to_string());
                if let Some(before) = query.before {
                    q = q.bind(before.to_string());
                }
                for status in &query.statuses {
                    q = q.bind(status.as_str());
                }
                let mut items: Vec<$crate::jobs::Job> = q
                    .bind(limit + 1)
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::Result<_>>()?;
                let next_cursor = $crate::rows::cut_page(&mut items, limit, |job| job.id);
                Ok($crate::jobs::JobPage { items, next_cursor })
            }

            async fn jobs_changed_since(
                &self,
                account_id: uuid::Uuid,
                since: chrono::DateTime<chrono::Utc>,
                job_id: Option<uuid::Uuid>,
            ) -> $crate::Result<Vec<$crate::jobs::Job>> {
                let mut sql = format!(
                    "SELECT {} FROM jobs j JOIN stores s ON s.id = j.store_id \
                     WHERE j.account_id = $1 AND j.updated_at >= $2",
                    $crate::jobs::JOB_COLUMNS
                );
                if job_id.is_some() {
                    sql.push_str(" AND j.id = $3");
                }
                sql.push_str(" ORDER BY j.updated_at, j.id LIMIT 200");
                let mut q = sqlx::query_as::<_, $crate::rows::JobRow>(&sql)
                    .bind(account_id.to_string())
                    .bind($crate::rows::millis(since));
                if let Some(job_id) = job_id {
                    q = q.bind(job_id.to_string());
                }
                q.fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect()
            }

            async fn list_job_items(
                &self,
                account_id: uuid::Uuid,
                job_id: uuid::Uuid,
                query: &$crate::jobs::ItemQuery,
            ) -> $crate::Result<$crate::jobs::ItemPage> {
                let account = account_id.to_string();
                {
                    let mut conn = self.pool().acquire().await?;
                    Self::job_by_id(&mut *conn, &account, &job_id.to_string()).await?;
                }
                let limit = query.limit.clamp(1, 500);
                let mut sql = format!(
                    "SELECT {} FROM job_items i LEFT JOIN products p ON p.id = i.product_id \
                     WHERE i.account_id = $1 AND i.job_id = $2",
                    $crate::jobs::ITEM_COLUMNS
                );
                let mut next = 3;
                if query.after.is_some() {
                    sql.push_str(&format!(" AND i.id > ${next}"));
                    next += 1;
                }
                if !query.statuses.is_empty() {
                    sql.push_str(&format!(
                        " AND i.status IN ({})",
                        $crate::jobs::placeholders(next, query.statuses.len())
                    ));
                    next += query.statuses.len();
                }
                sql.push_str(&format!(" ORDER BY i.id LIMIT ${next}"));
                let mut q = sqlx::query_as::<_, $crate::rows::JobItemRow>(&sql)
                    .bind(&account)
                    .bind(job_id.to_string());
                if let Some(after) = query.after {
                    q = q.bind(after.to_string());
                }
                for status in &query.statuses {
                    q = q.bind(status.as_str());
                }
                let mut items: Vec<$crate::jobs::JobItem> = q
                    .bind(limit + 1)
                    .fetch_all(self.pool())
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::Result<_>>()?;
                let next_cursor = $crate::rows::cut_page(&mut items, limit, |item| item.id);
                Ok($crate::jobs::ItemPage { items, next_cursor })
            }

            async fn get_job_items(
                &self,
                account_id: uuid::Uuid,
                item_ids: &[uuid::Uuid],
            ) -> $crate::Result<Vec<$crate::jobs::JobItem>> {
                let ids: Vec<String> = item_ids.iter().map(|id| id.to_string()).collect();
                let mut found: std::collections::HashMap<uuid::Uuid, $crate::jobs::JobItem> =
                    std::collections::HashMap::new();
                for chunk in ids.chunks($crate::jobs::CHUNK) {
                    let sql = format!(
                        "SELECT {} FROM job_items i LEFT JOIN products p ON p.id = i.product_id \
                         WHERE i.account_id = $1 AND i.id IN ({})",
                        $crate::jobs::ITEM_COLUMNS,
                        $crate::jobs::placeholders(2, chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, $crate::rows::JobItemRow>(&sql).bind(account_id.to_string());
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for row in q.fetch_all(self.pool()).await? {
                        let item: $crate::jobs::JobItem = row.try_into()?;
                        found.insert(item.id, item);
                    }
                }
                Ok(item_ids.iter().filter_map(|id| found.remove(id)).collect())
            }

            async fn cancel_job(
                &self,
                account_id: uuid::Uuid,
                job_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::jobs::Job> {
                let account = account_id.to_string();
                let job_text = job_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                // A worker ending items of this job takes the same lock before it reads
                // `canceled_at`, so it either commits first (and its items are seen below)
                // or sees the cancel.
                Self::lock_jobs(&mut tx, [&job_text]).await?;
                let job = Self::job_by_id(&mut *tx, &account, &job_text).await?;
                if job.status.is_terminal() {
                    return Err($crate::StorageError::InvalidState(format!(
                        "the job is already {}",
                        job.status.as_str()
                    )));
                }
                sqlx::query("UPDATE jobs SET canceled_at = $2 WHERE id = $1")
                    .bind(&job_text)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                // Items a claim holds right now are skipped, not waited for (that claim
                // waits for the job row this transaction holds); they come back later
                // and are canceled then.
                let canceled = sqlx::query(&format!(
                    "UPDATE job_items SET status = 'canceled', finished_at = $2, updated_at = $2 \
                     WHERE id IN (SELECT id FROM job_items WHERE job_id = $1 AND status = 'pending'{})",
                    $skip_locked
                ))
                .bind(&job_text)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected() as i64;
                let amount = canceled * job.credits_per_item;
                if amount > 0 {
                    Self::refund_credits(
                        &mut tx,
                        &account,
                        amount,
                        &format!("cancel:{job_text}:{}", job.retry_rounds),
                        now_ms,
                    )
                    .await?;
                }
                let delta = $crate::jobs::JobDelta {
                    pending: -canceled,
                    canceled,
                    refunded: amount,
                    ..Default::default()
                };
                Self::apply_job_delta(&mut tx, &job_text, delta, false, now_ms).await?;
                let updated = Self::job_by_id(&mut *tx, &account, &job_text).await?;
                tx.commit().await?;
                Ok(updated)
            }

            async fn retry_job(
                &self,
                account_id: uuid::Uuid,
                job_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::jobs::Job> {
                let account = account_id.to_string();
                let job_text = job_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                Self::lock_jobs(&mut tx, [&job_text]).await?;
                let job = Self::job_by_id(&mut *tx, &account, &job_text).await?;
                if job.counts.failed == 0 {
                    return Err($crate::StorageError::InvalidState("the job has no failed items".into()));
                }
                let round = job.retry_rounds + 1;
                // Failed items another transaction holds (an account deletion or retention
                // removing them) are skipped, not waited for: that transaction takes this
                // job's row next, which this one holds.
                let retried = sqlx::query(&format!(
                    "UPDATE job_items SET status = 'pending', attempts = 0, charge = charge + 1, \
                     next_attempt_at = $2, error_code = NULL, error_message = NULL, finished_at = NULL, \
                     updated_at = $2 \
                     WHERE id IN (SELECT id FROM job_items WHERE job_id = $1 AND status = 'failed'{})",
                    $skip_locked
                ))
                .bind(&job_text)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected() as i64;
                if retried == 0 {
                    return Err($crate::StorageError::InvalidState(
                        "the job's failed items are being changed; try again".into(),
                    ));
                }
                let cost = retried * job.credits_per_item;
                Self::reserve_credits(&mut tx, &account, cost, &format!("retry:{job_text}:{round}"), now_ms)
                    .await?;
                sqlx::query(
                    "UPDATE jobs SET retry_rounds = $2, credits_reserved = credits_reserved + $3, \
                     canceled_at = NULL WHERE id = $1",
                )
                .bind(&job_text)
                .bind(round)
                .bind(cost)
                .execute(&mut *tx)
                .await?;
                let delta = $crate::jobs::JobDelta {
                    pending: retried,
                    failed: -retried,
                    ..Default::default()
                };
                Self::apply_job_delta(&mut tx, &job_text, delta, false, now_ms).await?;
                let updated = Self::job_by_id(&mut *tx, &account, &job_text).await?;
                tx.commit().await?;
                self.notify_job_work().await.ok();
                Ok(updated)
            }

            async fn claim_items(
                &self,
                limit: i64,
                lease: chrono::Duration,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::jobs::ItemClaim> {
                use rand::Rng;
                let token = uuid::Uuid::new_v4();
                let token_text = token.to_string();
                let now_ms = $crate::rows::millis(now);
                let lease_ms = $crate::rows::millis(now + lease);
                let limit = limit.max(1);
                let mut tx = self.begin_write().await?;
                let mut waiting: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT account_id, CAST(SUM(running_items) AS BIGINT) FROM jobs \
                     WHERE status IN ('pending', 'running') AND pending_items > 0 GROUP BY account_id",
                )
                .fetch_all(&mut *tx)
                .await?;
                if waiting.is_empty() {
                    return Ok($crate::jobs::ItemClaim { token, items: Vec::new() });
                }
                // The accounts with the fewest items running are served first (a small job
                // behind a big one gets the next free slots), ties in random order so no
                // tenant is always first.
                let offset = rand::thread_rng().gen_range(0..waiting.len());
                waiting.rotate_left(offset);
                waiting.sort_by_key(|(_, running)| *running);
                let accounts: Vec<String> = waiting.into_iter().map(|(account, _)| account).collect();
                let share = ((limit as usize).div_ceil(accounts.len())).max(1) as i64;
                let claim_sql = |account_filter: bool| {
                    format!(
                        "UPDATE job_items SET status = 'running', attempts = attempts + 1, \
                         lease_token = $1, lease_expires_at = $2, updated_at = $3 \
                         WHERE id IN (SELECT id FROM job_items WHERE status = 'pending' \
                         AND next_attempt_at <= $3 {} ORDER BY next_attempt_at, id LIMIT $4{})",
                        if account_filter { "AND account_id = $5" } else { "" },
                        $skip_locked
                    )
                };
                let per_account = claim_sql(true);
                let mut claimed: i64 = 0;
                let mut saturated = false;
                for account in &accounts {
                    let want = share.min(limit - claimed);
                    if want <= 0 {
                        break;
                    }
                    let got = sqlx::query(&per_account)
                        .bind(&token_text)
                        .bind(lease_ms)
                        .bind(now_ms)
                        .bind(want)
                        .bind(account)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected() as i64;
                    saturated |= got == want;
                    claimed += got;
                }
                if claimed < limit && saturated {
                    // Some accounts had more than their share: fill the batch from anyone.
                    claimed += sqlx::query(&claim_sql(false))
                        .bind(&token_text)
                        .bind(lease_ms)
                        .bind(now_ms)
                        .bind(limit - claimed)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected() as i64;
                }
                if claimed == 0 {
                    tx.commit().await?;
                    return Ok($crate::jobs::ItemClaim { token, items: Vec::new() });
                }
                let per_job: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT job_id, COUNT(*) FROM job_items WHERE lease_token = $1 GROUP BY job_id ORDER BY job_id",
                )
                .bind(&token_text)
                .fetch_all(&mut *tx)
                .await?;
                for (job_id, count) in per_job {
                    let delta = $crate::jobs::JobDelta { pending: -count, running: count, ..Default::default() };
                    Self::apply_job_delta(&mut tx, &job_id, delta, true, now_ms).await?;
                }
                let rows = sqlx::query_as::<_, $crate::rows::ClaimedItemRow>(
                    "SELECT i.id, i.job_id, i.account_id, i.store_id, s.platform, i.product_id, i.attribute, \
                     i.attempts, j.target_lang, j.user_prompt, j.brand_voice, p.source, p.revision \
                     FROM job_items i JOIN jobs j ON j.id = i.job_id JOIN stores s ON s.id = i.store_id \
                     LEFT JOIN products p ON p.id = i.product_id AND p.account_id = i.account_id \
                     WHERE i.lease_token = $1 ORDER BY i.id",
                )
                .bind(&token_text)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let items = rows
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::jobs::ItemClaim { token, items })
            }

            async fn extend_item_leases(
                &self,
                token: uuid::Uuid,
                until: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let mut tx = self.begin_write().await?;
                let extended = sqlx::query(
                    "UPDATE job_items SET lease_expires_at = $2 WHERE lease_token = $1 AND status = 'running'",
                )
                .bind(token.to_string())
                .bind($crate::rows::millis(until))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(extended)
            }

            async fn finish_items(
                &self,
                token: uuid::Uuid,
                outcomes: &[$crate::jobs::ItemOutcome],
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::jobs::FinishReport> {
                use $crate::jobs::ItemResult;
                let token_text = token.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut report = $crate::jobs::FinishReport::default();
                let mut deltas: std::collections::BTreeMap<String, $crate::jobs::JobDelta> =
                    std::collections::BTreeMap::new();
                let mut refunds: Vec<(String, String, String, i64)> = Vec::new();
                let mut released = false;
                let mut tx = self.begin_write().await?;
                for outcome in outcomes {
                    let item = outcome.item_id.to_string();
                    let fence = "WHERE id = $1 AND lease_token = $2 AND status = 'running' \
                                 RETURNING job_id, account_id, charge";
                    let row: Option<(String, String, i64)> = match &outcome.result {
                        ItemResult::Done { before, after, product_revision } => {
                            sqlx::query_as(&format!(
                                "UPDATE job_items SET status = 'done', lease_token = NULL, \
                                 lease_expires_at = NULL, before_value = $3, after_value = $4, \
                                 product_revision = $5, error_code = NULL, error_message = NULL, \
                                 finished_at = $6, updated_at = $6 {fence}"
                            ))
                            .bind(&item)
                            .bind(&token_text)
                            .bind($crate::jobs::to_json(before))
                            .bind($crate::jobs::to_json(after))
                            .bind(product_revision)
                            .bind(now_ms)
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                        ItemResult::Retry { at, code, message } => {
                            sqlx::query_as(&format!(
                                "UPDATE job_items SET status = 'pending', lease_token = NULL, \
                                 lease_expires_at = NULL, next_attempt_at = $3, error_code = $4, \
                                 error_message = $5, updated_at = $6 {fence}"
                            ))
                            .bind(&item)
                            .bind(&token_text)
                            .bind($crate::rows::millis(*at))
                            .bind(code)
                            .bind($crate::shared::diagnostic(message).into_owned())
                            .bind(now_ms)
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                        ItemResult::Fail { code, message } => {
                            sqlx::query_as(&format!(
                                "UPDATE job_items SET status = 'failed', lease_token = NULL, \
                                 lease_expires_at = NULL, error_code = $3, error_message = $4, \
                                 finished_at = $5, updated_at = $5 {fence}"
                            ))
                            .bind(&item)
                            .bind(&token_text)
                            .bind(code)
                            .bind($crate::shared::diagnostic(message).into_owned())
                            .bind(now_ms)
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                        ItemResult::Release => {
                            sqlx::query_as(&format!(
                                "UPDATE job_items SET status = 'pending', lease_token = NULL, \
                                 lease_expires_at = NULL, next_attempt_at = $3, \
                                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                                 updated_at = $3 {fence}"
                            ))
                            .bind(&item)
                            .bind(&token_text)
                            .bind(now_ms)
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                    };
                    let Some((job_id, account_id, charge)) = row else {
                        report.fenced += 1;
                        continue;
                    };
                    report.applied += 1;
                    let delta = deltas.entry(job_id.clone()).or_default();
                    delta.running -= 1;
                    match &outcome.result {
                        ItemResult::Done { .. } => delta.done += 1,
                        ItemResult::Retry { .. } => delta.pending += 1,
                        ItemResult::Release => {
                            delta.pending += 1;
                            released = true;
                        }
                        ItemResult::Fail { .. } => {
                            delta.failed += 1;
                            refunds.push((job_id, account_id, item, charge));
                        }
                    }
                }
                Self::lock_jobs(&mut tx, deltas.keys()).await?;
                Self::refund_failed_items(&mut tx, refunds, &mut deltas, now_ms).await?;
                Self::cancel_leftovers(&mut tx, &mut deltas, now_ms).await?;
                for (job_id, delta) in deltas {
                    Self::apply_job_delta(&mut tx, &job_id, delta, false, now_ms).await?;
                }
                tx.commit().await?;
                if released {
                    self.notify_job_work().await.ok();
                }
                Ok(report)
            }

            async fn recover_expired_items(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                max_attempts: i64,
            ) -> $crate::Result<$crate::jobs::RecoveryReport> {
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                let expired: Vec<(String, String, String, i64, i64)> = sqlx::query_as(&format!(
                    "SELECT id, job_id, account_id, attempts, charge FROM job_items \
                     WHERE status = 'running' AND lease_expires_at < $1 ORDER BY id LIMIT 1000{}",
                    $skip_locked
                ))
                .bind(now_ms)
                .fetch_all(&mut *tx)
                .await?;
                let mut report = $crate::jobs::RecoveryReport::default();
                let mut deltas: std::collections::BTreeMap<String, $crate::jobs::JobDelta> =
                    std::collections::BTreeMap::new();
                let mut refunds = Vec::new();
                for (id, job_id, account_id, attempts, charge) in expired {
                    let give_up = attempts >= max_attempts;
                    let changed = sqlx::query(
                        "UPDATE job_items SET status = $2, lease_token = NULL, lease_expires_at = NULL, \
                         next_attempt_at = $3, error_code = 'worker_lost', \
                         error_message = 'The worker handling this item stopped; it was tried again.', \
                         finished_at = CASE WHEN $2 = 'failed' THEN $3 ELSE NULL END, updated_at = $3 \
                         WHERE id = $1 AND status = 'running' AND lease_expires_at < $3",
                    )
                    .bind(&id)
                    .bind(if give_up { "failed" } else { "pending" })
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        continue;
                    }
                    let delta = deltas.entry(job_id.clone()).or_default();
                    delta.running -= 1;
                    if give_up {
                        delta.failed += 1;
                        report.failed += 1;
                        refunds.push((job_id, account_id, id, charge));
                    } else {
                        delta.pending += 1;
                        report.requeued += 1;
                    }
                }
                Self::lock_jobs(&mut tx, deltas.keys()).await?;
                Self::refund_failed_items(&mut tx, refunds, &mut deltas, now_ms).await?;
                Self::cancel_leftovers(&mut tx, &mut deltas, now_ms).await?;
                for (job_id, delta) in deltas {
                    Self::apply_job_delta(&mut tx, &job_id, delta, false, now_ms).await?;
                }
                tx.commit().await?;
                if report.requeued > 0 {
                    self.notify_job_work().await.ok();
                }
                Ok(report)
            }

            async fn notify_job_work(&self) -> $crate::Result<()> {
                self.signal_job_work().await
            }

            async fn wait_for_job_work(&self, timeout: std::time::Duration) {
                self.await_job_work(timeout).await
            }

            async fn record_publish(
                &self,
                account_id: uuid::Uuid,
                log: $crate::jobs::NewPublishLog,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::jobs::PublishLog> {
                let account = account_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let id = uuid::Uuid::now_v7();
                let mut tx = self.begin_write().await?;
                let marked = sqlx::query(
                    "UPDATE job_items SET published_at = $3, reverted_at = NULL, updated_at = $3 \
                     WHERE id = $1 AND account_id = $2",
                )
                .bind(log.item_id.to_string())
                .bind(&account)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked == 0 {
                    return Err($crate::StorageError::not_found("item"));
                }
                sqlx::query(
                    "INSERT INTO publish_logs (id, account_id, store_id, product_id, item_id, attribute, \
                     value_before, value_applied, forced, applied_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id.to_string())
                .bind(&account)
                .bind(log.store_id.to_string())
                .bind(log.product_id.to_string())
                .bind(log.item_id.to_string())
                .bind(log.attribute.as_str())
                .bind($crate::jobs::to_json(&log.value_before))
                .bind($crate::jobs::to_json(&log.value_applied))
                .bind(log.forced)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::jobs::PublishLog {
                    id,
                    store_id: log.store_id,
                    product_id: log.product_id,
                    item_id: log.item_id,
                    attribute: log.attribute,
                    value_before: log.value_before,
                    value_applied: log.value_applied,
                    forced: log.forced,
                    applied_at: $crate::rows::instant(now_ms)?,
                    reverted_at: None,
                })
            }

            async fn latest_publish(
                &self,
                account_id: uuid::Uuid,
                item_id: uuid::Uuid,
            ) -> $crate::Result<Option<$crate::jobs::PublishLog>> {
                sqlx::query_as::<_, $crate::rows::PublishLogRow>(
                    "SELECT id, store_id, product_id, item_id, attribute, value_before, value_applied, \
                     forced, applied_at, reverted_at FROM publish_logs \
                     WHERE account_id = $1 AND item_id = $2 ORDER BY applied_at DESC, id DESC LIMIT 1",
                )
                .bind(account_id.to_string())
                .bind(item_id.to_string())
                .fetch_optional(self.pool())
                .await?
                .map(TryInto::try_into)
                .transpose()
            }

            async fn record_revert(
                &self,
                account_id: uuid::Uuid,
                publish_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let account = account_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                let item: Option<String> = sqlx::query_scalar(
                    "UPDATE publish_logs SET reverted_at = $3 WHERE id = $1 AND account_id = $2 \
                     AND reverted_at IS NULL RETURNING item_id",
                )
                .bind(publish_id.to_string())
                .bind(&account)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(item) = item else {
                    return Err($crate::StorageError::not_found("publish"));
                };
                sqlx::query(
                    "UPDATE job_items SET published_at = NULL, reverted_at = $3, updated_at = $3 \
                     WHERE id = $1 AND account_id = $2",
                )
                .bind(&item)
                .bind(&account)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_job_storage;

/// Wakes every waiting worker, and leaves a permit for one that is between its claim and
/// its wait, so a wake-up is never lost in that gap.
pub(crate) fn wake_all(signal: &tokio::sync::Notify) {
    signal.notify_waiters();
    signal.notify_one();
}

//! Plans, credits over time, and the billing systems' deliveries. Every change of an
//! account's plan or balance happens in one transaction with its ledger row, so the sum of
//! the ledger always equals the credits that remain (`credits_total - credits_used`).
//!
//! Two facts of the billing systems shape this module: deliveries are retried for days
//! and arrive out of order (Wix,
//! <https://dev.wix.com/docs/rest/articles/getting-started/webhook-resend-policy>; Stripe,
//! <https://docs.stripe.com/webhooks/best-practices#event-ordering>; docs/protocols.md,
//! Wix §3.2 and Stripe §6), so a change carries the instant it was made and
//! an older one never overwrites a newer one; and a delivery can be processed twice (a
//! crash between the effect and its acknowledgement), so every effect is idempotent by
//! its ledger reference.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{Account, AccountStatus, BillingSource, LedgerEntry};
use uuid::Uuid;

use crate::Result;

/// A plan change decided by a billing system (a Wix plan event, a Stripe subscription, a
/// reconciliation) or by the end of a canceled period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    pub plan_id: String,
    pub billing_source: BillingSource,
    /// When the billing system made the change. A change older than the newest one
    /// applied to the account is ignored; `None` (a reconciliation read "now") always
    /// applies and does not move the mark.
    pub effective_at: Option<DateTime<Utc>>,
    /// When the paid period ends (renewal or, with `cancel_at_period_end`, the downgrade).
    pub period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// The ledger reference of the change (unique per account): the same change applied
    /// twice writes one row.
    pub reference: String,
}

/// What [`BillingStorage::apply_plan_change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChangeOutcome {
    /// The account after the call.
    pub account: Account,
    /// `false` when the change was older than the account's newest one, or already
    /// applied: nothing was written.
    pub applied: bool,
}

/// A recorded webhook delivery whose processing has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWebhookEvent {
    pub provider: String,
    pub dedupe_key: String,
    pub event_type: String,
    pub payload: String,
    pub received_at: DateTime<Utc>,
}

/// One page of an account's ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    /// Pass back to read the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The Stripe objects an account is linked to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripeLink {
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
}

/// Plans, credit resets and webhook bookkeeping.
#[async_trait]
pub trait BillingStorage: Send + Sync {
    /// Moves the account to a plan: `credits_total` becomes the plan's monthly credits,
    /// credits used this month are kept, the reset date is kept. One ledger row
    /// (`plan_change`, the change of the remaining credits).
    async fn apply_plan_change(
        &self,
        account_id: Uuid,
        change: PlanChange,
        now: DateTime<Utc>,
    ) -> Result<PlanChangeOutcome>;

    /// Marks an account inactive (the app was removed: `deactivated_at` is set once, its
    /// data is deleted after the grace period) or active again (reinstalled).
    async fn set_account_status(
        &self,
        account_id: Uuid,
        status: AccountStatus,
        now: DateTime<Utc>,
    ) -> Result<Account>;

    /// Gives every account whose reset date has come its plan's monthly credits again
    /// (used credits to 0, a `monthly_grant` ledger row referencing the period) and sets
    /// its next reset date. Running it twice on one day changes nothing. Returns how many
    /// accounts were reset.
    async fn reset_due_credits(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Moves accounts whose canceled subscription reached the end of its period to the
    /// free plan. Returns how many.
    async fn end_canceled_periods(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Records how a webhook delivery's processing ended (`applied`, `stale`, `ignored`,
    /// …). A delivery without it is processed again by the backlog sweep.
    async fn finish_webhook_event(
        &self,
        provider: &str,
        dedupe_key: &str,
        account_id: Option<Uuid>,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Whether a delivery was recorded and whether its processing finished.
    async fn webhook_event_processed(
        &self,
        provider: &str,
        dedupe_key: &str,
    ) -> Result<Option<bool>>;

    /// Deliveries of `provider` received before `received_before` whose processing never
    /// finished, oldest first.
    async fn pending_webhook_events(
        &self,
        provider: &str,
        received_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingWebhookEvent>>;

    /// The account's ledger, newest first, `limit` entries after `cursor`.
    async fn ledger_page(
        &self,
        account_id: Uuid,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<LedgerPage>;

    /// Links the account to its Stripe customer (and subscription, when known).
    async fn link_stripe(
        &self,
        account_id: Uuid,
        link: &StripeLink,
        now: DateTime<Utc>,
    ) -> Result<()>;
    async fn stripe_link(&self, account_id: Uuid) -> Result<StripeLink>;
    /// The account a Stripe customer belongs to.
    async fn find_account_by_stripe_customer(&self, customer_id: &str) -> Result<Option<Account>>;
}

/// The reset dates after `due` up to and past `today`: an account idle for months gets one
/// grant, dated by the period it starts, and the next date after today.
pub(crate) fn next_reset_after(due: NaiveDate, today: NaiveDate) -> NaiveDate {
    let mut next = domain::next_reset_date(due);
    while next <= today {
        next = domain::next_reset_date(next);
    }
    next
}

/// The ledger cursor: `created_at` milliseconds and id of the last entry shown.
pub(crate) fn encode_ledger_cursor(entry: &LedgerEntry) -> String {
    format!("{}_{}", entry.created_at.timestamp_millis(), entry.id)
}

pub(crate) fn decode_ledger_cursor(cursor: &str) -> Result<(i64, String)> {
    let invalid =
        || crate::StorageError::InvalidState("the cursor is not one this API gave".into());
    let (millis, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let millis: i64 = millis.parse().map_err(|_| invalid())?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((millis, id.to_string()))
}

macro_rules! impl_billing_storage {
    ($storage:ty, $db:ty, $for_update:expr) => {
        impl $storage {
            /// The account row, locked for the rest of the transaction on PostgreSQL.
            async fn lock_account(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
            ) -> $crate::Result<(domain::Account, Option<i64>)> {
                let mark: Option<Option<i64>> = sqlx::query_scalar(&format!(
                    "SELECT plan_event_at FROM accounts WHERE id = $1{}",
                    $for_update
                ))
                .bind(account_id)
                .fetch_optional(&mut **tx)
                .await?;
                let Some(mark) = mark else {
                    return Err($crate::StorageError::not_found("account"));
                };
                let account = Self::fetch_account(&mut **tx, account_id).await?;
                Ok((account, mark))
            }

            /// Writes a ledger row unless one with the same reason and reference exists;
            /// `false` when it existed (the change was applied before).
            async fn insert_ledger_once(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: &str,
                delta: i64,
                reason: &str,
                reference: &str,
                now_ms: i64,
            ) -> $crate::Result<bool> {
                let inserted = sqlx::query(
                    "INSERT INTO credit_ledger (id, account_id, delta, reason, reference, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, reason, reference) DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(account_id)
                .bind(delta)
                .bind(reason)
                .bind(reference)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                Ok(inserted > 0)
            }
        }

        #[async_trait::async_trait]
        impl $crate::billing::BillingStorage for $storage {
            async fn apply_plan_change(
                &self,
                account_id: uuid::Uuid,
                change: $crate::billing::PlanChange,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::billing::PlanChangeOutcome> {
                let account_text = account_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                let (account, mark) = Self::lock_account(&mut tx, &account_text).await?;
                let effective_ms = change.effective_at.map($crate::rows::millis);
                if let (Some(effective), Some(mark)) = (effective_ms, mark) {
                    if effective < mark {
                        tx.rollback().await?;
                        return Ok($crate::billing::PlanChangeOutcome { account, applied: false });
                    }
                }
                let plan = Self::fetch_plan(&mut *tx, &change.plan_id).await?;
                let credits = plan.credits_for(change.billing_source);
                let delta = credits - account.credits_total;
                if !Self::insert_ledger_once(
                    &mut tx,
                    &account_text,
                    delta,
                    "plan_change",
                    &change.reference,
                    now_ms,
                )
                .await?
                {
                    tx.rollback().await?;
                    return Ok($crate::billing::PlanChangeOutcome { account, applied: false });
                }
                sqlx::query(
                    "UPDATE accounts SET plan_id = $2, billing_source = $3, credits_total = $4, \
                     period_end = $5, cancel_at_period_end = $6, \
                     plan_event_at = CASE WHEN $7 IS NULL THEN plan_event_at \
                       WHEN plan_event_at IS NULL OR plan_event_at < $7 THEN $7 ELSE plan_event_at END, \
                     updated_at = $8 WHERE id = $1",
                )
                .bind(&account_text)
                .bind(&plan.id)
                .bind(change.billing_source.as_str())
                .bind(credits)
                .bind(change.period_end.map($crate::rows::millis))
                .bind(change.cancel_at_period_end)
                .bind(effective_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let account = Self::fetch_account(&mut *tx, &account_text).await?;
                tx.commit().await?;
                Ok($crate::billing::PlanChangeOutcome { account, applied: true })
            }

            async fn set_account_status(
                &self,
                account_id: uuid::Uuid,
                status: domain::AccountStatus,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<domain::Account> {
                let account_text = account_id.to_string();
                let now_ms = $crate::rows::millis(now);
                let mut tx = self.begin_write().await?;
                let changed = sqlx::query(
                    "UPDATE accounts SET status = $2, \
                     deactivated_at = CASE WHEN $2 = 'inactive' THEN COALESCE(deactivated_at, $3) ELSE NULL END, \
                     updated_at = $3 WHERE id = $1",
                )
                .bind(&account_text)
                .bind(status.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 0 {
                    return Err($crate::StorageError::not_found("account"));
                }
                let account = Self::fetch_account(&mut *tx, &account_text).await?;
                tx.commit().await?;
                Ok(account)
            }

            async fn reset_due_credits(&self, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<u64> {
                let today = now.date_naive();
                let today_text = $crate::rows::date_text(today);
                let now_ms = $crate::rows::millis(now);
                let mut reset = 0;
                loop {
                    let due: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM accounts WHERE credits_reset_on <= $1 ORDER BY id LIMIT 200",
                    )
                    .bind(&today_text)
                    .fetch_all(self.pool())
                    .await?;
                    if due.is_empty() {
                        return Ok(reset);
                    }
                    for account_text in due {
                        // One short transaction per account: a big backlog never holds a
                        // long lock, and a second runner finds the date already moved.
                        let mut tx = self.begin_write().await?;
                        let (account, _) = Self::lock_account(&mut tx, &account_text).await?;
                        if account.credits_reset_on > today {
                            tx.rollback().await?;
                            continue;
                        }
                        let plan = Self::fetch_plan(&mut *tx, &account.plan_id).await?;
                        let credits = plan.credits_for(account.billing_source);
                        let remaining = account.credits_total - account.credits_used;
                        let next = $crate::billing::next_reset_after(account.credits_reset_on, today);
                        let reference = format!("period:{}", account.credits_reset_on.format("%Y-%m-%d"));
                        Self::insert_ledger_once(
                            &mut tx,
                            &account_text,
                            credits - remaining,
                            "monthly_grant",
                            &reference,
                            now_ms,
                        )
                        .await?;
                        sqlx::query(
                            "UPDATE accounts SET credits_total = $2, credits_used = 0, \
                             credits_reset_on = $3, updated_at = $4 WHERE id = $1",
                        )
                        .bind(&account_text)
                        .bind(credits)
                        .bind($crate::rows::date_text(next))
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        reset += 1;
                    }
                }
            }

            async fn end_canceled_periods(&self, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<u64> {
                let now_ms = $crate::rows::millis(now);
                let ended: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT id, period_end FROM accounts WHERE cancel_at_period_end \
                     AND period_end IS NOT NULL AND period_end <= $1 ORDER BY id LIMIT 1000",
                )
                .bind(now_ms)
                .fetch_all(self.pool())
                .await?;
                let mut moved = 0;
                for (account_text, period_end) in ended {
                    let account_id = uuid::Uuid::parse_str(&account_text)
                        .map_err(|err| $crate::StorageError::Corrupt(err.to_string()))?;
                    let billing_source = Self::fetch_account(self.pool(), &account_text)
                        .await?
                        .billing_source;
                    let change = $crate::billing::PlanChange {
                        plan_id: domain::plan::FREE_PLAN_ID.to_owned(),
                        billing_source,
                        effective_at: None,
                        period_end: None,
                        cancel_at_period_end: false,
                        reference: format!("period_end:{period_end}"),
                    };
                    if self.apply_plan_change(account_id, change, now).await?.applied {
                        moved += 1;
                    }
                }
                Ok(moved)
            }

            async fn finish_webhook_event(
                &self,
                provider: &str,
                dedupe_key: &str,
                account_id: Option<uuid::Uuid>,
                result: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                sqlx::query(
                    "UPDATE webhook_events SET processed_at = $3, result = $4, \
                     account_id = COALESCE($5, account_id) WHERE provider = $1 AND dedupe_key = $2",
                )
                .bind(provider)
                .bind(dedupe_key)
                .bind($crate::rows::millis(now))
                .bind(result)
                .bind(account_id.map(|id| id.to_string()))
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn webhook_event_processed(
                &self,
                provider: &str,
                dedupe_key: &str,
            ) -> $crate::Result<Option<bool>> {
                let row: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT processed_at FROM webhook_events WHERE provider = $1 AND dedupe_key = $2",
                )
                .bind(provider)
                .bind(dedupe_key)
                .fetch_optional(self.pool())
                .await?;
                Ok(row.map(|processed| processed.is_some()))
            }

            async fn pending_webhook_events(
                &self,
                provider: &str,
                received_before: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::billing::PendingWebhookEvent>> {
                let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
                    "SELECT provider, dedupe_key, event_type, payload, received_at FROM webhook_events \
                     WHERE provider = $1 AND processed_at IS NULL AND received_at < $2 \
                     ORDER BY received_at, id LIMIT $3",
                )
                .bind(provider)
                .bind($crate::rows::millis(received_before))
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                rows.into_iter()
                    .map(|(provider, dedupe_key, event_type, payload, received_at)| {
                        Ok($crate::billing::PendingWebhookEvent {
                            provider,
                            dedupe_key,
                            event_type,
                            payload,
                            received_at: $crate::rows::instant(received_at)?,
                        })
                    })
                    .collect()
            }

            async fn ledger_page(
                &self,
                account_id: uuid::Uuid,
                cursor: Option<&str>,
                limit: i64,
            ) -> $crate::Result<$crate::billing::LedgerPage> {
                let limit = limit.clamp(1, 200);
                let (before_ms, before_id) = match cursor {
                    Some(cursor) => $crate::billing::decode_ledger_cursor(cursor)?,
                    None => (i64::MAX, String::new()),
                };
                let rows = sqlx::query_as::<_, $crate::rows::LedgerRow>(
                    "SELECT id, account_id, delta, reason, reference, created_at FROM credit_ledger \
                     WHERE account_id = $1 AND ($2 = '' OR created_at < $3 OR (created_at = $3 AND id < $2)) \
                     ORDER BY created_at DESC, id DESC LIMIT $4",
                )
                .bind(account_id.to_string())
                .bind(&before_id)
                .bind(before_ms)
                .bind(limit + 1)
                .fetch_all(self.pool())
                .await?;
                let mut entries = rows
                    .into_iter()
                    .map(domain::LedgerEntry::try_from)
                    .collect::<$crate::Result<Vec<_>>>()?;
                let next_cursor = if entries.len() as i64 > limit {
                    entries.truncate(limit as usize);
                    entries.last().map($crate::billing::encode_ledger_cursor)
                } else {
                    None
                };
                Ok($crate::billing::LedgerPage { entries, next_cursor })
            }

            async fn link_stripe(
                &self,
                account_id: uuid::Uuid,
                link: &$crate::billing::StripeLink,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let changed = sqlx::query(
                    "UPDATE accounts SET stripe_customer_id = COALESCE($2, stripe_customer_id), \
                     stripe_subscription_id = COALESCE($3, stripe_subscription_id), updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(account_id.to_string())
                .bind(&link.customer_id)
                .bind(&link.subscription_id)
                .bind($crate::rows::millis(now))
                .execute(self.pool())
                .await?
                .rows_affected();
                if changed == 0 {
                    return Err($crate::StorageError::not_found("account"));
                }
                Ok(())
            }

            async fn stripe_link(&self, account_id: uuid::Uuid) -> $crate::Result<$crate::billing::StripeLink> {
                let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT stripe_customer_id, stripe_subscription_id FROM accounts WHERE id = $1",
                )
                .bind(account_id.to_string())
                .fetch_optional(self.pool())
                .await?;
                let (customer_id, subscription_id) =
                    row.ok_or_else(|| $crate::StorageError::not_found("account"))?;
                Ok($crate::billing::StripeLink { customer_id, subscription_id })
            }

            async fn find_account_by_stripe_customer(
                &self,
                customer_id: &str,
            ) -> $crate::Result<Option<domain::Account>> {
                let id: Option<String> =
                    sqlx::query_scalar("SELECT id FROM accounts WHERE stripe_customer_id = $1")
                        .bind(customer_id)
                        .fetch_optional(self.pool())
                        .await?;
                match id {
                    Some(id) => Ok(Some(Self::fetch_account(self.pool(), &id).await?)),
                    None => Ok(None),
                }
            }
        }
    };
}

pub(crate) use impl_billing_storage;

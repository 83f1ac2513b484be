//! Row shapes as both engines return them (text ids, millisecond instants, text dates) and
//! their conversion into domain types. A row that does not convert is reported as
//! [`StorageError::Corrupt`] rather than panicking.

use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    Account, AccountStatus, BillingSource, LedgerEntry, LedgerReason, Plan, Platform, Store, User,
};
use uuid::Uuid;

use crate::StorageError;

pub(crate) fn millis(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_millis()
}

pub(crate) fn instant(ms: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StorageError::Corrupt(format!("timestamp {ms} out of range")))
}

/// Listings fetch one row more than a page: if it came, it is dropped and the page's last
/// id is the cursor of the next page.
pub(crate) fn cut_page<T>(items: &mut Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Option<Uuid> {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    }
}

pub(crate) fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn date(text: &str) -> Result<NaiveDate, StorageError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| StorageError::Corrupt(format!("bad date {text:?}")))
}

pub(crate) fn uuid(text: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(text).map_err(|_| StorageError::Corrupt(format!("bad id {text:?}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct PlanRow {
    pub id: String,
    pub name: String,
    pub price_monthly_cents: i64,
    pub monthly_credits: i64,
    pub standalone_monthly_credits: Option<i64>,
}

impl From<PlanRow> for Plan {
    fn from(row: PlanRow) -> Self {
        Plan {
            id: row.id,
            name: row.name,
            price_monthly_cents: row.price_monthly_cents,
            monthly_credits: row.monthly_credits,
            standalone_monthly_credits: row.standalone_monthly_credits,
        }
    }
}

pub(crate) const ACCOUNT_COLUMNS: &str = "id, name, plan_id, billing_source, status, \
    credits_total, credits_used, credits_reset_on, period_end, cancel_at_period_end, deactivated_at, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub id: String,
    pub name: String,
    pub plan_id: String,
    pub billing_source: String,
    pub status: String,
    pub credits_total: i64,
    pub credits_used: i64,
    pub credits_reset_on: String,
    pub period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub deactivated_at: Option<i64>,
    pub created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StorageError;

    fn try_from(row: AccountRow) -> Result<Self, Self::Error> {
        Ok(Account {
            id: uuid(&row.id)?,
            name: row.name,
            plan_id: row.plan_id,
            billing_source: BillingSource::parse(&row.billing_source).ok_or_else(|| {
                StorageError::Corrupt(format!("billing source {:?}", row.billing_source))
            })?,
            status: AccountStatus::parse(&row.status)
                .ok_or_else(|| StorageError::Corrupt(format!("account status {:?}", row.status)))?,
            credits_total: row.credits_total,
            credits_used: row.credits_used,
            credits_reset_on: date(&row.credits_reset_on)?,
            period_end: row.period_end.map(instant).transpose()?,
            cancel_at_period_end: row.cancel_at_period_end,
            deactivated_at: row.deactivated_at.map(instant).transpose()?,
            created_at: instant(row.created_at)?,
        })
    }
}

pub(crate) const USER_COLUMNS: &str = "id, account_id, email, password_hash, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: uuid(&row.id)?,
            account_id: uuid(&row.account_id)?,
            email: row.email,
            password_hash: row.password_hash,
            created_at: instant(row.created_at)?,
        })
    }
}

pub(crate) const STORE_COLUMNS: &str =
    "id, account_id, platform, external_id, name, currency, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct StoreRow {
    pub id: String,
    pub account_id: String,
    pub platform: String,
    pub external_id: String,
    pub name: String,
    pub currency: String,
    pub created_at: i64,
}

impl TryFrom<StoreRow> for Store {
    type Error = StorageError;

    fn try_from(row: StoreRow) -> Result<Self, Self::Error> {
        Ok(Store {
            id: uuid(&row.id)?,
            account_id: uuid(&row.account_id)?,
            platform: Platform::parse(&row.platform)
                .ok_or_else(|| StorageError::Corrupt(format!("platform {:?}", row.platform)))?,
            external_id: row.external_id,
            name: row.name,
            currency: row.currency,
            created_at: instant(row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    pub id: String,
    pub account_id: String,
    pub delta: i64,
    pub reason: String,
    pub reference: String,
    pub created_at: i64,
}

impl TryFrom<LedgerRow> for LedgerEntry {
    type Error = StorageError;

    fn try_from(row: LedgerRow) -> Result<Self, Self::Error> {
        Ok(LedgerEntry {
            id: uuid(&row.id)?,
            account_id: uuid(&row.account_id)?,
            delta: row.delta,
            reason: LedgerReason::parse(&row.reason)
                .ok_or_else(|| StorageError::Corrupt(format!("ledger reason {:?}", row.reason)))?,
            reference: row.reference,
            created_at: instant(row.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshTokenRow {
    pub user_id: String,
    pub account_id: String,
    pub family_id: String,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

pub(crate) const PRODUCT_SUMMARY_COLUMNS: &str = "id, store_id, external_id, title, sku, \
    price_minor, currency, availability, published, image_url, variant_count, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ProductSummaryRow {
    pub id: String,
    pub store_id: String,
    pub external_id: String,
    pub title: String,
    pub sku: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: String,
    pub availability: String,
    pub published: bool,
    pub image_url: Option<String>,
    pub variant_count: i64,
    pub updated_at: i64,
}

impl TryFrom<ProductSummaryRow> for crate::ProductSummary {
    type Error = StorageError;

    fn try_from(row: ProductSummaryRow) -> Result<Self, Self::Error> {
        Ok(crate::ProductSummary {
            id: uuid(&row.id)?,
            store_id: uuid(&row.store_id)?,
            external_id: row.external_id,
            title: row.title,
            sku: row.sku,
            price_minor: row.price_minor,
            currency: row.currency,
            availability: domain::Availability::parse(&row.availability).ok_or_else(|| {
                StorageError::Corrupt(format!("availability {:?}", row.availability))
            })?,
            published: row.published,
            image_url: row.image_url,
            variant_count: row.variant_count,
            updated_at: instant(row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProductRow {
    pub id: String,
    pub account_id: String,
    pub store_id: String,
    pub source: String,
    pub checksum: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ProductRow {
    pub(crate) fn into_product(
        self,
        collection_ids: Vec<String>,
    ) -> Result<crate::StoredProduct, StorageError> {
        Ok(crate::StoredProduct {
            id: uuid(&self.id)?,
            account_id: uuid(&self.account_id)?,
            store_id: uuid(&self.store_id)?,
            source: serde_json::from_str(&self.source)
                .map_err(|err| StorageError::Corrupt(format!("product source: {err}")))?,
            checksum: self.checksum,
            revision: self.revision,
            collection_ids: collection_ids
                .iter()
                .map(|id| uuid(id))
                .collect::<Result<_, _>>()?,
            created_at: instant(self.created_at)?,
            updated_at: instant(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CollectionRow {
    pub id: String,
    pub store_id: String,
    pub name: String,
    pub path: String,
    pub product_count: i64,
}

impl TryFrom<CollectionRow> for crate::Collection {
    type Error = StorageError;

    fn try_from(row: CollectionRow) -> Result<Self, Self::Error> {
        Ok(crate::Collection {
            id: uuid(&row.id)?,
            store_id: uuid(&row.store_id)?,
            name: row.name,
            path: row.path,
            product_count: row.product_count,
        })
    }
}

pub(crate) const SYNC_BATCH_COLUMNS: &str =
    "id, store_id, trigger, kind, status, fetched, created, \
    updated, unchanged, deleted, error, started_at, duration_ms";

#[derive(sqlx::FromRow)]
pub(crate) struct SyncBatchRow {
    pub id: String,
    pub store_id: String,
    pub trigger: String,
    pub kind: String,
    pub status: String,
    pub fetched: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub error: Option<String>,
    pub started_at: i64,
    pub duration_ms: i64,
}

impl TryFrom<SyncBatchRow> for crate::SyncBatch {
    type Error = StorageError;

    fn try_from(row: SyncBatchRow) -> Result<Self, Self::Error> {
        Ok(crate::SyncBatch {
            id: uuid(&row.id)?,
            store_id: uuid(&row.store_id)?,
            trigger: row.trigger,
            kind: row.kind,
            succeeded: row.status == "succeeded",
            fetched: row.fetched,
            created: row.created,
            updated: row.updated,
            unchanged: row.unchanged,
            deleted: row.deleted,
            error: row.error,
            started_at: instant(row.started_at)?,
            duration_ms: row.duration_ms,
        })
    }
}

pub(crate) const SYNC_REQUEST_COLUMNS: &str = "id, account_id, store_id, kind, trigger, \
    product_external_id, status, attempts, lease_expires_at, not_before, created_at, \
    finished_at, batch_id, error";

#[derive(sqlx::FromRow)]
pub(crate) struct SyncRequestRow {
    pub id: String,
    pub account_id: String,
    pub store_id: String,
    pub kind: String,
    pub trigger: String,
    pub product_external_id: String,
    pub status: String,
    pub attempts: i64,
    pub lease_expires_at: Option<i64>,
    pub not_before: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub batch_id: Option<String>,
    pub error: Option<String>,
}

impl TryFrom<SyncRequestRow> for crate::SyncRequest {
    type Error = StorageError;

    fn try_from(row: SyncRequestRow) -> Result<Self, Self::Error> {
        Ok(crate::SyncRequest {
            id: uuid(&row.id)?,
            account_id: uuid(&row.account_id)?,
            store_id: uuid(&row.store_id)?,
            kind: crate::SyncKind::parse(&row.kind)
                .ok_or_else(|| StorageError::Corrupt(format!("sync kind {:?}", row.kind)))?,
            trigger: row.trigger,
            product_external_id: (!row.product_external_id.is_empty())
                .then_some(row.product_external_id),
            status: crate::SyncRequestStatus::parse(&row.status)
                .ok_or_else(|| StorageError::Corrupt(format!("sync status {:?}", row.status)))?,
            attempts: row.attempts,
            lease_expires_at: row.lease_expires_at.map(instant).transpose()?,
            not_before: instant(row.not_before)?,
            created_at: instant(row.created_at)?,
            finished_at: row.finished_at.map(instant).transpose()?,
            batch_id: row.batch_id.as_deref().map(uuid).transpose()?,
            error: row.error,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WooAuthorizationRow {
    pub token_hash: String,
    pub account_id: String,
    pub store_url: String,
    pub name: String,
    pub currency: String,
    pub expires_at: i64,
    pub store_id: Option<String>,
}

impl TryFrom<WooAuthorizationRow> for crate::WooAuthorization {
    type Error = StorageError;

    fn try_from(row: WooAuthorizationRow) -> Result<Self, Self::Error> {
        Ok(crate::WooAuthorization {
            token_hash: row.token_hash,
            account_id: uuid(&row.account_id)?,
            store_url: row.store_url,
            name: row.name,
            currency: row.currency,
            expires_at: instant(row.expires_at)?,
            store_id: row.store_id.as_deref().map(uuid).transpose()?,
        })
    }
}

fn optional_instant(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StorageError> {
    ms.map(instant).transpose()
}

fn parse_named<T>(
    value: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StorageError> {
    parse(value).ok_or_else(|| StorageError::Corrupt(format!("{what} {value:?}")))
}

fn optional_json<T: serde::de::DeserializeOwned>(
    text: Option<String>,
    what: &str,
) -> Result<Option<T>, StorageError> {
    text.map(|text| crate::jobs::from_json(&text, what))
        .transpose()
}

#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    pub id: String,
    pub account_id: String,
    pub store_id: String,
    pub store_name: String,
    pub kind: String,
    pub status: String,
    pub source_scope: String,
    pub source_ids: String,
    pub attributes: String,
    pub target_lang: Option<String>,
    pub user_prompt: Option<String>,
    pub brand_voice: Option<String>,
    pub provider: String,
    pub product_count: i64,
    pub credits_per_item: i64,
    pub total_items: i64,
    pub pending_items: i64,
    pub running_items: i64,
    pub done_items: i64,
    pub failed_items: i64,
    pub canceled_items: i64,
    pub credits_reserved: i64,
    pub credits_refunded: i64,
    pub retry_rounds: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub updated_at: i64,
}

impl TryFrom<JobRow> for crate::jobs::Job {
    type Error = StorageError;

    fn try_from(row: JobRow) -> Result<Self, Self::Error> {
        Ok(crate::jobs::Job {
            id: uuid(&row.id)?,
            account_id: uuid(&row.account_id)?,
            store_id: uuid(&row.store_id)?,
            store_name: row.store_name,
            kind: parse_named(&row.kind, "job kind", domain::JobKind::parse)?,
            status: parse_named(&row.status, "job status", domain::JobStatus::parse)?,
            source_scope: parse_named(
                &row.source_scope,
                "source scope",
                domain::SourceScope::parse,
            )?,
            source_ids: crate::jobs::from_json(&row.source_ids, "job source ids")?,
            attributes: crate::jobs::from_json(&row.attributes, "job attributes")?,
            target_lang: row.target_lang,
            user_prompt: row.user_prompt,
            brand_voice: row.brand_voice,
            provider: row.provider,
            product_count: row.product_count,
            credits_per_item: row.credits_per_item,
            counts: domain::JobCounts {
                total: row.total_items,
                pending: row.pending_items,
                running: row.running_items,
                done: row.done_items,
                failed: row.failed_items,
                canceled: row.canceled_items,
            },
            credits_reserved: row.credits_reserved,
            credits_refunded: row.credits_refunded,
            retry_rounds: row.retry_rounds,
            created_at: instant(row.created_at)?,
            started_at: optional_instant(row.started_at)?,
            finished_at: optional_instant(row.finished_at)?,
            canceled_at: optional_instant(row.canceled_at)?,
            updated_at: instant(row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct JobItemRow {
    pub id: String,
    pub job_id: String,
    pub account_id: String,
    pub store_id: String,
    pub product_id: String,
    pub product_title: Option<String>,
    pub attribute: String,
    pub status: String,
    pub attempts: i64,
    pub before_value: Option<String>,
    pub after_value: Option<String>,
    pub product_revision: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub published_at: Option<i64>,
    pub reverted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<JobItemRow> for crate::jobs::JobItem {
    type Error = StorageError;

    fn try_from(row: JobItemRow) -> Result<Self, Self::Error> {
        Ok(crate::jobs::JobItem {
            id: uuid(&row.id)?,
            job_id: uuid(&row.job_id)?,
            account_id: uuid(&row.account_id)?,
            store_id: uuid(&row.store_id)?,
            product_id: uuid(&row.product_id)?,
            product_title: row.product_title,
            attribute: parse_named(&row.attribute, "attribute", domain::Attribute::parse)?,
            status: parse_named(&row.status, "item status", domain::ItemStatus::parse)?,
            attempts: row.attempts,
            before: optional_json(row.before_value, "item before value")?,
            after: optional_json(row.after_value, "item after value")?,
            product_revision: row.product_revision,
            error_code: row.error_code,
            error_message: row.error_message,
            published_at: optional_instant(row.published_at)?,
            reverted_at: optional_instant(row.reverted_at)?,
            created_at: instant(row.created_at)?,
            updated_at: instant(row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedItemRow {
    pub id: String,
    pub job_id: String,
    pub account_id: String,
    pub store_id: String,
    pub platform: String,
    pub product_id: String,
    pub attribute: String,
    pub attempts: i64,
    pub target_lang: Option<String>,
    pub user_prompt: Option<String>,
    pub brand_voice: Option<String>,
    pub source: Option<String>,
    pub revision: Option<i64>,
}

impl TryFrom<ClaimedItemRow> for crate::jobs::ClaimedItem {
    type Error = StorageError;

    fn try_from(row: ClaimedItemRow) -> Result<Self, Self::Error> {
        let product = match (row.source, row.revision) {
            (Some(source), Some(revision)) => {
                Some((crate::jobs::from_json(&source, "product source")?, revision))
            }
            _ => None,
        };
        Ok(crate::jobs::ClaimedItem {
            id: uuid(&row.id)?,
            job_id: uuid(&row.job_id)?,
            account_id: uuid(&row.account_id)?,
            store_id: uuid(&row.store_id)?,
            platform: parse_named(&row.platform, "platform", Platform::parse)?,
            product_id: uuid(&row.product_id)?,
            attribute: parse_named(&row.attribute, "attribute", domain::Attribute::parse)?,
            attempts: row.attempts,
            target_lang: row.target_lang,
            user_prompt: row.user_prompt,
            brand_voice: row.brand_voice,
            product,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PublishLogRow {
    pub id: String,
    pub store_id: String,
    pub product_id: String,
    pub item_id: String,
    pub attribute: String,
    pub value_before: String,
    pub value_applied: String,
    pub forced: bool,
    pub applied_at: i64,
    pub reverted_at: Option<i64>,
}

impl TryFrom<PublishLogRow> for crate::jobs::PublishLog {
    type Error = StorageError;

    fn try_from(row: PublishLogRow) -> Result<Self, Self::Error> {
        Ok(crate::jobs::PublishLog {
            id: uuid(&row.id)?,
            store_id: uuid(&row.store_id)?,
            product_id: uuid(&row.product_id)?,
            item_id: uuid(&row.item_id)?,
            attribute: parse_named(&row.attribute, "attribute", domain::Attribute::parse)?,
            value_before: crate::jobs::from_json(&row.value_before, "publish value before")?,
            value_applied: crate::jobs::from_json(&row.value_applied, "publish value applied")?,
            forced: row.forced,
            applied_at: instant(row.applied_at)?,
            reverted_at: optional_instant(row.reverted_at)?,
        })
    }
}

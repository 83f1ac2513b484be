//! Persistence. The rest of the system talks to one [`Storage`] trait written in domain
//! operations ("register a user", "rotate a refresh token"), never in SQL. Two
//! implementations exist: [`SqliteStorage`], the embedded default, and
//! [`PostgresStorage`], the production and scale-out backend. Each owns its migrations
//! (`migrations/sqlite`, `migrations/postgres`); the SQL they share is written once in
//! `shared.rs` and instantiated for both, so a behaviour cannot drift between backends.
//! One conformance suite (`tests/conformance.rs`) runs against both.
//!
//! Conventions both schemas follow: ids are UUID text, instants are Unix milliseconds in
//! `BIGINT` columns and calendar dates are `YYYY-MM-DD` text. These are the types both
//! engines store and compare identically, which keeps every query portable.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Account, Availability, LedgerEntry, Plan, Platform, SourceProduct, Store, User};
use uuid::Uuid;

pub mod billing;
pub mod jobs;
pub mod lifecycle;
mod postgres;
mod rows;
mod shared;
mod sqlite;

pub use billing::{
    BillingStorage, LedgerPage, PendingWebhookEvent, PlanChange, PlanChangeOutcome, StripeLink,
};
pub use jobs::{
    ClaimedItem, FinishReport, ItemClaim, ItemOutcome, ItemPage, ItemQuery, ItemResult, Job,
    JobItem, JobPage, JobQuery, JobStorage, NewJob, NewPublishLog, PublishLog, RecoveryReport,
};
pub use lifecycle::{
    AccountDeletion, LifecycleStorage, PurgedJobs, RetentionCutoffs, MAX_RETENTION_BATCH,
};
pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

/// Everything that can go wrong in storage, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("email address is already registered")]
    EmailTaken,
    #[error("this store is already connected")]
    StoreExists,
    #[error("unsupported database URL (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    /// A write named a revision that is no longer the current one.
    #[error("the record changed since revision {expected}; it is now at {current}")]
    RevisionMismatch { expected: i64, current: i64 },
    /// The account cannot pay for what it asked; nothing was reserved.
    #[error("{required} credits are needed but only {remaining} remain")]
    InsufficientCredits { required: i64, remaining: i64 },
    #[error("the selection contains no products")]
    EmptySelection,
    #[error("the selection has {count} products; at most {max} fit in one job")]
    SelectionTooLarge { count: usize, max: usize },
    /// The operation does not apply to the record in its current state.
    #[error("{0}")]
    InvalidState(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Text no backend is asked to store (a NUL character), refused alike on SQLite, which
    /// could store it, and PostgreSQL, which cannot. `field` names it as the API does.
    #[error("{field} {problem}")]
    InvalidText {
        field: String,
        problem: domain::TextProblem,
    },
    /// A write would take a store past the products it may hold; nothing was written.
    #[error("the store would hold {total} products; at most {max} are allowed per store")]
    TooManyProducts { total: u64, max: u64 },
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        // PostgreSQL's "invalid byte sequence for encoding UTF8: 0x00": the checks before
        // every write refuse NUL text, and this keeps any they miss a client error.
        let code = err.as_database_error().and_then(|db| db.code());
        if code.as_deref() == Some(POSTGRES_CHARACTER_NOT_IN_REPERTOIRE) {
            return StorageError::InvalidText {
                field: "text".into(),
                problem: domain::TextProblem::Nul,
            };
        }
        StorageError::Database(err)
    }
}

/// SQLSTATE 22021, PostgreSQL's answer to a NUL in text
/// (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
const POSTGRES_CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";

impl StorageError {
    pub(crate) fn not_found(entity: &'static str) -> Self {
        StorageError::NotFound { entity }
    }

    /// A write that named a row which no longer exists (its account or store was deleted
    /// while the request ran): the caller's mistake or bad timing, never a server fault.
    pub fn is_missing_reference(&self) -> bool {
        matches!(self, StorageError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation())
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which engine a [`Storage`] runs on; lets callers report it and pick engine-specific
/// strategies where the engines truly differ (locking, notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A standalone sign-up: the user and the account it creates.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub account_name: String,
}

/// A refresh token as stored: only its hash is kept, so a database leak leaks no sessions.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    /// All tokens descending from one login share a family; reuse of a rotated token
    /// revokes the family.
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub account_id: Uuid,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// The token that replaces a spent refresh token. Its family, user and account are taken
/// from the token it replaces.
#[derive(Debug, Clone)]
pub struct TokenReplacement {
    pub id: Uuid,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid; it is now spent and the replacement is stored.
    Rotated {
        user: Box<User>,
        account: Box<Account>,
        /// The login the token belongs to (its family).
        family_id: Uuid,
    },
    /// The token had already been rotated or revoked: the whole family is now revoked.
    Reused,
    /// The token's family was ended by a logout: the session is over, nothing was reused.
    SessionEnded,
    Expired,
    Unknown,
}

/// A single-use login link (the demo account's one-click login).
#[derive(Debug, Clone)]
pub struct NewLoginLink {
    pub token_hash: String,
    pub user_id: Uuid,
    pub account_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The result of resolving a Wix app instance to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub account: Account,
    pub store: Store,
    /// True only for the request that created the account (exactly one, even under races).
    pub created: bool,
}

/// A store connection to create.
#[derive(Debug, Clone)]
pub struct NewStore {
    pub platform: Platform,
    pub external_id: String,
    pub name: String,
    pub currency: String,
    /// Already encrypted (secrets crate format); storage never sees plaintext credentials.
    pub credentials_encrypted: Option<String>,
}

/// A finished sync run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    pub id: Uuid,
    pub store_id: Uuid,
    /// `manual`, `schedule`, `webhook` or `connect`.
    pub trigger: String,
    /// `full`, `incremental` or `single`.
    pub kind: String,
    pub succeeded: bool,
    pub fetched: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
}

/// A product as cached from its store, with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProduct {
    pub id: Uuid,
    pub account_id: Uuid,
    pub store_id: Uuid,
    pub source: SourceProduct,
    /// SHA-256 of the source record; an identical record is not written again.
    pub checksum: String,
    /// Incremented on every change; writes back to the store must name the revision read.
    pub revision: i64,
    pub collection_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns product lists show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSummary {
    pub id: Uuid,
    pub store_id: Uuid,
    pub external_id: String,
    pub title: String,
    pub sku: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: String,
    pub availability: Availability,
    pub published: bool,
    pub image_url: Option<String>,
    pub variant_count: i64,
    pub updated_at: DateTime<Utc>,
}

/// Filters and cursor of a product listing; every listing is within one account.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    pub store_id: Option<Uuid>,
    /// Case-insensitive substring of title, SKU, brand or category.
    pub search: Option<String>,
    pub collection_id: Option<Uuid>,
    /// Return products after this id (the previous page's `next_cursor`).
    pub after: Option<Uuid>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPage {
    pub items: Vec<ProductSummary>,
    /// Present when more products follow.
    pub next_cursor: Option<Uuid>,
    /// Products matching the filters, across all pages.
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub id: Uuid,
    pub store_id: Uuid,
    pub name: String,
    /// `Parent > Child` for nested categories.
    pub path: String,
    pub product_count: i64,
}

/// What writing a batch of source products changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertSummary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What a sync request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// Every product; products the store no longer has are removed.
    Full,
    /// Products changed since the store's `synced_through` instant.
    Incremental,
    /// One product (a webhook's), removed if the store no longer has it.
    Single,
}

impl SyncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Full => "full",
            SyncKind::Incremental => "incremental",
            SyncKind::Single => "single",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(SyncKind::Full),
            "incremental" => Some(SyncKind::Incremental),
            "single" => Some(SyncKind::Single),
            _ => None,
        }
    }
}

/// Where a queued sync request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRequestStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl SyncRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRequestStatus::Pending => "pending",
            SyncRequestStatus::Running => "running",
            SyncRequestStatus::Done => "done",
            SyncRequestStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(SyncRequestStatus::Pending),
            "running" => Some(SyncRequestStatus::Running),
            "done" => Some(SyncRequestStatus::Done),
            "failed" => Some(SyncRequestStatus::Failed),
            _ => None,
        }
    }
}

/// A sync to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSyncRequest {
    pub kind: SyncKind,
    /// `manual`, `schedule`, `webhook` or `connect`.
    pub trigger: String,
    /// The product's platform id, for [`SyncKind::Single`].
    pub product_external_id: Option<String>,
}

/// A queued, running or finished sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub id: Uuid,
    pub account_id: Uuid,
    pub store_id: Uuid,
    pub kind: SyncKind,
    pub trigger: String,
    pub product_external_id: Option<String>,
    pub status: SyncRequestStatus,
    /// Claims so far; the current claim's fencing token.
    pub attempts: i64,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub not_before: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The sync batch of the last attempt.
    pub batch_id: Option<Uuid>,
    pub error: Option<String>,
}

/// How a claimed sync request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Done {
        batch_id: Uuid,
    },
    /// Queued again for `retry_at` (a transient failure), or failed for good when `None`.
    Failed {
        batch_id: Option<Uuid>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// A store's sync settings and progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSyncState {
    /// The store takes part in the scheduled incremental sync.
    pub auto_sync: bool,
    /// Changes up to this instant have been read.
    pub synced_through: Option<DateTime<Utc>>,
    /// When the scheduler last queued a sync for the store.
    pub sync_scheduled_at: Option<DateTime<Utc>>,
}

/// A recorded incoming webhook delivery.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    /// `woocommerce`, `wix`, `stripe`.
    pub provider: String,
    /// What makes a delivery the same delivery (the provider's delivery or event id).
    pub dedupe_key: String,
    pub event_type: String,
    pub account_id: Option<Uuid>,
    pub payload: String,
}

/// A WooCommerce key-generation request awaiting the store's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WooAuthorization {
    pub token_hash: String,
    pub account_id: Uuid,
    pub store_url: String,
    pub name: String,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
    /// Set once the callback connected the store.
    pub store_id: Option<Uuid>,
}

/// The operations the product needs from its database. Every method that reads or changes
/// tenant data takes the owning account id and filters by it: a caller cannot reach
/// another account's rows by guessing ids.
#[async_trait]
pub trait Storage: JobStorage + BillingStorage + LifecycleStorage + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies pending migrations. Safe to run from several processes at once.
    async fn migrate(&self) -> Result<()>;

    /// Round-trips to the database (readiness probe).
    async fn ping(&self) -> Result<()>;

    /// Makes the plans table match the configured plans (insert or update by id).
    async fn sync_plans(&self, plans: &[Plan]) -> Result<()>;
    async fn list_plans(&self) -> Result<Vec<Plan>>;
    async fn get_plan(&self, plan_id: &str) -> Result<Plan>;

    /// Creates a user and its own account on the free plan, with the first monthly grant,
    /// in one transaction. [`StorageError::EmailTaken`] if the email exists.
    async fn register_user(&self, new_user: NewUser, now: DateTime<Utc>)
        -> Result<(User, Account)>;
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn get_user(&self, account_id: Uuid, user_id: Uuid) -> Result<User>;

    async fn get_account(&self, account_id: Uuid) -> Result<Account>;
    async fn rename_account(
        &self,
        account_id: Uuid,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Account>;

    /// The demo account and its password-less user, created on first call.
    async fn ensure_demo_account(&self, now: DateTime<Utc>) -> Result<(User, Account)>;

    /// Resolves a Wix instance to its account, creating account and store on first sight.
    /// Concurrent first calls for one instance create exactly one account.
    async fn provision_wix_instance(
        &self,
        instance_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Provisioned>;

    async fn insert_refresh_token(&self, token: NewRefreshToken, now: DateTime<Utc>) -> Result<()>;
    /// Spends the presented token and stores `replacement` in its family, atomically.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: TokenReplacement,
        now: DateTime<Utc>,
    ) -> Result<RefreshOutcome>;
    /// Revokes the family of the presented token if it belongs to `user_id`. Returns whether
    /// a family was revoked.
    async fn revoke_refresh_family(
        &self,
        user_id: Uuid,
        presented_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Whether the login `family_id` of this user and account still stands: not signed out,
    /// not revoked for reuse, not expired, and its user and account still exist. Access
    /// tokens name their family, so this is what makes them end with their session.
    async fn session_is_active(
        &self,
        account_id: Uuid,
        user_id: Uuid,
        family_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn create_login_link(&self, link: NewLoginLink, now: DateTime<Utc>) -> Result<()>;
    /// Marks the link used and returns its user, or `None` if unknown, used or expired.
    async fn consume_login_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, Account)>>;

    /// Deletes refresh tokens and login links that expired before `expired_before`;
    /// returns how many rows went.
    async fn purge_expired_sessions(&self, expired_before: DateTime<Utc>) -> Result<u64>;

    async fn list_stores(&self, account_id: Uuid) -> Result<Vec<Store>>;
    async fn get_store(&self, account_id: Uuid, store_id: Uuid) -> Result<Store>;
    /// The store with this id whatever its account. For operator tools (the CLI), never for
    /// request handlers, which must use the account-scoped [`Storage::get_store`].
    async fn find_store_for_operator(&self, store_id: Uuid) -> Result<Store>;
    /// [`StorageError::StoreExists`] if the platform's store is connected already.
    async fn create_store(
        &self,
        account_id: Uuid,
        store: NewStore,
        now: DateTime<Utc>,
    ) -> Result<Store>;
    /// The store's encrypted credentials, if it has any.
    async fn store_credentials(&self, account_id: Uuid, store_id: Uuid) -> Result<Option<String>>;
    /// Deletes the store's products whose external id is not in `keep` (a full sync's view
    /// of the store); returns how many went.
    async fn remove_products_except(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        keep: &[String],
    ) -> Result<u64>;
    async fn record_sync_batch(&self, account_id: Uuid, batch: &SyncBatch) -> Result<()>;
    /// Newest first.
    async fn list_sync_batches(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        limit: i64,
    ) -> Result<Vec<SyncBatch>>;
    /// Deletes the store and everything cached from it.
    async fn delete_store(&self, account_id: Uuid, store_id: Uuid) -> Result<()>;

    /// Inserts new products and updates changed ones (by external id, compared by
    /// checksum), with their collections, in one transaction.
    async fn upsert_products(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        products: &[SourceProduct],
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary>;
    /// [`Storage::upsert_products`] for a catalog import: refused with
    /// [`StorageError::TooManyProducts`], writing nothing, when the store would hold more
    /// than `max_products` products afterwards.
    async fn import_products(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        products: &[SourceProduct],
        max_products: u64,
        now: DateTime<Utc>,
    ) -> Result<UpsertSummary>;
    async fn list_products(&self, account_id: Uuid, query: &ProductQuery) -> Result<ProductPage>;
    async fn get_product(&self, account_id: Uuid, product_id: Uuid) -> Result<StoredProduct>;
    /// Every product of a store in listing order (for export).
    async fn store_products(&self, account_id: Uuid, store_id: Uuid) -> Result<Vec<SourceProduct>>;
    async fn list_collections(
        &self,
        account_id: Uuid,
        store_id: Option<Uuid>,
    ) -> Result<Vec<Collection>>;

    /// The product of a store with this platform id.
    async fn find_product_by_external_id(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        external_id: &str,
    ) -> Result<Option<StoredProduct>>;
    /// Replaces a product's source record if its revision is still `expected_revision`
    /// ([`StorageError::RevisionMismatch`] otherwise; `None` skips the check). The local
    /// catalog's publish path: the record is the store.
    async fn replace_product_source(
        &self,
        account_id: Uuid,
        product_id: Uuid,
        expected_revision: Option<i64>,
        source: &SourceProduct,
        now: DateTime<Utc>,
    ) -> Result<StoredProduct>;
    /// Removes one product (a store's deletion); returns whether it existed.
    async fn remove_product(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        external_id: &str,
    ) -> Result<bool>;

    async fn store_sync_state(&self, account_id: Uuid, store_id: Uuid) -> Result<StoreSyncState>;
    async fn set_auto_sync(&self, account_id: Uuid, store_id: Uuid, enabled: bool) -> Result<()>;
    /// Moves the store's `synced_through` forward to `through` (never back).
    async fn mark_synced_through(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        through: DateTime<Utc>,
    ) -> Result<()>;
    async fn set_webhook_secret(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        sealed_secret: Option<&str>,
    ) -> Result<()>;
    /// The store a webhook names in its URL, whatever its account, with its encrypted
    /// webhook secret. For webhook receivers, which authenticate by that secret.
    async fn webhook_store(&self, store_id: Uuid) -> Result<Option<(Store, Option<String>)>>;
    /// Records a webhook delivery; `false` if the same delivery was recorded before.
    async fn record_webhook_event(
        &self,
        event: NewWebhookEvent,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Queues a sync. A waiting request of the same store, kind and product absorbs it (the
    /// waiting one is returned).
    async fn enqueue_sync(
        &self,
        account_id: Uuid,
        store_id: Uuid,
        request: NewSyncRequest,
        now: DateTime<Utc>,
    ) -> Result<SyncRequest>;
    /// Claims the oldest due request (pending, or running with an expired lease) of a store
    /// that has no other sync running, leasing it until `now + lease`. Across all accounts:
    /// for workers only.
    async fn claim_sync_request(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Option<SyncRequest>>;
    /// Extends the lease of a claim still held (`attempt` is its fencing token); `false`
    /// when the claim was lost.
    async fn extend_sync_lease(
        &self,
        request_id: Uuid,
        attempt: i64,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Ends a claim; `false` (and nothing written) when the claim was lost to another
    /// worker after a lease expiry.
    async fn finish_sync_request(
        &self,
        request_id: Uuid,
        attempt: i64,
        outcome: SyncOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn get_sync_request(&self, account_id: Uuid, request_id: Uuid) -> Result<SyncRequest>;
    /// The store's waiting and running requests, oldest first.
    async fn active_sync_requests(
        &self,
        account_id: Uuid,
        store_id: Uuid,
    ) -> Result<Vec<SyncRequest>>;
    /// Queues an incremental sync for every auto-sync store not scheduled within
    /// `interval`; returns how many were queued.
    async fn enqueue_scheduled_syncs(
        &self,
        now: DateTime<Utc>,
        interval: chrono::Duration,
    ) -> Result<u64>;

    /// Makes `holder` the leader `name` if nobody else is (PostgreSQL: a session advisory
    /// lock held on a dedicated connection; SQLite: a lease row valid for `ttl`). Called
    /// again by the leader, it confirms (and on SQLite renews) the leadership.
    async fn try_lead(
        &self,
        name: &str,
        holder: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives up leadership `name` if `holder` has it.
    async fn resign_lead(&self, name: &str, holder: &str) -> Result<()>;

    /// Remembers a WooCommerce key-generation request.
    async fn create_woo_authorization(
        &self,
        authorization: WooAuthorization,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The request with this token hash, if it has not expired.
    async fn find_woo_authorization(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WooAuthorization>>;
    async fn complete_woo_authorization(&self, token_hash: &str, store_id: Uuid) -> Result<()>;

    /// Newest first.
    async fn list_ledger(&self, account_id: Uuid, limit: i64) -> Result<Vec<LedgerEntry>>;
}

/// Connects to the database named by `url` (`sqlite://path` or `postgres://…`) and applies
/// migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Storage>> {
    let storage: Arc<dyn Storage> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStorage::connect(url, max_connections).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresStorage::connect(url, max_connections).await?)
    } else {
        return Err(StorageError::UnsupportedUrl(redact_url(url)));
    };
    storage.migrate().await?;
    Ok(storage)
}

/// A database URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/optimizer"),
            "postgres://app:***@db:5432/optimizer"
        );
        assert_eq!(
            redact_url("postgres://app@db/optimizer"),
            "postgres://app@db/optimizer"
        );
        assert_eq!(
            redact_url("sqlite://data/optimizer.db"),
            "sqlite://data/optimizer.db"
        );
    }
}

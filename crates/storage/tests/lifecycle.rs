//! The data lifecycle on both backends: retention deletes exactly the jobs and publish logs
//! past their windows (never a running job, never a revertible publish inside its window,
//! never the ledger), in bounded batches; deleting an account removes its rows from every
//! table and nobody else's; deactivated accounts go after their grace period.
//!
//! Row counts are read with plain SQL, and the tables to check are read from the schema
//! itself: a table added later with an `account_id` column is checked without editing this
//! file (and fails the test until account deletion covers it).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::{
    default_plans, AccountStatus, Attribute, Availability, ContentValue, JobKind, JobStatus,
    Platform, SourceProduct, SourceScope,
};
use storage::{
    ItemOutcome, ItemResult, NewJob, NewLoginLink, NewPublishLog, NewRefreshToken, NewStore,
    NewSyncRequest, NewUser, NewWebhookEvent, PublishLog, RetentionCutoffs, Storage, StorageError,
    SyncBatch, SyncKind, WooAuthorization,
};
use testkit::TestDatabase;
use uuid::Uuid;

/// Instantiates each `async fn name(storage, raw)` scenario for SQLite and PostgreSQL; the
/// scenarios need the database itself too, to count rows behind the storage layer's back.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = testkit::TestDatabase::sqlite();
                    let (storage, raw) = super::open(&db).await;
                    super::$scenario(storage, raw).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(db) = testkit::TestDatabase::postgres().await else { return };
                    let (storage, raw) = super::open(&db).await;
                    super::$scenario(storage, raw).await;
                }
            )*
        }
    };
}

on_both_backends!(
    retention_deletes_exactly_what_is_past_each_window,
    retention_deletes_in_bounded_batches_oldest_first,
    switched_off_windows_delete_nothing,
    deleting_an_account_removes_its_rows_from_every_table_and_nothing_else,
    deleting_an_unknown_account_is_not_found,
    workers_holding_items_of_a_deleted_account_are_fenced,
    deleting_an_account_while_workers_run_its_jobs_leaves_nothing,
    deactivated_accounts_are_deleted_after_their_grace_period,
);

async fn open(db: &TestDatabase) -> (Arc<dyn Storage>, Raw) {
    let storage = storage::connect(db.url(), 8)
        .await
        .expect("connect and migrate");
    storage.sync_plans(&default_plans()).await.unwrap();
    (storage, Raw::connect(db.url()).await)
}

/// A plain connection to the test database, for counting rows.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Tables that belong to no account.
const GLOBAL_TABLES: &[&str] = &["plans", "leader_leases", "_sqlx_migrations"];

impl Raw {
    async fn connect(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Raw::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
        } else {
            Raw::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        }
    }

    async fn count(&self, sql: &str, bind: &str) -> i64 {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).bind(bind).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).bind(bind).fetch_one(pool).await,
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    async fn all_tables(&self) -> Vec<String> {
        self.strings(match self {
            Raw::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Raw::Postgres(_) => {
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name"
            }
        })
        .await
    }

    async fn tables_with_account_id(&self) -> Vec<String> {
        self.strings(match self {
            Raw::Sqlite(_) => {
                "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND c.name = 'account_id' ORDER BY m.name"
            }
            Raw::Postgres(_) => {
                "SELECT table_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name = 'account_id' \
                 ORDER BY table_name"
            }
        })
        .await
    }

    /// Every table with account data, with the query counting one account's rows. Fails
    /// on a table it cannot classify, so a new table must be thought about here.
    async fn account_tables(&self) -> BTreeMap<String, String> {
        let keyed = self.tables_with_account_id().await;
        let mut tables = BTreeMap::new();
        for table in self.all_tables().await {
            let sql = if keyed.contains(&table) {
                format!("SELECT COUNT(*) FROM {table} WHERE account_id = $1")
            } else if table == "accounts" {
                "SELECT COUNT(*) FROM accounts WHERE id = $1".to_owned()
            } else if table == "product_collections" {
                "SELECT COUNT(*) FROM product_collections pc \
                 JOIN products p ON p.id = pc.product_id WHERE p.account_id = $1"
                    .to_owned()
            } else {
                assert!(
                    GLOBAL_TABLES.contains(&table.as_str()),
                    "table {table} has no account_id: say here how its rows belong to an account"
                );
                continue;
            };
            tables.insert(table, sql);
        }
        tables
    }

    /// The account's rows per table.
    async fn footprint(&self, account_id: Uuid) -> BTreeMap<String, i64> {
        let mut counts = BTreeMap::new();
        for (table, sql) in self.account_tables().await {
            let count = self.count(&sql, &account_id.to_string()).await;
            counts.insert(table, count);
        }
        counts
    }

    /// Rows of `table` across all accounts.
    async fn total(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }
}

fn product(n: usize) -> SourceProduct {
    SourceProduct {
        external_id: format!("p{n}"),
        title: format!("Product {n}"),
        description_html: "<p>Plain.</p>".into(),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: Some(format!("SKU-{n}")),
        gtin: None,
        mpn: None,
        brand: None,
        price: None,
        sale_price: None,
        currency: "USD".into(),
        availability: Availability::InStock,
        stock: None,
        categories: vec![format!("Clothing > Group {}", n % 2)],
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

struct Shop {
    account: Uuid,
    user: Uuid,
    email: String,
    store: Uuid,
    products: Vec<Uuid>,
}

/// An account (on a plan with room for many jobs) with a local store of `count` products.
async fn shop(storage: &Arc<dyn Storage>, count: usize) -> Shop {
    let email = format!("{}@example.com", Uuid::new_v4());
    let (user, account) = storage
        .register_user(
            NewUser {
                email: email.clone(),
                password_hash: "$argon2id$placeholder".into(),
                account_name: "Shop".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let store = storage
        .create_store(
            account.id,
            NewStore {
                platform: Platform::Local,
                external_id: Uuid::new_v4().to_string(),
                name: "Catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: Some("v1:sealed-credentials".into()),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let sources: Vec<SourceProduct> = (0..count).map(product).collect();
    storage
        .upsert_products(account.id, store.id, &sources, Utc::now())
        .await
        .unwrap();
    let page = storage
        .list_products(
            account.id,
            &storage::ProductQuery {
                store_id: Some(store.id),
                limit: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Shop {
        account: account.id,
        user: user.id,
        email,
        store: store.id,
        products: page.items.iter().map(|p| p.id).collect(),
    }
}

/// How a test job ends.
#[derive(Clone, Copy)]
enum End {
    /// Never claimed.
    Pending,
    /// Claimed and never finished.
    Running,
    Done,
    /// Every item failed.
    Failed,
    /// One item done, the others failed (the job ends `done`).
    Mixed,
    /// Canceled before any item was claimed.
    Canceled,
    /// Canceled while its items were running: canceled, but not finished.
    CanceledWhileRunning,
}

/// A one-attribute job over the shop's products, created at `at` and ended a minute later.
/// Returns the job and its item ids.
async fn job_at(
    storage: &Arc<dyn Storage>,
    shop: &Shop,
    at: DateTime<Utc>,
    end: End,
) -> (Uuid, Vec<Uuid>) {
    let job = storage
        .create_job(
            shop.account,
            NewJob {
                store_id: shop.store,
                kind: JobKind::Text,
                source_scope: SourceScope::Products,
                source_ids: shop.products.clone(),
                attributes: vec![Attribute::Title],
                target_lang: None,
                user_prompt: None,
                brand_voice: None,
                provider: "rules".into(),
                credits_per_item: 1,
                max_products: 100,
            },
            at,
        )
        .await
        .unwrap();
    let later = at + Duration::minutes(1);
    if let End::Canceled = end {
        storage
            .cancel_job(shop.account, job.id, later)
            .await
            .unwrap();
    }
    if matches!(end, End::Pending | End::Canceled) {
        let items = storage
            .list_job_items(
                shop.account,
                job.id,
                &storage::ItemQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        return (job.id, items.items.iter().map(|item| item.id).collect());
    }
    let claim = storage
        .claim_items(100, Duration::minutes(1), at)
        .await
        .unwrap();
    assert_eq!(
        claim.items.len(),
        shop.products.len(),
        "only this job was waiting"
    );
    assert!(claim.items.iter().all(|item| item.job_id == job.id));
    let items: Vec<Uuid> = claim.items.iter().map(|item| item.id).collect();
    let outcome = |n: usize, id: Uuid| ItemOutcome {
        item_id: id,
        result: match (end, n) {
            (End::Done, _) | (End::Mixed, 0) => ItemResult::Done {
                before: ContentValue::Text("old".into()),
                after: ContentValue::Text("new".into()),
                product_revision: 1,
            },
            _ => ItemResult::Fail {
                code: "invalid_output".into(),
                message: "The answer was empty".into(),
            },
        },
    };
    match end {
        End::Running => {}
        End::CanceledWhileRunning => {
            storage
                .cancel_job(shop.account, job.id, later)
                .await
                .unwrap();
        }
        _ => {
            let outcomes: Vec<ItemOutcome> = items
                .iter()
                .enumerate()
                .map(|(n, id)| outcome(n, *id))
                .collect();
            let report = storage
                .finish_items(claim.token, &outcomes, later)
                .await
                .unwrap();
            assert_eq!(report.applied, items.len() as u64);
        }
    }
    (job.id, items)
}

async fn publish_at(
    storage: &Arc<dyn Storage>,
    shop: &Shop,
    item: Uuid,
    at: DateTime<Utc>,
) -> PublishLog {
    storage
        .record_publish(
            shop.account,
            NewPublishLog {
                store_id: shop.store,
                product_id: shop.products[0],
                item_id: item,
                attribute: Attribute::Title,
                value_before: ContentValue::Text("old".into()),
                value_applied: ContentValue::Text("new".into()),
                forced: false,
            },
            at,
        )
        .await
        .unwrap()
}

async fn job_exists(storage: &Arc<dyn Storage>, shop: &Shop, job: Uuid) -> bool {
    match storage.get_job(shop.account, job).await {
        Ok(_) => true,
        Err(StorageError::NotFound { .. }) => false,
        Err(err) => panic!("{err}"),
    }
}

fn days_ago(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    now - Duration::days(days)
}

/// The documented defaults: completed 90 days, failed 30 days, publish logs a year.
fn default_cutoffs(now: DateTime<Utc>) -> RetentionCutoffs {
    RetentionCutoffs {
        completed_jobs_before: Some(days_ago(now, 90)),
        failed_jobs_before: Some(days_ago(now, 30)),
        publish_logs_before: Some(days_ago(now, 365)),
    }
}

async fn retention_deletes_exactly_what_is_past_each_window(storage: Arc<dyn Storage>, raw: Raw) {
    let now = Utc::now();
    let shop = shop(&storage, 2).await;
    // In time order, so each claim finds only its own job waiting.
    let (published_long_ago, k_items) =
        job_at(&storage, &shop, days_ago(now, 400), End::Done).await;
    let ancient_log = publish_at(&storage, &shop, k_items[0], days_ago(now, 400)).await;
    let (running, _) = job_at(&storage, &shop, days_ago(now, 200), End::Running).await;
    let (done_old, done_old_items) = job_at(&storage, &shop, days_ago(now, 100), End::Done).await;
    let (revertible, i_items) = job_at(&storage, &shop, days_ago(now, 100), End::Done).await;
    let kept_log = publish_at(&storage, &shop, i_items[0], days_ago(now, 100)).await;
    let (reverted, j_items) = job_at(&storage, &shop, days_ago(now, 100), End::Done).await;
    let reverted_log = publish_at(&storage, &shop, j_items[0], days_ago(now, 100)).await;
    storage
        .record_revert(shop.account, reverted_log.id, days_ago(now, 99))
        .await
        .unwrap();
    let (canceled_while_running, _) = job_at(
        &storage,
        &shop,
        days_ago(now, 98),
        End::CanceledWhileRunning,
    )
    .await;
    let (canceled_old, _) = job_at(&storage, &shop, days_ago(now, 95), End::Canceled).await;
    let (done_recent, _) = job_at(&storage, &shop, days_ago(now, 80), End::Done).await;
    let (failed_old, _) = job_at(&storage, &shop, days_ago(now, 40), End::Failed).await;
    let (mixed_old, _) = job_at(&storage, &shop, days_ago(now, 40), End::Mixed).await;
    let (failed_recent, _) = job_at(&storage, &shop, days_ago(now, 20), End::Failed).await;
    let (pending_old, _) = job_at(&storage, &shop, days_ago(now, 200), End::Pending).await;
    assert_eq!(
        storage
            .get_job(shop.account, mixed_old)
            .await
            .unwrap()
            .status,
        JobStatus::Done
    );
    let canceled = storage
        .get_job(shop.account, canceled_while_running)
        .await
        .unwrap();
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert!(canceled.finished_at.is_none(), "its items still run");
    let ledger_before = raw.footprint(shop.account).await["credit_ledger"];
    let items_before = raw.total("job_items").await;

    let purged = storage
        .purge_finished_jobs(&default_cutoffs(now), 100)
        .await
        .unwrap();
    assert_eq!(purged.jobs, 5, "{purged:?}");
    assert_eq!(purged.items, 10, "two items per job");
    assert_eq!(raw.total("job_items").await, items_before - 10);
    for (job, expected) in [
        (published_long_ago, false),
        (done_old, false),
        (reverted, false),
        (canceled_old, false),
        (failed_old, false),
        (running, true),
        (pending_old, true),
        (canceled_while_running, true),
        (revertible, true),
        (done_recent, true),
        (mixed_old, true),
        (failed_recent, true),
    ] {
        assert_eq!(
            job_exists(&storage, &shop, job).await,
            expected,
            "job {job}"
        );
    }
    assert!(storage
        .get_job_items(shop.account, &done_old_items)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage
            .get_job_items(shop.account, &i_items)
            .await
            .unwrap()
            .len(),
        2,
        "the revertible job keeps its items"
    );
    assert_eq!(
        storage
            .purge_finished_jobs(&default_cutoffs(now), 100)
            .await
            .unwrap(),
        storage::PurgedJobs::default(),
        "nothing else is due"
    );
    // Deleting jobs leaves their publish logs, the audit record.
    assert!(storage
        .latest_publish(shop.account, reverted_log.item_id)
        .await
        .unwrap()
        .is_some());

    let logs = storage
        .purge_publish_logs(days_ago(now, 365), 100)
        .await
        .unwrap();
    assert_eq!(logs, 1);
    assert!(storage
        .latest_publish(shop.account, ancient_log.item_id)
        .await
        .unwrap()
        .is_none());
    for log in [&kept_log, &reverted_log] {
        assert!(storage
            .latest_publish(shop.account, log.item_id)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(raw.total("publish_logs").await, 2);
    assert_eq!(
        raw.footprint(shop.account).await["credit_ledger"],
        ledger_before,
        "retention never touches the ledger"
    );

    // Once its publish log ages out, the revertible job goes like any other.
    let a_year_later = RetentionCutoffs {
        publish_logs_before: Some(days_ago(now, 50)),
        ..default_cutoffs(now)
    };
    let purged = storage
        .purge_finished_jobs(&a_year_later, 100)
        .await
        .unwrap();
    assert_eq!(purged.jobs, 1);
    assert!(!job_exists(&storage, &shop, revertible).await);
}

async fn retention_deletes_in_bounded_batches_oldest_first(storage: Arc<dyn Storage>, raw: Raw) {
    let now = Utc::now();
    let shop = shop(&storage, 1).await;
    let mut jobs = Vec::new();
    let mut items = Vec::new();
    for n in 0..5 {
        let (job, job_items) = job_at(&storage, &shop, days_ago(now, 104 - n), End::Done).await;
        jobs.push(job);
        items.push(job_items[0]);
    }
    // Publish logs past their window do not hold their jobs back.
    for (n, item) in items.iter().take(3).enumerate() {
        publish_at(&storage, &shop, *item, days_ago(now, 500 - n as i64)).await;
    }
    let (recent, recent_items) = job_at(&storage, &shop, days_ago(now, 10), End::Done).await;
    publish_at(&storage, &shop, recent_items[0], days_ago(now, 5)).await;
    let cutoffs = default_cutoffs(now);

    let first = storage.purge_finished_jobs(&cutoffs, 2).await.unwrap();
    assert_eq!((first.jobs, first.items), (2, 2));
    for (n, job) in jobs.iter().enumerate() {
        assert_eq!(
            job_exists(&storage, &shop, *job).await,
            n >= 2,
            "the two oldest go first"
        );
    }
    assert_eq!(
        storage.purge_finished_jobs(&cutoffs, 2).await.unwrap().jobs,
        2
    );
    assert_eq!(
        storage.purge_finished_jobs(&cutoffs, 2).await.unwrap().jobs,
        1
    );
    assert_eq!(
        storage.purge_finished_jobs(&cutoffs, 2).await.unwrap().jobs,
        0
    );
    assert!(job_exists(&storage, &shop, recent).await);
    assert_eq!(raw.total("jobs").await, 1);

    // Publish logs the same way: three past the window, one inside it.
    let cutoff = days_ago(now, 365);
    assert_eq!(storage.purge_publish_logs(cutoff, 2).await.unwrap(), 2);
    assert!(
        storage
            .latest_publish(shop.account, items[2])
            .await
            .unwrap()
            .is_some(),
        "the newest old log is left for the next batch"
    );
    assert_eq!(storage.purge_publish_logs(cutoff, 2).await.unwrap(), 1);
    assert_eq!(storage.purge_publish_logs(cutoff, 2).await.unwrap(), 0);
    assert_eq!(raw.total("publish_logs").await, 1);
}

async fn switched_off_windows_delete_nothing(storage: Arc<dyn Storage>, raw: Raw) {
    let now = Utc::now();
    let shop = shop(&storage, 1).await;
    let (published, items) = job_at(&storage, &shop, days_ago(now, 900), End::Done).await;
    publish_at(&storage, &shop, items[0], days_ago(now, 900)).await;
    let (failed, _) = job_at(&storage, &shop, days_ago(now, 800), End::Failed).await;
    let (done, _) = job_at(&storage, &shop, days_ago(now, 700), End::Done).await;

    let keep_all = RetentionCutoffs::default();
    assert_eq!(
        storage.purge_finished_jobs(&keep_all, 100).await.unwrap(),
        storage::PurgedJobs::default()
    );
    // Only failed jobs have a window: the others stay, and with no publish-log window the
    // unreverted publish keeps its job however old it is.
    let failed_only = RetentionCutoffs {
        failed_jobs_before: Some(days_ago(now, 30)),
        ..Default::default()
    };
    assert_eq!(
        storage
            .purge_finished_jobs(&failed_only, 100)
            .await
            .unwrap()
            .jobs,
        1
    );
    assert!(!job_exists(&storage, &shop, failed).await);
    let no_log_window = RetentionCutoffs {
        completed_jobs_before: Some(days_ago(now, 90)),
        ..Default::default()
    };
    assert_eq!(
        storage
            .purge_finished_jobs(&no_log_window, 100)
            .await
            .unwrap()
            .jobs,
        1
    );
    assert!(!job_exists(&storage, &shop, done).await);
    assert!(job_exists(&storage, &shop, published).await);
    assert_eq!(raw.total("publish_logs").await, 1);
}

/// An account with rows in every account table.
async fn populated(storage: &Arc<dyn Storage>, tag: &str) -> Shop {
    let now = Utc::now();
    let shop = shop(storage, 3).await;
    storage
        .insert_refresh_token(
            NewRefreshToken {
                id: Uuid::now_v7(),
                family_id: Uuid::now_v7(),
                user_id: shop.user,
                account_id: shop.account,
                token_hash: format!("refresh-{tag}"),
                expires_at: now + Duration::days(7),
            },
            now,
        )
        .await
        .unwrap();
    storage
        .create_login_link(
            NewLoginLink {
                token_hash: format!("link-{tag}"),
                user_id: shop.user,
                account_id: shop.account,
                expires_at: now + Duration::minutes(10),
            },
            now,
        )
        .await
        .unwrap();
    storage
        .record_sync_batch(
            shop.account,
            &SyncBatch {
                id: Uuid::now_v7(),
                store_id: shop.store,
                trigger: "manual".into(),
                kind: "full".into(),
                succeeded: true,
                fetched: 3,
                created: 3,
                updated: 0,
                unchanged: 0,
                deleted: 0,
                error: None,
                started_at: now,
                duration_ms: 12,
            },
        )
        .await
        .unwrap();
    storage
        .enqueue_sync(
            shop.account,
            shop.store,
            NewSyncRequest {
                kind: SyncKind::Full,
                trigger: "manual".into(),
                product_external_id: None,
            },
            now,
        )
        .await
        .unwrap();
    storage
        .create_woo_authorization(
            WooAuthorization {
                token_hash: format!("woo-{tag}"),
                account_id: shop.account,
                store_url: "https://shop.example".into(),
                name: "Shop".into(),
                currency: "USD".into(),
                expires_at: now + Duration::minutes(30),
                store_id: None,
            },
            now,
        )
        .await
        .unwrap();
    assert!(storage
        .record_webhook_event(
            NewWebhookEvent {
                provider: "woocommerce".into(),
                dedupe_key: format!("delivery-{tag}"),
                event_type: "product.updated".into(),
                account_id: Some(shop.account),
                payload: "{}".into(),
            },
            now,
        )
        .await
        .unwrap());
    storage
        .set_webhook_secret(shop.account, shop.store, Some("v1:sealed-secret"))
        .await
        .unwrap();
    let (_, items) = job_at(storage, &shop, now, End::Done).await;
    publish_at(storage, &shop, items[0], now).await;
    shop
}

async fn deleting_an_account_removes_its_rows_from_every_table_and_nothing_else(
    storage: Arc<dyn Storage>,
    raw: Raw,
) {
    let doomed = populated(&storage, "doomed").await;
    let other = populated(&storage, "other").await;
    let unowned_event = NewWebhookEvent {
        provider: "wix".into(),
        dedupe_key: "no-account".into(),
        event_type: "app.removed".into(),
        account_id: None,
        payload: "{}".into(),
    };
    storage
        .record_webhook_event(unowned_event, Utc::now())
        .await
        .unwrap();
    let before = raw.footprint(doomed.account).await;
    for (table, count) in &before {
        assert!(
            *count > 0,
            "the fixture has no {table} row: add one, so its deletion is tested"
        );
    }
    let other_before = raw.footprint(other.account).await;
    let events_before = raw.total("webhook_events").await;

    let deletion = storage.delete_account(doomed.account).await.unwrap();

    assert_eq!(deletion.account_id, doomed.account);
    assert_eq!(deletion.account_name, "Shop");
    for (table, count) in &before {
        assert_eq!(
            deletion.count(table),
            *count as u64,
            "reported deletions of {table}"
        );
    }
    assert_eq!(
        deletion.total(),
        before.values().sum::<i64>() as u64,
        "nothing deleted that is not reported"
    );
    let after = raw.footprint(doomed.account).await;
    assert!(
        after.values().all(|count| *count == 0),
        "left behind: {after:?}"
    );
    assert_eq!(raw.footprint(other.account).await, other_before);
    assert_eq!(
        raw.total("webhook_events").await,
        events_before - before["webhook_events"],
        "events of no account stay"
    );
    assert_eq!(raw.total("plans").await, default_plans().len() as i64);

    assert!(matches!(
        storage.get_account(doomed.account).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(storage
        .find_user_by_email(&doomed.email)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        storage.find_store_for_operator(doomed.store).await,
        Err(StorageError::NotFound { .. })
    ));
    // The other account works as before.
    assert_eq!(
        storage
            .list_products(
                other.account,
                &storage::ProductQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .total,
        3
    );
    assert!(storage
        .find_user_by_email(&other.email)
        .await
        .unwrap()
        .is_some());
    // The email is free again.
    storage
        .register_user(
            NewUser {
                email: doomed.email.clone(),
                password_hash: "$argon2id$placeholder".into(),
                account_name: "Again".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

async fn deleting_an_unknown_account_is_not_found(storage: Arc<dyn Storage>, raw: Raw) {
    let shop = shop(&storage, 1).await;
    let before = raw.footprint(shop.account).await;
    assert!(matches!(
        storage.delete_account(Uuid::now_v7()).await,
        Err(StorageError::NotFound { entity: "account" })
    ));
    storage.delete_account(shop.account).await.unwrap();
    assert!(matches!(
        storage.delete_account(shop.account).await,
        Err(StorageError::NotFound { entity: "account" })
    ));
    assert!(before.values().any(|count| *count > 0));
    assert!(raw
        .footprint(shop.account)
        .await
        .values()
        .all(|count| *count == 0));
}

async fn workers_holding_items_of_a_deleted_account_are_fenced(
    storage: Arc<dyn Storage>,
    raw: Raw,
) {
    let now = Utc::now();
    let doomed = shop(&storage, 2).await;
    job_at(&storage, &doomed, now, End::Pending).await;
    let claim = storage
        .claim_items(10, Duration::minutes(1), now)
        .await
        .unwrap();
    assert_eq!(claim.items.len(), 2);
    let other = shop(&storage, 2).await;
    let (other_job, _) = job_at(&storage, &other, now, End::Pending).await;
    storage.delete_account(doomed.account).await.unwrap();
    assert!(raw
        .footprint(doomed.account)
        .await
        .values()
        .all(|count| *count == 0));

    // The worker holding the deleted account's items answers late: nothing happens.
    assert_eq!(
        storage
            .extend_item_leases(claim.token, now + Duration::minutes(1))
            .await
            .unwrap(),
        0
    );
    let late: Vec<ItemOutcome> = claim
        .items
        .iter()
        .map(|item| ItemOutcome {
            item_id: item.id,
            result: ItemResult::Done {
                before: ContentValue::Text("old".into()),
                after: ContentValue::Text("new".into()),
                product_revision: 1,
            },
        })
        .collect();
    let report = storage.finish_items(claim.token, &late, now).await.unwrap();
    assert_eq!((report.applied, report.fenced), (0, 2));
    assert!(raw
        .footprint(doomed.account)
        .await
        .values()
        .all(|count| *count == 0));
    // The queue carries on with the other account's work.
    let next = storage
        .claim_items(10, Duration::minutes(1), now)
        .await
        .unwrap();
    assert_eq!(next.items.len(), 2);
    assert!(next.items.iter().all(|item| item.job_id == other_job));
}

/// Workers claim, fail, finish and retry the account's items while it is deleted: the
/// deletion wins every time (on PostgreSQL retrying when it met a worker in a deadlock), and
/// nothing of the account is left, whatever the workers did meanwhile.
async fn deleting_an_account_while_workers_run_its_jobs_leaves_nothing(
    storage: Arc<dyn Storage>,
    raw: Raw,
) {
    for round in 0..6 {
        let doomed = shop(&storage, 12).await;
        let (job, _) = job_at(&storage, &doomed, Utc::now(), End::Pending).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|worker| {
                let storage = storage.clone();
                let stop = stop.clone();
                let account = doomed.account;
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        // Errors are expected once the account is gone (or when PostgreSQL
                        // picks this transaction as a deadlock's victim); keep working.
                        if let Ok(claim) = storage
                            .claim_items(3, Duration::minutes(1), Utc::now())
                            .await
                        {
                            let outcomes: Vec<ItemOutcome> = claim
                                .items
                                .iter()
                                .enumerate()
                                .map(|(n, item)| ItemOutcome {
                                    item_id: item.id,
                                    result: if (n + worker) % 2 == 0 {
                                        ItemResult::Fail {
                                            code: "invalid_output".into(),
                                            message: "empty".into(),
                                        }
                                    } else {
                                        ItemResult::Done {
                                            before: ContentValue::Text("old".into()),
                                            after: ContentValue::Text("new".into()),
                                            product_revision: 1,
                                        }
                                    },
                                })
                                .collect();
                            storage
                                .finish_items(claim.token, &outcomes, Utc::now())
                                .await
                                .ok();
                        }
                        storage.retry_job(account, job, Utc::now()).await.ok();
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20 + 10 * round)).await;
        let deletion = storage.delete_account(doomed.account).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for worker in workers {
            worker.await.unwrap();
        }
        let deletion = deletion.unwrap_or_else(|err| panic!("round {round}: {err}"));
        assert_eq!(deletion.count("accounts"), 1);
        let left = raw.footprint(doomed.account).await;
        assert!(
            left.values().all(|count| *count == 0),
            "round {round} left {left:?}"
        );
    }
}

async fn deactivated_accounts_are_deleted_after_their_grace_period(
    storage: Arc<dyn Storage>,
    raw: Raw,
) {
    let now = Utc::now();
    let long_gone = shop(&storage, 2).await;
    let recently_gone = shop(&storage, 2).await;
    let active = shop(&storage, 2).await;
    let came_back = shop(&storage, 2).await;

    let account = storage
        .set_account_status(
            long_gone.account,
            AccountStatus::Inactive,
            days_ago(now, 40),
        )
        .await
        .unwrap();
    assert_eq!(account.status, AccountStatus::Inactive);
    assert_eq!(
        account.deactivated_at.map(|at| at.timestamp_millis()),
        Some(days_ago(now, 40).timestamp_millis())
    );
    let again = storage
        .set_account_status(long_gone.account, AccountStatus::Inactive, now)
        .await
        .unwrap();
    assert_eq!(
        again.deactivated_at, account.deactivated_at,
        "a second deactivation does not restart the grace period"
    );
    assert_eq!(storage.get_account(long_gone.account).await.unwrap(), again);
    storage
        .set_account_status(
            recently_gone.account,
            AccountStatus::Inactive,
            days_ago(now, 10),
        )
        .await
        .unwrap();
    storage
        .set_account_status(
            came_back.account,
            AccountStatus::Inactive,
            days_ago(now, 60),
        )
        .await
        .unwrap();
    let reactivated = storage
        .set_account_status(came_back.account, AccountStatus::Active, now)
        .await
        .unwrap();
    assert_eq!(reactivated.status, AccountStatus::Active);
    assert_eq!(reactivated.deactivated_at, None);
    assert!(matches!(
        storage
            .set_account_status(Uuid::now_v7(), AccountStatus::Inactive, now)
            .await,
        Err(StorageError::NotFound { .. })
    ));
    // An inactive account cannot spend credits, and is told why.
    assert!(matches!(
        storage
            .create_job(
                recently_gone.account,
                NewJob {
                    store_id: recently_gone.store,
                    kind: JobKind::Text,
                    source_scope: SourceScope::Products,
                    source_ids: recently_gone.products.clone(),
                    attributes: vec![Attribute::Title],
                    target_lang: None,
                    user_prompt: None,
                    brand_voice: None,
                    provider: "rules".into(),
                    credits_per_item: 1,
                    max_products: 100,
                },
                now,
            )
            .await,
        Err(StorageError::InvalidState(message)) if message.contains("inactive")
    ));

    let deleted = storage
        .delete_accounts_inactive_since(days_ago(now, 30), 10)
        .await
        .unwrap();
    assert_eq!(
        deleted.iter().map(|d| d.account_id).collect::<Vec<_>>(),
        vec![long_gone.account]
    );
    assert_eq!(deleted[0].count("products"), 2);
    assert!(raw
        .footprint(long_gone.account)
        .await
        .values()
        .all(|count| *count == 0));
    for kept in [&recently_gone, &active, &came_back] {
        assert!(storage.get_account(kept.account).await.is_ok());
        assert_eq!(raw.footprint(kept.account).await["products"], 2);
    }
    assert!(storage
        .delete_accounts_inactive_since(days_ago(now, 30), 10)
        .await
        .unwrap()
        .is_empty());

    // A bounded batch takes the longest-deactivated first.
    let mut doomed = Vec::new();
    for days in [45, 50, 55] {
        let shop = shop(&storage, 1).await;
        storage
            .set_account_status(shop.account, AccountStatus::Inactive, days_ago(now, days))
            .await
            .unwrap();
        doomed.push(shop.account);
    }
    let first = storage
        .delete_accounts_inactive_since(days_ago(now, 30), 2)
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|d| d.account_id).collect::<Vec<_>>(),
        vec![doomed[2], doomed[1]]
    );
    let rest = storage
        .delete_accounts_inactive_since(days_ago(now, 30), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].account_id, doomed[0]);
    assert!(storage.get_account(recently_gone.account).await.is_ok());
}

//! The job engine on SQLite and PostgreSQL with stand-in processors: every item ends once,
//! a provider outage is ridden out, fatal errors are refunded, cancel and shutdown behave,
//! and two engines share one queue without working an item twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use domain::{Attribute, ContentValue, ItemStatus, JobKind, JobStatus, RetryPolicy, SourceScope};
use storage::{ClaimedItem, ItemQuery, Job, NewJob, NewStore, NewUser, Storage};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use worker::engine::{EngineConfig, ItemError, ItemProcessor, JobEngine, ProcessedItem};

/// Answers "<title> (optimized)", after an optional delay and an optional outage, and
/// counts calls per item.
#[derive(Default)]
struct StandIn {
    delay: Duration,
    /// Calls before this instant answer 503.
    down_until: Option<Instant>,
    /// Products whose title contains this fail for good.
    poison: Option<String>,
    calls: Mutex<HashMap<Uuid, usize>>,
    total: AtomicUsize,
}

#[async_trait]
impl ItemProcessor for StandIn {
    async fn process(&self, item: &ClaimedItem) -> Result<ProcessedItem, ItemError> {
        *self.calls.lock().unwrap().entry(item.id).or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.down_until.is_some_and(|until| Instant::now() < until) {
            return Err(ItemError {
                code: "provider_unavailable".into(),
                message: "HTTP 503".into(),
                retryable: true,
                retry_after: None,
                rate_limited: false,
            });
        }
        let (product, revision) = item
            .product
            .clone()
            .ok_or_else(|| ItemError::fatal("product_gone", "gone"))?;
        if self
            .poison
            .as_deref()
            .is_some_and(|p| product.title.contains(p))
        {
            return Err(ItemError::fatal("invalid_output", "the answer was empty"));
        }
        Ok(ProcessedItem {
            before: item.attribute.read(&product),
            after: ContentValue::Text(format!("{} (optimized)", product.title)),
            product_revision: revision,
        })
    }
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        concurrency: 8,
        batch_size: 8,
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_secs(5),
        poll: Duration::from_millis(100),
        recovery_interval: Duration::from_secs(1),
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
            max_attempts: 60,
        },
        rate_limit_per_minute: None,
        drain_deadline: Duration::from_secs(5),
    }
}

async fn open(db: &testkit::TestDatabase) -> Arc<dyn Storage> {
    let storage = storage::connect(db.url(), 8).await.unwrap();
    storage.sync_plans(&domain::default_plans()).await.unwrap();
    storage
}

/// An account with a local store of `count` products and a title + description job over
/// all of them.
async fn job_of(storage: &Arc<dyn Storage>, count: usize) -> Job {
    let (_, account) = storage
        .register_user(
            NewUser {
                email: format!("{}@example.com", Uuid::new_v4()),
                password_hash: "x".into(),
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
                platform: domain::Platform::Local,
                external_id: Uuid::new_v4().to_string(),
                name: "Catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let products: Vec<domain::SourceProduct> = (0..count)
        .map(|n| {
            serde_json::from_value(serde_json::json!({
                "externalId": format!("p{n}"),
                "title": format!("Product {n}"),
                "descriptionHtml": "<p>Plain.</p>",
                "currency": "USD",
                "availability": "in_stock"
            }))
            .unwrap()
        })
        .collect();
    storage
        .upsert_products(account.id, store.id, &products, Utc::now())
        .await
        .unwrap();
    let ids: Vec<Uuid> = storage
        .list_products(
            account.id,
            &storage::ProductQuery {
                store_id: Some(store.id),
                limit: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.id)
        .collect();
    storage
        .create_job(
            account.id,
            NewJob {
                store_id: store.id,
                kind: JobKind::Text,
                source_scope: SourceScope::Products,
                source_ids: ids,
                attributes: vec![Attribute::Title, Attribute::Description],
                target_lang: None,
                user_prompt: None,
                brand_voice: None,
                provider: "stand-in".into(),
                credits_per_item: 1,
                max_products: 1000,
            },
            Utc::now(),
        )
        .await
        .unwrap()
}

async fn wait_for(storage: &Arc<dyn Storage>, job: &Job, done: impl Fn(&Job) -> bool) -> Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = storage.get_job(job.account_id, job.id).await.unwrap();
        if done(&current) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "job never got there: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn items(storage: &Arc<dyn Storage>, job: &Job) -> Vec<storage::JobItem> {
    storage
        .list_job_items(
            job.account_id,
            job.id,
            &ItemQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
}

async fn credits_used(storage: &Arc<dyn Storage>, job: &Job) -> i64 {
    let account = storage.get_account(job.account_id).await.unwrap();
    let ledger: i64 = storage
        .list_ledger(job.account_id, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.delta)
        .sum();
    assert_eq!(ledger, account.credits_total - account.credits_used);
    account.credits_used
}

fn start(
    storage: &Arc<dyn Storage>,
    processor: Arc<StandIn>,
    config: EngineConfig,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let engine = JobEngine::new(storage.clone(), processor, config);
    let task = tokio::spawn(engine.run(shutdown.clone()));
    (shutdown, task)
}

macro_rules! engine_suite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = testkit::TestDatabase::sqlite();
                    super::$scenario(super::open(&db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(db) = testkit::TestDatabase::postgres().await else { return };
                    super::$scenario(super::open(&db).await).await;
                }
            )*
        }
    };
}

engine_suite!(
    every_item_ends_done_exactly_once,
    a_provider_outage_is_ridden_out_without_failures,
    fatal_errors_fail_the_item_and_refund_it,
    canceling_mid_run_cancels_and_refunds_pending_items,
    shutdown_releases_unfinished_items_without_counting_the_attempt,
    two_engines_share_one_queue,
);

async fn every_item_ends_done_exactly_once(storage: Arc<dyn Storage>) {
    let job = job_of(&storage, 30).await;
    let processor = Arc::new(StandIn::default());
    let (shutdown, task) = start(&storage, processor.clone(), fast_config());
    let finished = wait_for(&storage, &job, |j| j.status == JobStatus::Done).await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(finished.counts.done, 60);
    assert_eq!(finished.credits_charged(), 60);
    assert_eq!(credits_used(&storage, &job).await, 60);
    let all = items(&storage, &job).await;
    assert!(all
        .iter()
        .all(|i| i.status == ItemStatus::Done && i.attempts == 1));
    let title = all
        .iter()
        .find(|i| i.attribute == Attribute::Title)
        .unwrap();
    assert!(matches!(&title.after, Some(ContentValue::Text(t)) if t.ends_with("(optimized)")));
    assert!(matches!(&title.before, Some(ContentValue::Text(t)) if t.starts_with("Product ")));
    assert!(processor.calls.lock().unwrap().values().all(|n| *n == 1));
}

async fn a_provider_outage_is_ridden_out_without_failures(storage: Arc<dyn Storage>) {
    let job = job_of(&storage, 5).await;
    let processor = Arc::new(StandIn {
        down_until: Some(Instant::now() + Duration::from_millis(1500)),
        ..Default::default()
    });
    let (shutdown, task) = start(&storage, processor.clone(), fast_config());
    let finished = wait_for(&storage, &job, |j| j.status.is_terminal()).await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(finished.status, JobStatus::Done);
    assert_eq!((finished.counts.done, finished.counts.failed), (10, 0));
    let all = items(&storage, &job).await;
    assert!(
        all.iter().all(|i| i.attempts > 1),
        "every item waited out the outage"
    );
    assert!(processor.total.load(Ordering::SeqCst) > 10);
    assert_eq!(credits_used(&storage, &job).await, 10);
}

async fn fatal_errors_fail_the_item_and_refund_it(storage: Arc<dyn Storage>) {
    let job = job_of(&storage, 4).await;
    let processor = Arc::new(StandIn {
        poison: Some("Product 2".into()),
        ..Default::default()
    });
    let (shutdown, task) = start(&storage, processor, fast_config());
    let finished = wait_for(&storage, &job, |j| j.status.is_terminal()).await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(finished.status, JobStatus::Done);
    assert_eq!((finished.counts.done, finished.counts.failed), (6, 2));
    assert_eq!(finished.credits_refunded, 2);
    assert_eq!(credits_used(&storage, &job).await, 6);
    let failed: Vec<_> = items(&storage, &job)
        .await
        .into_iter()
        .filter(|i| i.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|i| i.attempts == 1 && i.error_code.as_deref() == Some("invalid_output")));
}

async fn canceling_mid_run_cancels_and_refunds_pending_items(storage: Arc<dyn Storage>) {
    let job = job_of(&storage, 20).await;
    let processor = Arc::new(StandIn {
        delay: Duration::from_millis(100),
        ..Default::default()
    });
    let mut config = fast_config();
    config.concurrency = 2;
    config.batch_size = 2;
    let (shutdown, task) = start(&storage, processor, config);
    wait_for(&storage, &job, |j| j.counts.done >= 2).await;
    let canceled = storage
        .cancel_job(job.account_id, job.id, Utc::now())
        .await
        .unwrap();
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert!(canceled.counts.canceled > 20);
    let settled = wait_for(&storage, &job, |j| {
        j.counts.running == 0 && j.counts.pending == 0
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(settled.status, JobStatus::Canceled);
    assert_eq!(settled.counts.done + settled.counts.canceled, 40);
    assert_eq!(settled.credits_refunded, settled.counts.canceled);
    assert_eq!(credits_used(&storage, &job).await, settled.counts.done);
}

async fn shutdown_releases_unfinished_items_without_counting_the_attempt(
    storage: Arc<dyn Storage>,
) {
    let job = job_of(&storage, 3).await;
    let processor = Arc::new(StandIn {
        delay: Duration::from_secs(30),
        ..Default::default()
    });
    let mut config = fast_config();
    config.drain_deadline = Duration::from_millis(300);
    let (shutdown, task) = start(&storage, processor, config);
    wait_for(&storage, &job, |j| j.counts.running == 6).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the engine stops at its drain deadline")
        .unwrap();
    let after = storage.get_job(job.account_id, job.id).await.unwrap();
    assert_eq!((after.counts.pending, after.counts.running), (6, 0));
    assert!(items(&storage, &job).await.iter().all(|i| i.attempts == 0));
    assert_eq!(
        credits_used(&storage, &job).await,
        6,
        "still reserved, not lost"
    );
}

async fn two_engines_share_one_queue(storage: Arc<dyn Storage>) {
    let job = job_of(&storage, 50).await;
    let processor = Arc::new(StandIn {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let (stop_a, a) = start(&storage, processor.clone(), fast_config());
    let (stop_b, b) = start(&storage, processor.clone(), fast_config());
    let finished = wait_for(&storage, &job, |j| j.status == JobStatus::Done).await;
    stop_a.cancel();
    stop_b.cancel();
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(finished.counts.done, 100);
    let calls = processor.calls.lock().unwrap();
    assert_eq!(calls.len(), 100);
    assert!(calls.values().all(|n| *n == 1), "no item was worked twice");
}

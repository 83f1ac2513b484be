//! The retention task on SQLite and PostgreSQL: a pass works off a backlog in bounded
//! batches (and says when more is left), only the scheduler's leader runs it, and the
//! running scheduler loop does run it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{
    AccountStatus, Attribute, ContentValue, JobKind, Platform, SourceProduct, SourceScope,
};
use storage::{ItemOutcome, ItemResult, NewJob, NewPublishLog, NewStore, NewUser, Storage};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use worker::retention::{run_retention, RetentionPolicy, RetentionReport};
use worker::scheduler::{retention_tick, run_scheduler, SCHEDULER_LEADERSHIP};

async fn open(db: &testkit::TestDatabase) -> Arc<dyn Storage> {
    let storage = storage::connect(db.url(), 5).await.unwrap();
    storage.sync_plans(&domain::default_plans()).await.unwrap();
    storage
}

testkit::on_both_backends!(
    a_pass_works_off_a_backlog_in_bounded_batches,
    only_the_leader_runs_retention,
    the_scheduler_loop_runs_retention,
);

struct Shop {
    account: Uuid,
    store: Uuid,
    product: Uuid,
}

async fn shop(storage: &Arc<dyn Storage>) -> Shop {
    let (_, account) = storage
        .register_user(
            NewUser {
                email: format!("{}@example.com", Uuid::new_v4()),
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
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let source = SourceProduct {
        external_id: "p1".into(),
        title: "Field jacket".into(),
        description_html: String::new(),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: None,
        gtin: None,
        mpn: None,
        brand: None,
        price: None,
        sale_price: None,
        currency: "USD".into(),
        availability: domain::Availability::InStock,
        stock: None,
        categories: Vec::new(),
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    };
    storage
        .upsert_products(account.id, store.id, &[source], Utc::now())
        .await
        .unwrap();
    let product = storage
        .find_product_by_external_id(account.id, store.id, "p1")
        .await
        .unwrap()
        .unwrap()
        .id;
    Shop {
        account: account.id,
        store: store.id,
        product,
    }
}

/// A one-item job that ran and succeeded at `at`; returns the job and its item.
async fn done_job_at(storage: &Arc<dyn Storage>, shop: &Shop, at: DateTime<Utc>) -> (Uuid, Uuid) {
    let job = storage
        .create_job(
            shop.account,
            NewJob {
                store_id: shop.store,
                kind: JobKind::Text,
                source_scope: SourceScope::Products,
                source_ids: vec![shop.product],
                attributes: vec![Attribute::Title],
                target_lang: None,
                user_prompt: None,
                brand_voice: None,
                provider: "rules".into(),
                credits_per_item: 1,
                max_products: 10,
            },
            at,
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(10, chrono::Duration::minutes(1), at)
        .await
        .unwrap();
    assert_eq!(claim.items.len(), 1);
    let item = claim.items[0].id;
    let outcome = ItemOutcome {
        item_id: item,
        result: ItemResult::Done {
            before: ContentValue::Text("old".into()),
            after: ContentValue::Text("new".into()),
            product_revision: 1,
        },
    };
    storage
        .finish_items(claim.token, &[outcome], at)
        .await
        .unwrap();
    (job.id, item)
}

async fn job_count(storage: &Arc<dyn Storage>, shop: &Shop) -> usize {
    storage
        .list_jobs(
            shop.account,
            &storage::JobQuery {
                limit: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items
        .len()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

async fn a_pass_works_off_a_backlog_in_bounded_batches(storage: Arc<dyn Storage>) {
    let shop = shop(&storage).await;
    let mut items = Vec::new();
    for n in 0..7 {
        items.push(done_job_at(&storage, &shop, days_ago(110 - n)).await.1);
    }
    done_job_at(&storage, &shop, days_ago(1)).await;
    for item in &items[..2] {
        let log = NewPublishLog {
            store_id: shop.store,
            product_id: shop.product,
            item_id: *item,
            attribute: Attribute::Title,
            value_before: ContentValue::Text("old".into()),
            value_applied: ContentValue::Text("new".into()),
            forced: false,
        };
        storage
            .record_publish(shop.account, log, days_ago(400))
            .await
            .unwrap();
    }
    let gone = self::shop(&storage).await;
    storage
        .set_account_status(gone.account, AccountStatus::Inactive, days_ago(40))
        .await
        .unwrap();
    let grace = self::shop(&storage).await;
    storage
        .set_account_status(grace.account, AccountStatus::Inactive, days_ago(10))
        .await
        .unwrap();
    let ledger_before = storage.list_ledger(shop.account, 1000).await.unwrap();

    let policy = RetentionPolicy {
        batch_size: 3,
        max_batches: 2,
        ..RetentionPolicy::default()
    };
    let first = run_retention(storage.as_ref(), &policy, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        first,
        RetentionReport {
            jobs: 6,
            job_items: 6,
            publish_logs: 2,
            accounts: 1,
            batches: 4,
            complete: false,
        },
        "two batches of jobs, then the cap"
    );
    assert_eq!(job_count(&storage, &shop).await, 2);
    assert!(storage.get_account(gone.account).await.is_err());
    assert!(storage.get_account(grace.account).await.is_ok());

    let second = run_retention(storage.as_ref(), &policy, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        second,
        RetentionReport {
            jobs: 1,
            job_items: 1,
            batches: 1,
            complete: true,
            ..Default::default()
        }
    );
    assert_eq!(job_count(&storage, &shop).await, 1, "the recent job stays");
    let third = run_retention(storage.as_ref(), &policy, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        third,
        RetentionReport {
            complete: true,
            ..Default::default()
        }
    );
    assert_eq!(
        storage.list_ledger(shop.account, 1000).await.unwrap(),
        ledger_before,
        "the ledger is never trimmed"
    );

    let off = RetentionPolicy::from_days(0, 0, 0, 0);
    assert_eq!(
        off.cutoffs(Utc::now()),
        storage::RetentionCutoffs::default()
    );
    assert_eq!(off.account_deletion_grace, None);
}

async fn only_the_leader_runs_retention(storage: Arc<dyn Storage>) {
    let shop = shop(&storage).await;
    done_job_at(&storage, &shop, days_ago(100)).await;
    let policy = RetentionPolicy::default();
    let leading = retention_tick(storage.as_ref(), "process-a", &policy)
        .await
        .unwrap();
    assert_eq!(leading.map(|report| report.jobs), Some(1));
    done_job_at(&storage, &shop, days_ago(100)).await;
    assert_eq!(
        retention_tick(storage.as_ref(), "process-b", &policy)
            .await
            .unwrap(),
        None,
        "another process leads"
    );
    assert_eq!(job_count(&storage, &shop).await, 1);
    storage
        .resign_lead(SCHEDULER_LEADERSHIP, "process-a")
        .await
        .unwrap();
    let taken_over = retention_tick(storage.as_ref(), "process-b", &policy)
        .await
        .unwrap();
    assert_eq!(taken_over.map(|report| report.jobs), Some(1));
    storage
        .resign_lead(SCHEDULER_LEADERSHIP, "process-b")
        .await
        .unwrap();
}

async fn the_scheduler_loop_runs_retention(storage: Arc<dyn Storage>) {
    let shop = shop(&storage).await;
    done_job_at(&storage, &shop, days_ago(100)).await;
    done_job_at(&storage, &shop, days_ago(1)).await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_scheduler(
        storage.clone(),
        "scheduler-test".into(),
        Duration::from_secs(15 * 60),
        Duration::from_millis(20),
        RetentionPolicy::default(),
        Arc::default(),
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while job_count(&storage, &shop).await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scheduler never ran retention"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the scheduler stops on shutdown")
        .unwrap();
}

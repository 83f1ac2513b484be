//! Jobs, credits and the item queue on both backends: reservation in one transaction,
//! refunds exactly once, fenced completions, lease recovery, fairness across accounts.

use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::{
    default_plans, Attribute, ContentValue, ItemStatus, JobKind, JobStatus, LedgerReason, Platform,
    SourceProduct, SourceScope,
};
use storage::{
    ItemOutcome, ItemQuery, ItemResult, JobQuery, NewJob, NewPublishLog, NewStore, NewUser,
    Storage, StorageError,
};
use testkit::sample_product as product;
use uuid::Uuid;

async fn open(db: &testkit::TestDatabase) -> Arc<dyn Storage> {
    let storage = storage::connect(db.url(), 8)
        .await
        .expect("connect and migrate");
    storage.sync_plans(&default_plans()).await.unwrap();
    storage
}

testkit::on_both_backends!(
    creating_a_job_reserves_its_credits_with_a_ledger_row,
    a_short_balance_is_refused_and_writes_nothing,
    concurrent_jobs_never_spend_more_than_the_balance,
    selections_are_resolved_within_the_account_and_store,
    claims_are_fenced_and_finish_the_job,
    failed_items_are_refunded_exactly_once_and_retried_at_a_charge,
    canceling_refunds_pending_items_and_lets_running_ones_finish,
    items_that_come_back_after_a_cancel_are_canceled_and_refunded,
    a_cancel_racing_workers_leaves_nothing_pending,
    expired_leases_are_recovered_and_the_late_worker_is_fenced,
    releases_do_not_count_the_attempt,
    claims_interleave_accounts,
    single_slot_claims_go_to_the_account_with_fewest_items_running,
    publish_logs_record_and_revert,
    tenants_cannot_reach_each_others_jobs,
    work_notifications_wake_waiting_workers,
);

/// An account (free plan: 200 credits) with a local store of `count` products.
async fn shop(storage: &Arc<dyn Storage>, count: usize) -> (Uuid, Uuid, Vec<Uuid>) {
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
    let products: Vec<SourceProduct> = (0..count)
        .map(|n| {
            let category = if n % 2 == 0 { "Even" } else { "Odd" };
            product(&format!("p{n}"), &format!("Product {n}"), category)
        })
        .collect();
    for chunk in products.chunks(200) {
        storage
            .upsert_products(account.id, store.id, chunk, Utc::now())
            .await
            .unwrap();
    }
    let page = storage
        .list_products(
            account.id,
            &storage::ProductQuery {
                store_id: Some(store.id),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (
        account.id,
        store.id,
        page.items.iter().map(|p| p.id).collect(),
    )
}

fn text_job(store_id: Uuid, products: &[Uuid], attributes: &[Attribute]) -> NewJob {
    NewJob {
        store_id,
        kind: JobKind::Text,
        source_scope: SourceScope::Products,
        source_ids: products.to_vec(),
        attributes: attributes.to_vec(),
        target_lang: None,
        user_prompt: Some("Mention free shipping".into()),
        brand_voice: None,
        provider: "rules".into(),
        credits_per_item: 1,
        max_products: 1000,
    }
}

/// The account's counters and its ledger agree: what the ledger grants minus what it
/// takes back is what remains.
async fn assert_ledger_matches_counters(storage: &Arc<dyn Storage>, account_id: Uuid) -> i64 {
    let account = storage.get_account(account_id).await.unwrap();
    let ledger = storage.list_ledger(account_id, 100_000).await.unwrap();
    let sum: i64 = ledger.iter().map(|entry| entry.delta).sum();
    assert_eq!(
        sum,
        account.credits_total - account.credits_used,
        "ledger {ledger:?} vs counters total {} used {}",
        account.credits_total,
        account.credits_used
    );
    account.credits_used
}

fn done(item_id: Uuid) -> ItemOutcome {
    ItemOutcome {
        item_id,
        result: ItemResult::Done {
            before: ContentValue::Text("old".into()),
            after: ContentValue::Text("new".into()),
            product_revision: 1,
        },
    }
}

fn fail(item_id: Uuid) -> ItemOutcome {
    ItemOutcome {
        item_id,
        result: ItemResult::Fail {
            code: "invalid_output".into(),
            message: "The answer was empty".into(),
        },
    }
}

async fn creating_a_job_reserves_its_credits_with_a_ledger_row(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 3).await;
    let job = storage
        .create_job(
            account,
            text_job(
                store,
                &products,
                &[Attribute::Title, Attribute::Description],
            ),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.product_count, 3);
    assert_eq!(job.counts.total, 6);
    assert_eq!(job.counts.pending, 6);
    assert_eq!(job.credits_reserved, 6);
    assert_eq!(job.store_name, "Catalog");
    assert_eq!(job.user_prompt.as_deref(), Some("Mention free shipping"));
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 6);
    let ledger = storage.list_ledger(account, 10).await.unwrap();
    assert_eq!(ledger[0].reason, LedgerReason::Reserve);
    assert_eq!(ledger[0].delta, -6);
    assert_eq!(ledger[0].reference, format!("job:{}", job.id));

    let items = storage
        .list_job_items(
            account,
            job.id,
            &ItemQuery {
                limit: 4,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(items.items.len(), 4);
    assert!(items.next_cursor.is_some());
    assert_eq!(items.items[0].product_id, products[0]);
    assert_eq!(items.items[0].attribute, Attribute::Title);
    assert_eq!(items.items[1].attribute, Attribute::Description);
    assert_eq!(items.items[0].product_title.as_deref(), Some("Product 0"));
    let rest = storage
        .list_job_items(
            account,
            job.id,
            &ItemQuery {
                after: items.next_cursor,
                limit: 4,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());
}

async fn a_short_balance_is_refused_and_writes_nothing(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 150).await;
    let first = text_job(store, &products[..100], &[Attribute::Title]);
    storage
        .create_job(account, first, Utc::now())
        .await
        .unwrap();
    let too_big = text_job(
        store,
        &products[..60],
        &[Attribute::Title, Attribute::SeoTitle],
    );
    let refused = storage.create_job(account, too_big, Utc::now()).await;
    assert!(
        matches!(
            refused,
            Err(StorageError::InsufficientCredits {
                required: 120,
                remaining: 100
            })
        ),
        "{refused:?}"
    );
    let jobs = storage
        .list_jobs(
            account,
            &JobQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1, "the refused job left no row");
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 100);
}

async fn concurrent_jobs_never_spend_more_than_the_balance(storage: Arc<dyn Storage>) {
    // 200 credits; each job costs 20: ten fit, the other ten must be refused.
    let (account, store, products) = shop(&storage, 20).await;
    let attempts = (0..20).map(|_| {
        let storage = storage.clone();
        let job = text_job(store, &products, &[Attribute::Title]);
        tokio::spawn(async move { storage.create_job(account, job, Utc::now()).await })
    });
    let mut succeeded = 0;
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => succeeded += 1,
            Err(StorageError::InsufficientCredits { required: 20, .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((succeeded, refused), (10, 10));
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 200);
}

async fn selections_are_resolved_within_the_account_and_store(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 6).await;
    let (_, other_store, other_products) = shop(&storage, 1).await;

    let unknown = text_job(store, &[products[0], Uuid::now_v7()], &[Attribute::Title]);
    assert!(matches!(
        storage.create_job(account, unknown, Utc::now()).await,
        Err(StorageError::NotFound { entity: "product" })
    ));
    let foreign = text_job(store, &[other_products[0]], &[Attribute::Title]);
    assert!(matches!(
        storage.create_job(account, foreign, Utc::now()).await,
        Err(StorageError::NotFound { entity: "product" })
    ));
    let foreign_store = text_job(other_store, &products, &[Attribute::Title]);
    assert!(matches!(
        storage.create_job(account, foreign_store, Utc::now()).await,
        Err(StorageError::NotFound { entity: "store" })
    ));
    let mut capped = text_job(store, &products, &[Attribute::Title]);
    capped.max_products = 5;
    assert!(matches!(
        storage.create_job(account, capped, Utc::now()).await,
        Err(StorageError::SelectionTooLarge { count: 6, max: 5 })
    ));

    // A product listed twice is optimized once.
    let twice = text_job(store, &[products[1], products[1]], &[Attribute::Title]);
    let job = storage
        .create_job(account, twice, Utc::now())
        .await
        .unwrap();
    assert_eq!(job.counts.total, 1);

    let collections = storage
        .list_collections(account, Some(store))
        .await
        .unwrap();
    let even = collections.iter().find(|c| c.name == "Even").unwrap();
    let mut by_collection = text_job(store, &[even.id, even.id], &[Attribute::Title]);
    by_collection.source_scope = SourceScope::Collections;
    let job = storage
        .create_job(account, by_collection, Utc::now())
        .await
        .unwrap();
    assert_eq!(job.product_count, 3, "products 0, 2 and 4");
    assert_eq!(job.source_scope, SourceScope::Collections);
    let mut unknown_collection = text_job(store, &[Uuid::now_v7()], &[Attribute::Title]);
    unknown_collection.source_scope = SourceScope::Collections;
    assert!(matches!(
        storage
            .create_job(account, unknown_collection, Utc::now())
            .await,
        Err(StorageError::NotFound {
            entity: "collection"
        })
    ));
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 4);
}

async fn claims_are_fenced_and_finish_the_job(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 2).await;
    let job = storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title, Attribute::SeoTitle]),
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(3, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(claim.items.len(), 3);
    let first = &claim.items[0];
    assert_eq!(first.attempts, 1);
    assert_eq!(first.platform, Platform::Local);
    assert_eq!(first.user_prompt.as_deref(), Some("Mention free shipping"));
    let (source, revision) = first.product.clone().expect("product joined");
    assert_eq!(source.title, "Product 0");
    assert_eq!(revision, 1);
    let running = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert!(running.started_at.is_some());
    assert_eq!((running.counts.pending, running.counts.running), (1, 3));

    // Nobody else gets the held items.
    let second = storage
        .claim_items(10, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);

    // A result under the wrong token changes nothing.
    let forged = storage
        .finish_items(Uuid::new_v4(), &[done(first.id)], Utc::now())
        .await
        .unwrap();
    assert_eq!((forged.applied, forged.fenced), (0, 1));

    let outcomes: Vec<ItemOutcome> = claim.items.iter().map(|item| done(item.id)).collect();
    let report = storage
        .finish_items(claim.token, &outcomes, Utc::now())
        .await
        .unwrap();
    assert_eq!((report.applied, report.fenced), (3, 0));
    let again = storage
        .finish_items(claim.token, &outcomes, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (again.applied, again.fenced),
        (0, 3),
        "finishing twice is refused"
    );
    let partial = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(partial.status, JobStatus::Running);
    assert_eq!(partial.counts.percent(), 75);

    storage
        .finish_items(second.token, &[done(second.items[0].id)], Utc::now())
        .await
        .unwrap();
    let finished = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(finished.status, JobStatus::Done);
    assert_eq!(finished.counts.done, 4);
    assert_eq!(finished.credits_charged(), 4);
    assert!(finished.finished_at.is_some());
    let item = storage
        .get_job_items(account, &[first.id])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(item.status, ItemStatus::Done);
    assert_eq!(item.after, Some(ContentValue::Text("new".into())));
    assert_eq!(item.product_revision, Some(1));
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 4);

    let empty = storage
        .claim_items(10, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    let done_jobs = storage
        .list_jobs(
            account,
            &JobQuery {
                statuses: vec![JobStatus::Done],
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done_jobs.items.len(), 1);
    let changed = storage
        .jobs_changed_since(account, finished.updated_at, Some(job.id))
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
}

async fn failed_items_are_refunded_exactly_once_and_retried_at_a_charge(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 3).await;
    let job = storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(10, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    let outcomes = vec![
        done(claim.items[0].id),
        fail(claim.items[1].id),
        fail(claim.items[2].id),
    ];
    storage
        .finish_items(claim.token, &outcomes, Utc::now())
        .await
        .unwrap();
    storage
        .finish_items(claim.token, &outcomes, Utc::now())
        .await
        .unwrap();
    let ended = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(ended.status, JobStatus::Done);
    assert_eq!((ended.counts.done, ended.counts.failed), (1, 2));
    assert_eq!(ended.credits_refunded, 2);
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 1);
    let failed_item = storage
        .get_job_items(account, &[claim.items[1].id])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(failed_item.error_code.as_deref(), Some("invalid_output"));

    let retried = storage
        .retry_job(account, job.id, Utc::now())
        .await
        .unwrap();
    assert_eq!(retried.status, JobStatus::Running);
    assert_eq!((retried.counts.pending, retried.counts.failed), (2, 0));
    assert_eq!(retried.credits_reserved, 5);
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 3);
    assert!(matches!(
        storage.retry_job(account, job.id, Utc::now()).await,
        Err(StorageError::InvalidState(_))
    ));

    let claim = storage
        .claim_items(10, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(claim.items.len(), 2);
    assert_eq!(claim.items[0].attempts, 1, "a retry round starts afresh");
    let outcomes: Vec<ItemOutcome> = claim.items.iter().map(|i| fail(i.id)).collect();
    storage
        .finish_items(claim.token, &outcomes, Utc::now())
        .await
        .unwrap();
    let failed_again = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(failed_again.credits_refunded, 4);
    assert_eq!(
        failed_again.credits_reserved,
        failed_again.credits_charged() + failed_again.credits_refunded
    );
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 1);
    let refunds = storage
        .list_ledger(account, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.reason == LedgerReason::Refund)
        .count();
    assert_eq!(refunds, 4, "one refund per item and charge");
}

async fn canceling_refunds_pending_items_and_lets_running_ones_finish(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 5).await;
    let job = storage
        .create_job(
            account,
            text_job(
                store,
                &products,
                &[Attribute::Title, Attribute::Description],
            ),
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(2, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    let canceled = storage
        .cancel_job(account, job.id, Utc::now())
        .await
        .unwrap();
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert_eq!(canceled.counts.canceled, 8);
    assert_eq!(canceled.counts.running, 2);
    assert_eq!(canceled.credits_refunded, 8);
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 2);
    assert!(storage
        .claim_items(10, Duration::seconds(60), Utc::now())
        .await
        .unwrap()
        .items
        .is_empty());

    let outcomes: Vec<ItemOutcome> = claim.items.iter().map(|i| done(i.id)).collect();
    storage
        .finish_items(claim.token, &outcomes, Utc::now())
        .await
        .unwrap();
    let after = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(after.status, JobStatus::Canceled);
    assert_eq!(after.counts.done, 2);
    assert!(after.finished_at.is_some());
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 2);
    assert!(matches!(
        storage.cancel_job(account, job.id, Utc::now()).await,
        Err(StorageError::InvalidState(_))
    ));
}

async fn expired_leases_are_recovered_and_the_late_worker_is_fenced(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 2).await;
    let job = storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let start = Utc::now();
    let crashed = storage
        .claim_items(10, Duration::seconds(30), start)
        .await
        .unwrap();
    assert_eq!(crashed.items.len(), 2);
    let before_expiry = storage.recover_expired_items(start, 3).await.unwrap();
    assert_eq!(before_expiry.requeued, 0);
    // A heartbeat keeps one claim alive past the first lease.
    assert_eq!(
        storage
            .extend_item_leases(crashed.token, start + Duration::seconds(90))
            .await
            .unwrap(),
        2
    );
    let recovered = storage
        .recover_expired_items(start + Duration::seconds(60), 3)
        .await
        .unwrap();
    assert_eq!(recovered.requeued, 0, "extended leases are not expired");

    let later = start + Duration::seconds(120);
    let recovered = storage.recover_expired_items(later, 3).await.unwrap();
    assert_eq!((recovered.requeued, recovered.failed), (2, 0));
    let taken_over = storage
        .claim_items(10, Duration::seconds(30), later)
        .await
        .unwrap();
    assert_eq!(taken_over.items.len(), 2);
    assert_eq!(taken_over.items[0].attempts, 2);

    let late: Vec<ItemOutcome> = crashed.items.iter().map(|i| done(i.id)).collect();
    let refused = storage
        .finish_items(crashed.token, &late, later)
        .await
        .unwrap();
    assert_eq!((refused.applied, refused.fenced), (0, 2));
    assert_eq!(
        storage
            .extend_item_leases(crashed.token, later + Duration::seconds(60))
            .await
            .unwrap(),
        0
    );

    // The second worker dies too, on the last attempt: the items fail and are refunded.
    let much_later = later + Duration::seconds(120);
    let gave_up = storage.recover_expired_items(much_later, 2).await.unwrap();
    assert_eq!((gave_up.requeued, gave_up.failed), (0, 2));
    let ended = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(ended.status, JobStatus::Failed);
    assert_eq!(ended.credits_refunded, 2);
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 0);
}

async fn releases_do_not_count_the_attempt(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 1).await;
    let job = storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(1, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    let release = ItemOutcome {
        item_id: claim.items[0].id,
        result: ItemResult::Release,
    };
    storage
        .finish_items(claim.token, &[release], Utc::now())
        .await
        .unwrap();
    let items = storage
        .get_job_items(account, &[claim.items[0].id])
        .await
        .unwrap();
    assert_eq!(items[0].status, ItemStatus::Pending);
    assert_eq!(items[0].attempts, 0);
    let job = storage.get_job(account, job.id).await.unwrap();
    assert_eq!((job.counts.pending, job.counts.running), (1, 0));

    // A retry waits for its time.
    let claim = storage
        .claim_items(1, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    let retry = ItemOutcome {
        item_id: claim.items[0].id,
        result: ItemResult::Retry {
            at: Utc::now() + Duration::seconds(30),
            code: "provider_unavailable".into(),
            message: "HTTP 503".into(),
        },
    };
    storage
        .finish_items(claim.token, &[retry], Utc::now())
        .await
        .unwrap();
    assert!(storage
        .claim_items(1, Duration::seconds(60), Utc::now())
        .await
        .unwrap()
        .items
        .is_empty());
    let due = storage
        .claim_items(1, Duration::seconds(60), Utc::now() + Duration::seconds(31))
        .await
        .unwrap();
    assert_eq!(due.items.len(), 1);
    assert_eq!(due.items[0].attempts, 2);
}

async fn claims_interleave_accounts(storage: Arc<dyn Storage>) {
    let (big, big_store, big_products) = shop(&storage, 150).await;
    storage
        .create_job(
            big,
            text_job(big_store, &big_products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let (small, small_store, small_products) = shop(&storage, 4).await;
    storage
        .create_job(
            small,
            text_job(small_store, &small_products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(10, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(claim.items.len(), 10);
    let small_claimed = claim.items.iter().filter(|i| i.account_id == small).count();
    assert_eq!(
        small_claimed, 4,
        "the small account is served in the first claim"
    );
}

/// When slots free up one at a time (each claim takes one item), the account with the
/// fewest items running is served first, every time, not by the luck of a random start.
async fn single_slot_claims_go_to_the_account_with_fewest_items_running(storage: Arc<dyn Storage>) {
    let (big, big_store, big_products) = shop(&storage, 40).await;
    storage
        .create_job(
            big,
            text_job(big_store, &big_products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let busy = storage
        .claim_items(8, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert!(busy.items.iter().all(|i| i.account_id == big));
    let (small, small_store, small_products) = shop(&storage, 3).await;
    storage
        .create_job(
            small,
            text_job(small_store, &small_products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    for n in 0..3 {
        let claim = storage
            .claim_items(1, Duration::seconds(60), Utc::now())
            .await
            .unwrap();
        assert_eq!(
            claim.items[0].account_id, small,
            "single-item claim {n} goes to the account with fewer items running"
        );
    }
    let next = storage
        .claim_items(1, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(next.items[0].account_id, big, "then the big account again");
}

async fn publish_logs_record_and_revert(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 1).await;
    storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let claim = storage
        .claim_items(1, Duration::seconds(60), Utc::now())
        .await
        .unwrap();
    let item_id = claim.items[0].id;
    storage
        .finish_items(claim.token, &[done(item_id)], Utc::now())
        .await
        .unwrap();
    assert!(storage
        .latest_publish(account, item_id)
        .await
        .unwrap()
        .is_none());
    let log = storage
        .record_publish(
            account,
            NewPublishLog {
                store_id: store,
                product_id: products[0],
                item_id,
                attribute: Attribute::Title,
                value_before: ContentValue::Text("old".into()),
                value_applied: ContentValue::Text("new".into()),
                forced: false,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let item = storage
        .get_job_items(account, &[item_id])
        .await
        .unwrap()
        .remove(0);
    assert!(item.published_at.is_some());
    let latest = storage
        .latest_publish(account, item_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest, log);
    storage
        .record_revert(account, log.id, Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        storage.record_revert(account, log.id, Utc::now()).await,
        Err(StorageError::NotFound { .. })
    ));
    let item = storage
        .get_job_items(account, &[item_id])
        .await
        .unwrap()
        .remove(0);
    assert!(item.published_at.is_none());
    assert!(item.reverted_at.is_some());
    let latest = storage
        .latest_publish(account, item_id)
        .await
        .unwrap()
        .unwrap();
    assert!(latest.reverted_at.is_some());
}

async fn tenants_cannot_reach_each_others_jobs(storage: Arc<dyn Storage>) {
    let (owner, store, products) = shop(&storage, 2).await;
    let (intruder, _, _) = shop(&storage, 1).await;
    let job = storage
        .create_job(
            owner,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let items = storage
        .list_job_items(
            owner,
            job.id,
            &ItemQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let item_ids: Vec<Uuid> = items.items.iter().map(|i| i.id).collect();

    assert!(matches!(
        storage.get_job(intruder, job.id).await,
        Err(StorageError::NotFound { entity: "job" })
    ));
    assert!(matches!(
        storage
            .list_job_items(
                intruder,
                job.id,
                &ItemQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(storage
        .get_job_items(intruder, &item_ids)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        storage.cancel_job(intruder, job.id, Utc::now()).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage.retry_job(intruder, job.id, Utc::now()).await,
        Err(StorageError::NotFound { .. })
    ));
    let listed = storage
        .list_jobs(
            intruder,
            &JobQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert!(storage
        .jobs_changed_since(intruder, job.created_at - Duration::seconds(1), None)
        .await
        .unwrap()
        .is_empty());
    let intruding_publish = storage
        .record_publish(
            intruder,
            NewPublishLog {
                store_id: store,
                product_id: products[0],
                item_id: item_ids[0],
                attribute: Attribute::Title,
                value_before: ContentValue::Text("a".into()),
                value_applied: ContentValue::Text("b".into()),
                forced: true,
            },
            Utc::now(),
        )
        .await;
    assert!(matches!(
        intruding_publish,
        Err(StorageError::NotFound { .. })
    ));
    assert!(storage
        .latest_publish(owner, item_ids[0])
        .await
        .unwrap()
        .is_none());
    let untouched = storage.get_job(owner, job.id).await.unwrap();
    assert_eq!(untouched.status, JobStatus::Pending);
}

async fn work_notifications_wake_waiting_workers(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 1).await;
    // Prime the wake-up path (PostgreSQL starts its listener on the first wait).
    storage
        .wait_for_job_work(std::time::Duration::from_millis(300))
        .await;
    let waiter = {
        let storage = storage.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            storage
                .wait_for_job_work(std::time::Duration::from_secs(30))
                .await;
            started.elapsed()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
        .await
        .expect("the waiter was woken long before its 30 s poll")
        .unwrap();
    assert!(waited < std::time::Duration::from_secs(10));
}

/// A cancel committed while workers end and claim items of the same job (PostgreSQL
/// runs them at once): whatever the interleaving, every item ends canceled and refunded
/// once, and none of the three transactions fails on a lock cycle.
async fn a_cancel_racing_workers_leaves_nothing_pending(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 4).await;
    for round in 0..12 {
        let job = storage
            .create_job(
                account,
                text_job(store, &products, &[Attribute::Title]),
                Utc::now(),
            )
            .await
            .unwrap();
        let now = Utc::now();
        let first = storage
            .claim_items(2, Duration::seconds(30), now)
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        let retry_at = now + Duration::seconds(5);
        let retries: Vec<ItemOutcome> = first
            .items
            .iter()
            .map(|item| ItemOutcome {
                item_id: item.id,
                result: ItemResult::Retry {
                    at: retry_at,
                    code: "provider_unavailable".into(),
                    message: "HTTP 503".into(),
                },
            })
            .collect();
        let (finished, second, canceled) = tokio::join!(
            storage.finish_items(first.token, &retries, now),
            storage.claim_items(10, Duration::seconds(30), now),
            storage.cancel_job(account, job.id, now),
        );
        finished.unwrap();
        canceled.unwrap();
        let second = second.unwrap();
        // What the racing claim took comes back after the cancel.
        let late: Vec<ItemOutcome> = second
            .items
            .iter()
            .map(|item| ItemOutcome {
                item_id: item.id,
                result: ItemResult::Retry {
                    at: retry_at,
                    code: "provider_unavailable".into(),
                    message: "HTTP 503".into(),
                },
            })
            .collect();
        storage
            .finish_items(second.token, &late, now)
            .await
            .unwrap();
        let ended = storage.get_job(account, job.id).await.unwrap();
        assert_eq!(ended.status, JobStatus::Canceled, "round {round}");
        assert_eq!(
            (
                ended.counts.pending,
                ended.counts.running,
                ended.counts.canceled
            ),
            (0, 0, 4),
            "round {round}"
        );
        assert_eq!(ended.credits_refunded, 4, "round {round}");
    }
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 0);
}

async fn items_that_come_back_after_a_cancel_are_canceled_and_refunded(storage: Arc<dyn Storage>) {
    let (account, store, products) = shop(&storage, 3).await;
    let job = storage
        .create_job(
            account,
            text_job(store, &products, &[Attribute::Title]),
            Utc::now(),
        )
        .await
        .unwrap();
    let start = Utc::now();
    let claim = storage
        .claim_items(3, Duration::seconds(30), start)
        .await
        .unwrap();
    assert_eq!(claim.items.len(), 3);
    storage.cancel_job(account, job.id, start).await.unwrap();
    // One attempt ends in a retry, one in a release, after the cancel; the third worker dies.
    let outcomes = vec![
        ItemOutcome {
            item_id: claim.items[0].id,
            result: ItemResult::Retry {
                at: start + Duration::seconds(5),
                code: "provider_unavailable".into(),
                message: "HTTP 503".into(),
            },
        },
        ItemOutcome {
            item_id: claim.items[1].id,
            result: ItemResult::Release,
        },
    ];
    storage
        .finish_items(claim.token, &outcomes, start)
        .await
        .unwrap();
    let recovered = storage
        .recover_expired_items(start + Duration::seconds(60), 8)
        .await
        .unwrap();
    assert_eq!(recovered.requeued, 1);

    let ended = storage.get_job(account, job.id).await.unwrap();
    assert_eq!(ended.status, JobStatus::Canceled);
    assert_eq!(
        (
            ended.counts.pending,
            ended.counts.running,
            ended.counts.canceled
        ),
        (0, 0, 3)
    );
    assert_eq!(ended.credits_refunded, 3);
    assert!(ended.finished_at.is_some());
    assert_eq!(assert_ledger_matches_counters(&storage, account).await, 0);
    // Another job of the account does not pick the canceled items up.
    storage
        .create_job(
            account,
            text_job(store, &products[..1], &[Attribute::SeoTitle]),
            Utc::now(),
        )
        .await
        .unwrap();
    let next = storage
        .claim_items(10, Duration::seconds(30), start + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(next.items.len(), 1);
    assert_eq!(next.items[0].attribute, Attribute::SeoTitle);
}

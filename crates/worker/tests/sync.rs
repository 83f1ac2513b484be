//! The sync worker against the fake WooCommerce store over HTTP, on SQLite and PostgreSQL:
//! queued requests run in the background, incremental and single-product syncs read only
//! what changed, a store that is down puts the request back to wait, and the scheduler
//! queues work in one process only.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use connectors::http::RetryPolicy;
use connectors::woocommerce::{credentials_context, ClientOptions, Credentials};
use domain::{Availability, Money, Platform, SourceProduct, Store};
use secrets::{EncryptionKey, Keyring};
use storage::{NewStore, NewSyncRequest, Storage, SyncKind, SyncRequestStatus};
use testkit::woocommerce::{FakeWooCommerce, Fault};
use testkit::TestDatabase;
use worker::sync::{catalog_for_store, run_sync, ConnectorSettings, SyncWorker};

fn product(n: i64) -> SourceProduct {
    SourceProduct {
        external_id: n.to_string(),
        title: format!("Field jacket {n}"),
        description_html: "<p>Waxed cotton.</p>".into(),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: Some(format!("FJ-{n}")),
        gtin: None,
        mpn: None,
        brand: None,
        price: Some(Money { minor: 12900 }),
        sale_price: None,
        currency: "EUR".into(),
        availability: Availability::InStock,
        stock: None,
        categories: vec!["Outerwear".into()],
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

struct Setup {
    storage: Arc<dyn Storage>,
    keyring: Keyring,
    settings: ConnectorSettings,
    store: Store,
    fake: FakeWooCommerce,
    db: TestDatabase,
}

async fn setup(db: TestDatabase) -> Setup {
    let storage = storage::connect(db.url(), 5).await.unwrap();
    storage.sync_plans(&domain::default_plans()).await.unwrap();
    let (_, account) = storage
        .register_user(
            storage::NewUser {
                email: "sync@example.com".into(),
                password_hash: "$argon2id$test".into(),
                account_name: "Shop".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let fake = FakeWooCommerce::start().await;
    fake.seed(
        &(1..=30).map(product).collect::<Vec<_>>(),
        Utc::now() - chrono::Duration::hours(2),
    );
    let keyring = Keyring::new(EncryptionKey::generate(), Vec::new());
    let credentials = serde_json::to_vec(&Credentials {
        consumer_key: fake.consumer_key.clone(),
        consumer_secret: fake.consumer_secret.clone(),
    })
    .unwrap();
    let store = storage
        .create_store(
            account.id,
            NewStore {
                platform: Platform::Woocommerce,
                external_id: fake.base_url.clone(),
                name: "Woo".into(),
                currency: "EUR".into(),
                credentials_encrypted: Some(
                    keyring.encrypt(&credentials, &credentials_context(&fake.base_url)),
                ),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let settings = ConnectorSettings {
        woocommerce: ClientOptions {
            allow_http: true,
            allow_private_addresses: false,
            retry: RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                timeout: Duration::from_secs(5),
            },
        },
        wix: None,
    };
    Setup {
        storage,
        keyring,
        settings,
        store,
        fake,
        db,
    }
}

fn request(kind: SyncKind, product: Option<&str>) -> NewSyncRequest {
    NewSyncRequest {
        kind,
        trigger: "manual".into(),
        product_external_id: product.map(str::to_owned),
    }
}

async fn incremental_and_single_syncs_read_only_what_changed(db: TestDatabase) {
    let s = setup(db).await;
    let catalog = catalog_for_store(&s.storage, &s.keyring, &s.settings, &s.store)
        .await
        .unwrap();
    let sync = |kind, product: Option<&'static str>| {
        run_sync(
            s.storage.as_ref(),
            catalog.as_ref(),
            &s.store,
            kind,
            "manual",
            product,
        )
    };
    // No sync yet: an incremental request reads everything.
    let first = sync(SyncKind::Incremental, None).await.unwrap();
    assert_eq!((first.kind.as_str(), first.created), ("full", 30));
    let page = s
        .storage
        .list_products(
            s.store.account_id,
            &storage::ProductQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.items[0].currency, "EUR",
        "prices are in the store's currency"
    );

    s.fake.rename(7, "Field jacket 7 (waxed, 2027)", Utc::now());
    let incremental = sync(SyncKind::Incremental, None).await.unwrap();
    assert_eq!(incremental.kind, "incremental");
    assert_eq!((incremental.fetched, incremental.updated), (1, 1));

    s.fake.delete(9);
    let single = sync(SyncKind::Single, Some("9")).await.unwrap();
    assert_eq!((single.kind.as_str(), single.deleted), ("single", 1));
    let single = sync(SyncKind::Single, Some("8")).await.unwrap();
    assert_eq!((single.fetched, single.unchanged), (1, 1));
    let history = s
        .storage
        .list_sync_batches(s.store.account_id, s.store.id, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 4);
}

async fn the_worker_runs_queued_requests_and_requeues_when_the_store_is_down(db: TestDatabase) {
    let s = setup(db).await;
    let worker = SyncWorker {
        storage: s.storage.clone(),
        keyring: s.keyring.clone(),
        settings: s.settings.clone(),
        wake: Arc::default(),
    };
    let queued = s
        .storage
        .enqueue_sync(
            s.store.account_id,
            s.store.id,
            request(SyncKind::Full, None),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(worker.run_next().await.unwrap());
    let done = s
        .storage
        .get_sync_request(s.store.account_id, queued.id)
        .await
        .unwrap();
    assert_eq!(done.status, SyncRequestStatus::Done);
    let batch = s
        .storage
        .list_sync_batches(s.store.account_id, s.store.id, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(Some(batch.id), done.batch_id);
    assert_eq!(batch.created, 30);
    assert!(!worker.run_next().await.unwrap(), "nothing else is due");

    // The store answers 500 through every retry: the request waits to be tried again.
    s.fake
        .inject(&[Fault::ServerError, Fault::ServerError, Fault::ServerError]);
    let again = s
        .storage
        .enqueue_sync(
            s.store.account_id,
            s.store.id,
            request(SyncKind::Full, None),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(worker.run_next().await.unwrap());
    let waiting = s
        .storage
        .get_sync_request(s.store.account_id, again.id)
        .await
        .unwrap();
    assert_eq!(waiting.status, SyncRequestStatus::Pending, "{waiting:?}");
    assert!(
        waiting.not_before > Utc::now(),
        "retried later, not at once"
    );
    assert!(waiting.error.is_some());
    let failed_batch = s
        .storage
        .list_sync_batches(s.store.account_id, s.store.id, 1)
        .await
        .unwrap()
        .remove(0);
    assert!(
        !failed_batch.succeeded,
        "the failed attempt is in the history"
    );

    // A revoked key is not transient: the request fails for good.
    let bad = s
        .storage
        .enqueue_sync(
            s.store.account_id,
            s.store.id,
            request(SyncKind::Single, Some("3")),
            Utc::now(),
        )
        .await
        .unwrap();
    s.fake.revoke_api_key(&s.fake.consumer_key);
    assert!(worker.run_next().await.unwrap());
    let failed = s
        .storage
        .get_sync_request(s.store.account_id, bad.id)
        .await
        .unwrap();
    assert_eq!(failed.status, SyncRequestStatus::Failed, "{failed:?}");
}

async fn only_the_leading_process_schedules(db: TestDatabase) {
    let s = setup(db).await;
    let other_process = storage::connect(s.db.url(), 2).await.unwrap();
    s.storage
        .set_auto_sync(s.store.account_id, s.store.id, true)
        .await
        .unwrap();
    let interval = Duration::from_secs(15 * 60);
    assert_eq!(
        worker::scheduler::tick(s.storage.as_ref(), "process-a", interval)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        worker::scheduler::tick(other_process.as_ref(), "process-b", interval)
            .await
            .unwrap(),
        None,
        "another process leads"
    );
    assert_eq!(
        worker::scheduler::tick(s.storage.as_ref(), "process-a", interval)
            .await
            .unwrap(),
        Some(0),
        "already queued this interval"
    );
    let active = s
        .storage
        .active_sync_requests(s.store.account_id, s.store.id)
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].kind, active[0].trigger.as_str()),
        (SyncKind::Incremental, "schedule")
    );
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(testkit::TestDatabase::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(db) = testkit::TestDatabase::postgres().await else { return };
                    super::$scenario(db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    incremental_and_single_syncs_read_only_what_changed,
    the_worker_runs_queued_requests_and_requeues_when_the_store_is_down,
    only_the_leading_process_schedules,
);

//! Text the backends must treat alike: a NUL character, which PostgreSQL cannot store and
//! SQLite can, is refused by both before any write (naming the field), and the per-store
//! product cap of imports. Each scenario runs on SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::Utc;
use domain::{default_plans, Availability, Platform, SourceProduct, TextProblem};
use storage::{
    NewJob, NewStore, NewSyncRequest, NewUser, NewWebhookEvent, ProductQuery, Storage,
    StorageError, SyncBatch, SyncKind, WooAuthorization,
};
use testkit::TestDatabase;
use uuid::Uuid;

async fn open(db: &TestDatabase) -> Arc<dyn Storage> {
    let storage = storage::connect(db.url(), 5)
        .await
        .expect("connect and migrate");
    storage
        .sync_plans(&default_plans())
        .await
        .expect("seed plans");
    storage
}

testkit::on_both_backends!(
    nul_text_is_refused_alike_naming_the_field,
    diagnostics_with_nul_are_kept_readable,
    imports_stop_at_the_store_cap_and_write_nothing_past_it,
);

fn product(external_id: &str, title: &str) -> SourceProduct {
    SourceProduct {
        external_id: external_id.to_owned(),
        title: title.to_owned(),
        description_html: "<p>ok</p>".into(),
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
        availability: Availability::InStock,
        stock: None,
        categories: vec!["Kitchen".into()],
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

async fn local_store(storage: &Arc<dyn Storage>, email: &str) -> (Uuid, Uuid) {
    let (_, account) = storage
        .register_user(
            NewUser {
                email: email.to_owned(),
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
    (account.id, store.id)
}

/// The field a refusal names, failing on anything but a NUL refusal.
fn refused_field<T: std::fmt::Debug>(result: storage::Result<T>) -> String {
    match result {
        Err(StorageError::InvalidText {
            field,
            problem: TextProblem::Nul,
        }) => field,
        other => panic!("expected a NUL refusal, got {other:?}"),
    }
}

async fn nul_text_is_refused_alike_naming_the_field(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "nul@example.com").await;
    let now = Utc::now();

    let mut nul_description = product("2", "Mug");
    nul_description.description_html = "<p>a\0b</p>".into();
    let mut nul_category = product("3", "Cup");
    nul_category.categories = vec!["Kit\0chen".into()];
    for (bad, field) in [
        (product("1", "a\0b"), "title"),
        (nul_description, "descriptionHtml"),
        (nul_category, "categories[0]"),
    ] {
        let batch = [product("ok", "Fine"), bad];
        let refused = storage.upsert_products(account, store, &batch, now).await;
        assert_eq!(refused_field(refused), field);
    }
    let page = storage
        .list_products(
            account,
            &ProductQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 0, "a refused batch writes nothing");

    let search = ProductQuery {
        search: Some("a\0".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        refused_field(storage.list_products(account, &search).await),
        "q"
    );
    assert_eq!(
        refused_field(storage.find_user_by_email("a\0@example.com").await),
        "email"
    );
    assert_eq!(
        refused_field(storage.rename_account(account, "Sh\0p", now).await),
        "name"
    );
    let new_store = NewStore {
        platform: Platform::Local,
        external_id: Uuid::new_v4().to_string(),
        name: "Cat\0alog".into(),
        currency: "USD".into(),
        credentials_encrypted: None,
    };
    assert_eq!(
        refused_field(storage.create_store(account, new_store, now).await),
        "name"
    );
    assert_eq!(
        refused_field(
            storage
                .find_product_by_external_id(account, store, "x\0")
                .await
        ),
        "externalId"
    );
    assert_eq!(
        refused_field(storage.remove_product(account, store, "x\0").await),
        "externalId"
    );

    storage
        .upsert_products(account, store, &[product("1", "Mug")], now)
        .await
        .unwrap();
    let stored = storage
        .find_product_by_external_id(account, store, "1")
        .await
        .unwrap()
        .unwrap();
    let mut edited = stored.source.clone();
    edited.seo_title = Some("Mug\0".into());
    assert_eq!(
        refused_field(
            storage
                .replace_product_source(account, stored.id, None, &edited, now)
                .await
        ),
        "seoTitle"
    );

    let job = NewJob {
        store_id: store,
        kind: domain::JobKind::Text,
        source_scope: domain::SourceScope::Products,
        source_ids: vec![stored.id],
        attributes: vec![domain::Attribute::Title],
        target_lang: None,
        user_prompt: Some("a\0b".into()),
        brand_voice: None,
        provider: "rules".into(),
        credits_per_item: 1,
        max_products: 10,
    };
    assert_eq!(
        refused_field(storage.create_job(account, job, now).await),
        "userPrompt"
    );

    let event = NewWebhookEvent {
        provider: "woocommerce".into(),
        dedupe_key: "d\0".into(),
        event_type: "product.updated".into(),
        account_id: Some(account),
        payload: "{}".into(),
    };
    assert_eq!(
        refused_field(storage.record_webhook_event(event, now).await),
        "dedupeKey"
    );
    let request = NewSyncRequest {
        kind: SyncKind::Single,
        trigger: "webhook".into(),
        product_external_id: Some("4\0".into()),
    };
    assert_eq!(
        refused_field(storage.enqueue_sync(account, store, request, now).await),
        "productExternalId"
    );
    let authorization = WooAuthorization {
        token_hash: "hash".into(),
        account_id: account,
        store_url: "https://shop.example".into(),
        name: "Sh\0p".into(),
        currency: "USD".into(),
        expires_at: now + chrono::Duration::hours(1),
        store_id: None,
    };
    assert_eq!(
        refused_field(storage.create_woo_authorization(authorization, now).await),
        "name"
    );
}

async fn diagnostics_with_nul_are_kept_readable(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "diag@example.com").await;
    let batch = SyncBatch {
        id: Uuid::now_v7(),
        store_id: store,
        trigger: "manual".into(),
        kind: "full".into(),
        succeeded: false,
        fetched: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        deleted: 0,
        error: Some("the store answered \"bad\0value\"".into()),
        started_at: Utc::now(),
        duration_ms: 5,
    };
    storage.record_sync_batch(account, &batch).await.unwrap();
    let recorded = storage
        .list_sync_batches(account, store, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        recorded.error.as_deref(),
        Some("the store answered \"bad\u{fffd}value\"")
    );
}

async fn imports_stop_at_the_store_cap_and_write_nothing_past_it(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "cap@example.com").await;
    let now = Utc::now();
    let first: Vec<SourceProduct> = (0..3).map(|i| product(&i.to_string(), "P")).collect();
    let summary = storage
        .import_products(account, store, &first, 4, now)
        .await
        .unwrap();
    assert_eq!(summary.created, 3);

    // Updating the three and adding two would make five.
    let mut second = first.clone();
    second[0].title = "Changed".into();
    second.extend((3..5).map(|i| product(&i.to_string(), "P")));
    match storage
        .import_products(account, store, &second, 4, now)
        .await
    {
        Err(StorageError::TooManyProducts { total: 5, max: 4 }) => {}
        other => panic!("expected the cap to refuse, got {other:?}"),
    }
    let stored = storage.store_products(account, store).await.unwrap();
    assert_eq!(stored.len(), 3, "nothing half-written");
    assert!(stored.iter().all(|p| p.title == "P"), "no update either");

    // Products already held count once: re-importing them with one more fits.
    second.truncate(4);
    let summary = storage
        .import_products(account, store, &second, 4, now)
        .await
        .unwrap();
    assert_eq!((summary.created, summary.updated), (1, 1));
}

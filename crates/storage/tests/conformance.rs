//! One behavioural suite for every storage backend. Each scenario is written once against
//! `dyn Storage` and instantiated for SQLite and PostgreSQL by `conformance!`.

use std::sync::Arc;

use chrono::{Duration, Utc};
use domain::{
    default_plans, Availability, BillingSource, LedgerReason, Money, Plan, Platform, SourceProduct,
};
use storage::{
    NewLoginLink, NewRefreshToken, NewStore, NewSyncRequest, NewUser, NewWebhookEvent,
    ProductQuery, RefreshOutcome, Storage, StorageError, SyncBatch, SyncKind, SyncOutcome,
    SyncRequestStatus, TokenReplacement, WooAuthorization,
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
    migrations_are_idempotent,
    plans_are_seeded_and_overridable,
    registration_creates_account_with_free_credits_and_a_grant,
    duplicate_email_is_refused_without_a_trace,
    refresh_tokens_rotate_once_and_reuse_revokes_the_family,
    expired_and_unknown_refresh_tokens_are_refused,
    concurrent_use_of_one_refresh_token_succeeds_once,
    logout_revokes_only_the_callers_family,
    login_links_work_once_and_expire,
    demo_account_is_created_once,
    wix_instance_provisions_exactly_once_under_a_race,
    tenants_cannot_reach_each_others_rows,
    expired_sessions_are_purged,
    catalog_upserts_skip_unchanged_products,
    products_are_searched_filtered_and_paged,
    stores_are_unique_per_platform_and_delete_their_catalog,
    tenants_cannot_reach_each_others_catalog,
    full_sync_bookkeeping_is_scoped_to_the_store,
    sync_requests_dedupe_claim_fence_and_finish,
    scheduled_syncs_are_queued_once_per_interval,
    local_product_source_is_replaced_only_at_its_revision,
    webhook_deliveries_are_recorded_once,
    woocommerce_authorizations_expire_and_complete,
    tenants_cannot_reach_each_others_syncs,
);

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        password_hash: "$argon2id$placeholder".to_owned(),
        account_name: "Shop".to_owned(),
    }
}

fn refresh_token(user: &domain::User, family: Uuid, hash: &str, ttl: Duration) -> NewRefreshToken {
    NewRefreshToken {
        id: Uuid::now_v7(),
        family_id: family,
        user_id: user.id,
        account_id: user.account_id,
        token_hash: hash.to_owned(),
        expires_at: Utc::now() + ttl,
    }
}

fn replacement(hash: &str) -> TokenReplacement {
    TokenReplacement {
        id: Uuid::now_v7(),
        token_hash: hash.to_owned(),
        expires_at: Utc::now() + Duration::days(7),
    }
}

async fn migrations_are_idempotent(storage: Arc<dyn Storage>) {
    storage
        .migrate()
        .await
        .expect("second migration run is a no-op");
    storage.ping().await.expect("ping");
}

async fn plans_are_seeded_and_overridable(storage: Arc<dyn Storage>) {
    let ids: Vec<String> = storage
        .list_plans()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["free", "starter", "pro", "scale"]);
    let mut plans = default_plans();
    plans[1] = Plan::new("starter", "Starter", 1_200, 1_500);
    storage.sync_plans(&plans).await.unwrap();
    let starter = storage.get_plan("starter").await.unwrap();
    assert_eq!(
        (starter.price_monthly_cents, starter.monthly_credits),
        (1_200, 1_500)
    );
    assert!(matches!(
        storage.get_plan("platinum").await,
        Err(StorageError::NotFound { entity: "plan" })
    ));
}

async fn registration_creates_account_with_free_credits_and_a_grant(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (user, account) = storage
        .register_user(new_user("ann@example.com"), now)
        .await
        .unwrap();
    assert_eq!(user.account_id, account.id);
    assert_eq!(account.plan_id, "free");
    assert_eq!(account.billing_source, BillingSource::None);
    assert_eq!((account.credits_total, account.credits_used), (200, 0));
    assert_eq!(
        account.credits_reset_on,
        domain::next_reset_date(now.date_naive())
    );

    let stored = storage.get_account(account.id).await.unwrap();
    assert_eq!(stored, account);
    let found = storage
        .find_user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, user);

    let ledger = storage.list_ledger(account.id, 10).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].delta, ledger[0].reason),
        (200, LedgerReason::MonthlyGrant)
    );
    let ledger_sum: i64 = ledger.iter().map(|e| e.delta).sum();
    assert_eq!(ledger_sum, stored.credits_total - stored.credits_used);
}

async fn duplicate_email_is_refused_without_a_trace(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    storage
        .register_user(new_user("bob@example.com"), now)
        .await
        .unwrap();
    let err = storage
        .register_user(new_user("bob@example.com"), now)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::EmailTaken), "got {err:?}");
    // The refused attempt left no orphan account behind: only one account can be reached
    // through a user, and registering another email still works.
    let (_, other) = storage
        .register_user(new_user("bob2@example.com"), now)
        .await
        .unwrap();
    assert_eq!(other.credits_total, 200);
}

async fn refresh_tokens_rotate_once_and_reuse_revokes_the_family(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (user, _) = storage
        .register_user(new_user("cy@example.com"), now)
        .await
        .unwrap();
    let family = Uuid::now_v7();
    storage
        .insert_refresh_token(refresh_token(&user, family, "h1", Duration::days(7)), now)
        .await
        .unwrap();

    let outcome = storage
        .rotate_refresh_token("h1", replacement("h2"), now)
        .await
        .unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::Rotated { ref user, .. } if user.email == "cy@example.com")
    );

    // Replaying the spent token is theft: refused, and its successor dies with it.
    let replay = storage
        .rotate_refresh_token("h1", replacement("h3"), now)
        .await
        .unwrap();
    assert_eq!(replay, RefreshOutcome::Reused);
    let successor = storage
        .rotate_refresh_token("h2", replacement("h4"), now)
        .await
        .unwrap();
    assert_eq!(successor, RefreshOutcome::Reused);
    assert_eq!(
        storage
            .rotate_refresh_token("h3", replacement("h5"), now)
            .await
            .unwrap(),
        RefreshOutcome::Unknown,
        "the replacement offered with a replayed token must not have been stored"
    );
}

async fn expired_and_unknown_refresh_tokens_are_refused(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (user, _) = storage
        .register_user(new_user("di@example.com"), now)
        .await
        .unwrap();
    storage
        .insert_refresh_token(
            refresh_token(&user, Uuid::now_v7(), "old", -Duration::seconds(1)),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        storage
            .rotate_refresh_token("old", replacement("n1"), now)
            .await
            .unwrap(),
        RefreshOutcome::Expired
    );
    assert_eq!(
        storage
            .rotate_refresh_token("nope", replacement("n2"), now)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    );
}

async fn concurrent_use_of_one_refresh_token_succeeds_once(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (user, _) = storage
        .register_user(new_user("eve@example.com"), now)
        .await
        .unwrap();
    storage
        .insert_refresh_token(
            refresh_token(&user, Uuid::now_v7(), "race", Duration::days(7)),
            now,
        )
        .await
        .unwrap();
    let attempts = (0..8).map(|i| {
        let storage = storage.clone();
        tokio::spawn(async move {
            storage
                .rotate_refresh_token("race", replacement(&format!("next{i}")), now)
                .await
        })
    });
    let mut rotated = 0;
    for attempt in attempts {
        if let RefreshOutcome::Rotated { .. } = attempt.await.unwrap().unwrap() {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
}

async fn logout_revokes_only_the_callers_family(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (ann, _) = storage
        .register_user(new_user("f1@example.com"), now)
        .await
        .unwrap();
    let (ben, _) = storage
        .register_user(new_user("f2@example.com"), now)
        .await
        .unwrap();
    let (ann_login, ben_login) = (Uuid::now_v7(), Uuid::now_v7());
    storage
        .insert_refresh_token(
            refresh_token(&ann, ann_login, "ann-1", Duration::days(7)),
            now,
        )
        .await
        .unwrap();
    storage
        .insert_refresh_token(
            refresh_token(&ben, ben_login, "ben-1", Duration::days(7)),
            now,
        )
        .await
        .unwrap();
    let active = |user: &domain::User, login: Uuid| {
        let storage = storage.clone();
        let (account_id, user_id) = (user.account_id, user.id);
        async move {
            storage
                .session_is_active(account_id, user_id, login, now)
                .await
                .unwrap()
        }
    };
    assert!(active(&ann, ann_login).await && active(&ben, ben_login).await);
    assert!(!active(&ann, ben_login).await, "a login is its own user's");
    assert!(!storage
        .revoke_refresh_family(ann.id, "ben-1", now)
        .await
        .unwrap());
    assert!(matches!(
        storage
            .rotate_refresh_token("ben-1", replacement("ben-2"), now)
            .await
            .unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
    assert!(active(&ben, ben_login).await, "a rotated login stands");
    assert!(storage
        .revoke_refresh_family(ann.id, "ann-1", now)
        .await
        .unwrap());
    assert!(
        !active(&ann, ann_login).await,
        "a signed-out login has ended"
    );
    assert!(
        active(&ben, ben_login).await,
        "others' logins are untouched"
    );
    // Presenting a signed-out token says the session ended; it is not a theft.
    assert_eq!(
        storage
            .rotate_refresh_token("ann-1", replacement("ann-2"), now)
            .await
            .unwrap(),
        RefreshOutcome::SessionEnded
    );
}

async fn login_links_work_once_and_expire(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (user, account) = storage.ensure_demo_account(now).await.unwrap();
    for (hash, ttl) in [
        ("fresh", Duration::hours(1)),
        ("stale", -Duration::seconds(1)),
    ] {
        let link = NewLoginLink {
            token_hash: hash.to_owned(),
            user_id: user.id,
            account_id: account.id,
            expires_at: now + ttl,
        };
        storage.create_login_link(link, now).await.unwrap();
    }
    let (linked_user, _) = storage
        .consume_login_link("fresh", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked_user.id, user.id);
    assert!(storage
        .consume_login_link("fresh", now)
        .await
        .unwrap()
        .is_none());
    assert!(storage
        .consume_login_link("stale", now)
        .await
        .unwrap()
        .is_none());
    assert!(storage
        .consume_login_link("never", now)
        .await
        .unwrap()
        .is_none());
}

async fn demo_account_is_created_once(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (first_user, first) = storage.ensure_demo_account(now).await.unwrap();
    let (second_user, second) = storage.ensure_demo_account(now).await.unwrap();
    assert_eq!((first.id, first_user.id), (second.id, second_user.id));
    assert_eq!(first_user.password_hash, None);
    assert_eq!(first.credits_total, 200);
}

async fn wix_instance_provisions_exactly_once_under_a_race(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let instance = Uuid::new_v4().to_string();
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let storage = storage.clone();
            let instance = instance.clone();
            tokio::spawn(async move { storage.provision_wix_instance(&instance, now).await })
        })
        .collect();
    let mut created = 0;
    let mut account_ids = Vec::new();
    for attempt in attempts {
        let provisioned = attempt.await.unwrap().unwrap();
        created += usize::from(provisioned.created);
        account_ids.push(provisioned.account.id);
        assert_eq!(provisioned.account.billing_source, BillingSource::Wix);
        assert_eq!(provisioned.store.external_id, instance);
    }
    account_ids.dedup();
    assert_eq!(created, 1);
    assert_eq!(
        account_ids.len(),
        1,
        "every caller resolves to the same account"
    );
    let stores = storage.list_stores(account_ids[0]).await.unwrap();
    assert_eq!(stores.len(), 1);
    let again = storage
        .provision_wix_instance(&instance, now)
        .await
        .unwrap();
    assert!(!again.created);
}

async fn tenants_cannot_reach_each_others_rows(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let a = storage
        .provision_wix_instance("tenant-a", now)
        .await
        .unwrap();
    let b = storage
        .provision_wix_instance("tenant-b", now)
        .await
        .unwrap();
    let (user_c, account_c) = storage
        .register_user(new_user("c@example.com"), now)
        .await
        .unwrap();

    assert!(matches!(
        storage.get_store(a.account.id, b.store.id).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(
        storage.get_store(b.account.id, b.store.id).await.unwrap(),
        b.store
    );
    assert!(storage
        .list_stores(a.account.id)
        .await
        .unwrap()
        .iter()
        .all(|s| s.account_id == a.account.id));
    assert!(matches!(
        storage.get_user(a.account.id, user_c.id).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(
        storage.get_user(account_c.id, user_c.id).await.unwrap(),
        user_c
    );
    assert!(storage
        .list_ledger(a.account.id, 100)
        .await
        .unwrap()
        .iter()
        .all(|e| e.account_id == a.account.id));

    storage
        .rename_account(a.account.id, "Renamed A", now)
        .await
        .unwrap();
    assert_eq!(
        storage.get_account(b.account.id).await.unwrap().name,
        b.account.name
    );
}

async fn expired_sessions_are_purged(storage: Arc<dyn Storage>) {
    let now = Utc::now();
    let (user, account) = storage
        .register_user(new_user("g@example.com"), now)
        .await
        .unwrap();
    let family = Uuid::now_v7();
    storage
        .insert_refresh_token(
            refresh_token(&user, family, "dead", -Duration::days(2)),
            now,
        )
        .await
        .unwrap();
    storage
        .insert_refresh_token(refresh_token(&user, family, "live", Duration::days(2)), now)
        .await
        .unwrap();
    let link = NewLoginLink {
        token_hash: "old-link".into(),
        user_id: user.id,
        account_id: account.id,
        expires_at: now - Duration::days(2),
    };
    storage.create_login_link(link, now).await.unwrap();

    let purged = storage
        .purge_expired_sessions(now - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert_eq!(
        storage
            .rotate_refresh_token("dead", replacement("x"), now)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    );
    assert!(matches!(
        storage
            .rotate_refresh_token("live", replacement("y"), now)
            .await
            .unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
}

fn product(external_id: &str, title: &str, categories: &[&str]) -> SourceProduct {
    SourceProduct {
        external_id: external_id.to_owned(),
        title: title.to_owned(),
        description_html: format!("<p>{title} description</p>"),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: Some(format!("SKU-{external_id}")),
        gtin: None,
        mpn: None,
        brand: Some("Northwind".into()),
        price: Some(Money { minor: 1999 }),
        sale_price: None,
        currency: "USD".into(),
        availability: Availability::InStock,
        stock: Some(3),
        categories: categories.iter().map(|c| c.to_string()).collect(),
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
        .register_user(new_user(email), Utc::now())
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

async fn catalog_upserts_skip_unchanged_products(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "cat@example.com").await;
    let mut products = vec![
        product("1", "Trail Tee", &["Apparel > Tees"]),
        product("2", "Camp Mug", &["Kitchen"]),
        product("3", "Wool Socks ☕ שלום", &["Apparel > Socks"]),
    ];
    let first = storage
        .upsert_products(account, store, &products, Utc::now())
        .await
        .unwrap();
    assert_eq!((first.created, first.updated, first.unchanged), (3, 0, 0));
    let again = storage
        .upsert_products(account, store, &products, Utc::now())
        .await
        .unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3));

    products[1].title = "Enamel Camp Mug".into();
    products[1].categories = vec!["Kitchen > Mugs".into()];
    let changed = storage
        .upsert_products(account, store, &products, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (changed.created, changed.updated, changed.unchanged),
        (0, 1, 2)
    );

    let page = storage
        .list_products(
            account,
            &ProductQuery {
                search: Some("enamel".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let stored = storage
        .get_product(account, page.items[0].id)
        .await
        .unwrap();
    assert_eq!(stored.revision, 2);
    assert_eq!(
        stored.source, products[1],
        "the source record round-trips exactly"
    );
    assert_eq!(stored.collection_ids.len(), 2, "Kitchen and Kitchen > Mugs");
    let exported = storage.store_products(account, store).await.unwrap();
    assert_eq!(exported, products);

    let mut variable = product("4", "Variable Tee", &[]);
    variable.price = None;
    for (n, minor) in [(1, 2500), (2, 1900)] {
        variable.variants.push(domain::Variant {
            external_id: format!("4-{n}"),
            sku: None,
            title: format!("Size {n}"),
            options: vec![domain::OptionValue::new("Size", n.to_string())],
            price: Some(Money { minor }),
            sale_price: None,
            stock: None,
            availability: Availability::InStock,
            gtin: None,
            image: None,
        });
    }
    storage
        .upsert_products(account, store, &[variable], Utc::now())
        .await
        .unwrap();
    let listed = storage
        .list_products(
            account,
            &ProductQuery {
                search: Some("variable".into()),
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.items[0].price_minor,
        Some(1900),
        "listed at its lowest variant price"
    );
}

async fn products_are_searched_filtered_and_paged(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "page@example.com").await;
    let products: Vec<SourceProduct> = (1..=7)
        .map(|n| {
            let category = if n % 2 == 0 {
                "Apparel > Tees"
            } else {
                "Home > Decor"
            };
            product(
                &n.to_string(),
                &format!("Product {n} 100%_off"),
                &[category],
            )
        })
        .collect();
    storage
        .upsert_products(account, store, &products, Utc::now())
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut query = ProductQuery {
        store_id: Some(store),
        limit: 3,
        ..Default::default()
    };
    loop {
        let page = storage.list_products(account, &query).await.unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.items.iter().map(|p| p.title.clone()));
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[0], "Product 1 100%_off");

    let collections = storage
        .list_collections(account, Some(store))
        .await
        .unwrap();
    let paths: Vec<(&str, i64)> = collections
        .iter()
        .map(|c| (c.path.as_str(), c.product_count))
        .collect();
    assert_eq!(
        paths,
        [
            ("Apparel", 3),
            ("Apparel > Tees", 3),
            ("Home", 4),
            ("Home > Decor", 4)
        ]
    );
    let apparel = collections.iter().find(|c| c.path == "Apparel").unwrap();
    let filtered = storage
        .list_products(
            account,
            &ProductQuery {
                collection_id: Some(apparel.id),
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(filtered.total, 3);

    let literal = |search: &str| ProductQuery {
        search: Some(search.into()),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        storage
            .list_products(account, &literal("PRODUCT 7"))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        storage
            .list_products(account, &literal("sku-3"))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        storage
            .list_products(account, &literal("0%_"))
            .await
            .unwrap()
            .total,
        7,
        "wildcards are literal"
    );
    assert_eq!(
        storage
            .list_products(account, &literal("1%0"))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        storage
            .list_products(account, &literal("decor"))
            .await
            .unwrap()
            .total,
        4
    );
}

async fn stores_are_unique_per_platform_and_delete_their_catalog(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "dup-store@example.com").await;
    let existing = storage.get_store(account, store).await.unwrap();
    let again = storage
        .create_store(
            account,
            NewStore {
                platform: Platform::Local,
                external_id: existing.external_id.clone(),
                name: "Again".into(),
                currency: "EUR".into(),
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await;
    assert!(matches!(again, Err(StorageError::StoreExists)));
    storage
        .upsert_products(account, store, &[product("1", "Tee", &["A"])], Utc::now())
        .await
        .unwrap();
    storage.delete_store(account, store).await.unwrap();
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
    assert_eq!(page.total, 0);
    assert!(storage
        .list_collections(account, None)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        storage.delete_store(account, store).await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn tenants_cannot_reach_each_others_catalog(storage: Arc<dyn Storage>) {
    let (alice, alice_store) = local_store(&storage, "alice@example.com").await;
    let (bob, bob_store) = local_store(&storage, "bob-cat@example.com").await;
    storage
        .upsert_products(
            alice,
            alice_store,
            &[product("1", "Alice Tee", &["A"])],
            Utc::now(),
        )
        .await
        .unwrap();
    let alice_product = storage
        .list_products(
            alice,
            &ProductQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items[0]
        .id;

    assert!(matches!(
        storage.get_product(bob, alice_product).await,
        Err(StorageError::NotFound { .. })
    ));
    let bob_view = storage
        .list_products(
            bob,
            &ProductQuery {
                store_id: Some(alice_store),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(bob_view.total, 0);
    assert!(storage
        .list_collections(bob, Some(alice_store))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        storage
            .upsert_products(bob, alice_store, &[product("2", "Bob's", &[])], Utc::now())
            .await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage.delete_store(bob, alice_store).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(storage
        .store_products(bob, alice_store)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage.get_store(bob, bob_store).await.unwrap().account_id,
        bob
    );
}

async fn full_sync_bookkeeping_is_scoped_to_the_store(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "sync@example.com").await;
    let (other_account, other_store) = local_store(&storage, "sync-other@example.com").await;
    let products = [
        product("1", "One", &[]),
        product("2", "Two", &[]),
        product("3", "Three", &[]),
    ];
    storage
        .upsert_products(account, store, &products, Utc::now())
        .await
        .unwrap();
    storage
        .upsert_products(other_account, other_store, &products, Utc::now())
        .await
        .unwrap();

    let keep = vec!["2".to_owned()];
    assert_eq!(
        storage
            .remove_products_except(account, store, &keep)
            .await
            .unwrap(),
        2
    );
    let left = storage
        .list_products(
            account,
            &ProductQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        left.items
            .iter()
            .map(|p| p.external_id.as_str())
            .collect::<Vec<_>>(),
        ["2"]
    );
    let untouched = storage
        .list_products(
            other_account,
            &ProductQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(untouched.total, 3, "another store's products stay");
    assert_eq!(
        storage
            .remove_products_except(other_account, store, &[])
            .await
            .unwrap(),
        0,
        "scoped by account"
    );

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
        error: Some("the store answered 500".into()),
        started_at: Utc::now(),
        duration_ms: 42,
    };
    storage.record_sync_batch(account, &batch).await.unwrap();
    storage
        .record_sync_batch(
            other_account,
            &SyncBatch {
                id: Uuid::now_v7(),
                ..batch.clone()
            },
        )
        .await
        .unwrap();
    let history = storage.list_sync_batches(account, store, 10).await.unwrap();
    assert_eq!(
        history.len(),
        1,
        "a batch naming another account's store is not recorded"
    );
    assert_eq!(history[0].error.as_deref(), Some("the store answered 500"));
    assert!(!history[0].succeeded);
    assert!(storage
        .list_sync_batches(other_account, store, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage.store_credentials(account, store).await.unwrap(),
        None
    );
    assert!(matches!(
        storage.store_credentials(other_account, store).await,
        Err(StorageError::NotFound { .. })
    ));
}

fn sync_request(kind: SyncKind, product: Option<&str>) -> NewSyncRequest {
    NewSyncRequest {
        kind,
        trigger: if product.is_some() {
            "webhook"
        } else {
            "manual"
        }
        .into(),
        product_external_id: product.map(str::to_owned),
    }
}

async fn sync_requests_dedupe_claim_fence_and_finish(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "queue@example.com").await;
    let (_, other_store) = local_store(&storage, "queue2@example.com").await;
    let now = Utc::now();
    let lease = Duration::minutes(5);

    let full = storage
        .enqueue_sync(account, store, sync_request(SyncKind::Full, None), now)
        .await
        .unwrap();
    let again = storage
        .enqueue_sync(account, store, sync_request(SyncKind::Full, None), now)
        .await
        .unwrap();
    assert_eq!(full.id, again.id, "a waiting full sync absorbs the second");
    let single = storage
        .enqueue_sync(
            account,
            store,
            sync_request(SyncKind::Single, Some("42")),
            now,
        )
        .await
        .unwrap();
    assert_ne!(single.id, full.id);
    assert_eq!(single.product_external_id.as_deref(), Some("42"));
    assert_eq!(
        storage
            .active_sync_requests(account, store)
            .await
            .unwrap()
            .len(),
        2
    );

    let claimed = storage
        .claim_sync_request(now, lease)
        .await
        .unwrap()
        .expect("the oldest request is due");
    assert_eq!(claimed.id, full.id);
    assert_eq!(claimed.status, SyncRequestStatus::Running);
    assert_eq!(claimed.attempts, 1);
    assert!(
        storage
            .claim_sync_request(now, lease)
            .await
            .unwrap()
            .is_none(),
        "the store's other request waits while one of its syncs runs"
    );
    // While it runs, a new full request queues behind it.
    let queued_behind = storage
        .enqueue_sync(account, store, sync_request(SyncKind::Full, None), now)
        .await
        .unwrap();
    assert_ne!(queued_behind.id, full.id);

    // The lease expires: another worker takes the request over; the first is fenced off.
    let later = now + Duration::minutes(6);
    let taken_over = storage
        .claim_sync_request(later, lease)
        .await
        .unwrap()
        .expect("expired lease is claimable");
    assert_eq!(taken_over.id, full.id);
    assert_eq!(taken_over.attempts, 2);
    let batch_id = Uuid::now_v7();
    assert!(!storage
        .extend_sync_lease(full.id, 1, later + lease)
        .await
        .unwrap());
    assert!(!storage
        .finish_sync_request(full.id, 1, SyncOutcome::Done { batch_id }, later)
        .await
        .unwrap());
    assert!(storage
        .extend_sync_lease(full.id, 2, later + lease)
        .await
        .unwrap());
    assert!(storage
        .finish_sync_request(full.id, 2, SyncOutcome::Done { batch_id }, later)
        .await
        .unwrap());
    let done = storage.get_sync_request(account, full.id).await.unwrap();
    assert_eq!(done.status, SyncRequestStatus::Done);
    assert_eq!(done.batch_id, Some(batch_id));

    // A transient failure goes back to waiting until its retry time.
    let next = storage
        .claim_sync_request(later, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, single.id);
    let retry_at = later + Duration::minutes(1);
    assert!(storage
        .finish_sync_request(
            single.id,
            next.attempts,
            SyncOutcome::Failed {
                batch_id: None,
                error: "store unreachable".into(),
                retry_at: Some(retry_at),
            },
            later,
        )
        .await
        .unwrap());
    let waiting = storage.get_sync_request(account, single.id).await.unwrap();
    assert_eq!(waiting.status, SyncRequestStatus::Pending);
    assert_eq!(waiting.error.as_deref(), Some("store unreachable"));
    let third = storage
        .claim_sync_request(later, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.id, queued_behind.id, "the retry is not due yet");
    assert!(storage
        .finish_sync_request(
            third.id,
            third.attempts,
            SyncOutcome::Failed {
                batch_id: None,
                error: "refused".into(),
                retry_at: None,
            },
            later,
        )
        .await
        .unwrap());
    assert_eq!(
        storage
            .get_sync_request(account, third.id)
            .await
            .unwrap()
            .status,
        SyncRequestStatus::Failed
    );
    let retried = storage
        .claim_sync_request(retry_at, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.id, single.id);
    assert_eq!(retried.attempts, 2);
    assert!(storage
        .claim_sync_request(retry_at, lease)
        .await
        .unwrap()
        .is_none());
    let _ = other_store;
}

async fn scheduled_syncs_are_queued_once_per_interval(storage: Arc<dyn Storage>) {
    let (account, local) = local_store(&storage, "sched@example.com").await;
    let woo = storage
        .create_store(
            account,
            NewStore {
                platform: Platform::Woocommerce,
                external_id: "https://sched.example".into(),
                name: "Woo".into(),
                currency: "USD".into(),
                credentials_encrypted: Some("sealed".into()),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let quiet = storage
        .create_store(
            account,
            NewStore {
                platform: Platform::Woocommerce,
                external_id: "https://quiet.example".into(),
                name: "Quiet".into(),
                currency: "USD".into(),
                credentials_encrypted: Some("sealed".into()),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    storage.set_auto_sync(account, woo.id, true).await.unwrap();
    storage.set_auto_sync(account, local, true).await.unwrap();
    assert!(
        storage
            .store_sync_state(account, woo.id)
            .await
            .unwrap()
            .auto_sync
    );
    assert!(
        !storage
            .store_sync_state(account, quiet.id)
            .await
            .unwrap()
            .auto_sync
    );

    let interval = Duration::minutes(15);
    let now = Utc::now();
    assert_eq!(
        storage
            .enqueue_scheduled_syncs(now, interval)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        storage
            .enqueue_scheduled_syncs(now + Duration::minutes(5), interval)
            .await
            .unwrap(),
        0,
        "not again within the interval"
    );
    let active = storage.active_sync_requests(account, woo.id).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kind, SyncKind::Incremental);
    assert_eq!(active[0].trigger, "schedule");
    assert!(storage
        .active_sync_requests(account, quiet.id)
        .await
        .unwrap()
        .is_empty());
    assert!(storage
        .active_sync_requests(account, local)
        .await
        .unwrap()
        .is_empty());
    // The next interval: the store is due again, but its request is still waiting.
    assert_eq!(
        storage
            .enqueue_scheduled_syncs(now + Duration::minutes(16), interval)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        storage
            .active_sync_requests(account, woo.id)
            .await
            .unwrap()
            .len(),
        1
    );

    let through = now - Duration::minutes(1);
    storage
        .mark_synced_through(account, woo.id, through)
        .await
        .unwrap();
    storage
        .mark_synced_through(account, woo.id, through - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        storage
            .store_sync_state(account, woo.id)
            .await
            .unwrap()
            .synced_through
            .map(|t| t.timestamp_millis()),
        Some(through.timestamp_millis()),
        "synced_through never moves back"
    );
}

async fn local_product_source_is_replaced_only_at_its_revision(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "local@example.com").await;
    storage
        .upsert_products(
            account,
            store,
            &[product("p1", "Old Title", &["Home"])],
            Utc::now(),
        )
        .await
        .unwrap();
    let stored = storage
        .find_product_by_external_id(account, store, "p1")
        .await
        .unwrap()
        .expect("found by platform id");
    assert!(storage
        .find_product_by_external_id(account, store, "nope")
        .await
        .unwrap()
        .is_none());

    let mut changed = stored.source.clone();
    changed.title = "New Title 🌿 עברית &amp;".into();
    changed.categories = vec!["Garden > Tools".into()];
    let replaced = storage
        .replace_product_source(
            account,
            stored.id,
            Some(stored.revision),
            &changed,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(replaced.revision, stored.revision + 1);
    assert_eq!(replaced.source.title, "New Title 🌿 עברית &amp;");
    let collections = storage
        .list_collections(account, Some(store))
        .await
        .unwrap();
    let tools = collections
        .iter()
        .find(|c| c.path == "Garden > Tools")
        .expect("collections follow the new categories");
    assert!(replaced.collection_ids.contains(&tools.id));
    let page = storage
        .list_products(
            account,
            &ProductQuery {
                search: Some("new title".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1, "search sees the new title");

    match storage
        .replace_product_source(
            account,
            stored.id,
            Some(stored.revision),
            &changed,
            Utc::now(),
        )
        .await
    {
        Err(StorageError::RevisionMismatch { expected, current }) => {
            assert_eq!((expected, current), (stored.revision, stored.revision + 1));
        }
        other => panic!("stale revision must be refused, got {other:?}"),
    }
    let same = storage
        .replace_product_source(account, stored.id, None, &changed, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        same.revision, replaced.revision,
        "an identical record is no change"
    );

    assert!(storage.remove_product(account, store, "p1").await.unwrap());
    assert!(!storage.remove_product(account, store, "p1").await.unwrap());
}

async fn webhook_deliveries_are_recorded_once(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "hooks@example.com").await;
    let event = || NewWebhookEvent {
        provider: "woocommerce".into(),
        dedupe_key: format!("{store}:delivery-1"),
        event_type: "product.updated".into(),
        account_id: Some(account),
        payload: "{}".into(),
    };
    assert!(storage
        .record_webhook_event(event(), Utc::now())
        .await
        .unwrap());
    assert!(!storage
        .record_webhook_event(event(), Utc::now())
        .await
        .unwrap());

    storage
        .set_webhook_secret(account, store, Some("sealed-secret"))
        .await
        .unwrap();
    let (found, secret) = storage.webhook_store(store).await.unwrap().unwrap();
    assert_eq!(found.id, store);
    assert_eq!(secret.as_deref(), Some("sealed-secret"));
    assert!(storage
        .webhook_store(Uuid::now_v7())
        .await
        .unwrap()
        .is_none());
}

async fn woocommerce_authorizations_expire_and_complete(storage: Arc<dyn Storage>) {
    let (account, store) = local_store(&storage, "auth@example.com").await;
    let now = Utc::now();
    storage
        .create_woo_authorization(
            WooAuthorization {
                token_hash: "hash-1".into(),
                account_id: account,
                store_url: "https://shop.example".into(),
                name: "Shop".into(),
                currency: "EUR".into(),
                expires_at: now + Duration::minutes(30),
                store_id: None,
            },
            now,
        )
        .await
        .unwrap();
    let found = storage
        .find_woo_authorization("hash-1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.store_url, "https://shop.example");
    assert_eq!(found.store_id, None);
    assert!(storage
        .find_woo_authorization("hash-1", now + Duration::minutes(31))
        .await
        .unwrap()
        .is_none());
    assert!(storage
        .find_woo_authorization("other", now)
        .await
        .unwrap()
        .is_none());
    storage
        .complete_woo_authorization("hash-1", store)
        .await
        .unwrap();
    assert_eq!(
        storage
            .find_woo_authorization("hash-1", now)
            .await
            .unwrap()
            .unwrap()
            .store_id,
        Some(store)
    );
}

async fn tenants_cannot_reach_each_others_syncs(storage: Arc<dyn Storage>) {
    let (alice, alice_store) = local_store(&storage, "alice-sync@example.com").await;
    let (bob, _) = local_store(&storage, "bob-sync@example.com").await;
    let request = storage
        .enqueue_sync(
            alice,
            alice_store,
            sync_request(SyncKind::Full, None),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(matches!(
        storage
            .enqueue_sync(
                bob,
                alice_store,
                sync_request(SyncKind::Full, None),
                Utc::now()
            )
            .await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage.get_sync_request(bob, request.id).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(storage
        .active_sync_requests(bob, alice_store)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        storage.set_auto_sync(bob, alice_store, true).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage.store_sync_state(bob, alice_store).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage
            .set_webhook_secret(bob, alice_store, Some("x"))
            .await,
        Err(StorageError::NotFound { .. })
    ));
    storage
        .upsert_products(
            alice,
            alice_store,
            &[product("a1", "Alice only", &[])],
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(storage
        .find_product_by_external_id(bob, alice_store, "a1")
        .await
        .unwrap()
        .is_none());
    assert!(!storage
        .remove_product(bob, alice_store, "a1")
        .await
        .unwrap());
    let alice_product = storage
        .find_product_by_external_id(alice, alice_store, "a1")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        storage
            .replace_product_source(
                bob,
                alice_product.id,
                None,
                &alice_product.source,
                Utc::now()
            )
            .await,
        Err(StorageError::NotFound { .. })
    ));
}

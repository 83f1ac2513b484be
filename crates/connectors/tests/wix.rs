//! The real Wix client against the fake Wix API, over HTTP. Every test uses its own
//! instance id: the client's rate limiter is shared per instance across the process.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use connectors::http::{ConnectorError, RetryPolicy};
use connectors::wix::{CatalogVersion, RateLimit, WixCatalog, WixClient, WixConfig};
use connectors::{list_all, Catalog, CatalogProduct, ContentUpdate, ProductUpdate};
use domain::{Availability, InfoSection, Money, ProductAttribute, ProductImage, SourceProduct};
use testkit::wix_api::{self, FakeWix, Fault, PaidPlan};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(3),
        timeout: Duration::from_secs(5),
    }
}

fn config(fake: &FakeWix, instance: &str) -> WixConfig {
    let mut config = WixConfig::new(&fake.app_id, &fake.app_secret, instance);
    config.base_url = fake.base_url.clone();
    config.retry = fast_retries();
    config
}

fn client(fake: &FakeWix, instance: &str) -> WixClient {
    WixClient::new(config(fake, instance)).unwrap()
}

fn catalog(fake: &FakeWix, instance: &str) -> WixCatalog {
    WixCatalog::new(client(fake, instance))
}

async fn fake_with(instance: &str, version: wix_api::CatalogVersion) -> FakeWix {
    let fake = FakeWix::start().await;
    fake.add_instance(instance, version);
    fake
}

fn at(hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, hour, 0, 0).unwrap()
}

fn product(n: usize) -> SourceProduct {
    SourceProduct {
        external_id: String::new(),
        title: format!("Garden trowel {n}"),
        description_html: format!("<p>Forged steel trowel number {n}.</p>"),
        short_description: String::new(),
        seo_title: Some(format!("Trowel {n} | Greenleaf")),
        seo_description: Some(format!("A forged trowel, number {n}.")),
        info_sections: vec![InfoSection {
            title: "Care".into(),
            html: "<p>Wipe dry after use.</p>".into(),
        }],
        sku: Some(format!("TRW-{n}")),
        gtin: None,
        mpn: None,
        brand: Some("Greenleaf".into()),
        price: Some(Money { minor: 2495 }),
        sale_price: Some(Money { minor: 1995 }),
        currency: "USD".into(),
        availability: if n.is_multiple_of(3) {
            Availability::OutOfStock
        } else {
            Availability::InStock
        },
        stock: Some(7),
        categories: vec!["Garden > Tools".into(), "Sale".into()],
        tags: Vec::new(),
        images: vec![
            ProductImage {
                url: format!("https://static.example/trowel-{n}.jpg"),
                alt: Some("Trowel".into()),
            },
            ProductImage {
                url: format!("https://static.example/trowel-{n}-side.jpg"),
                alt: None,
            },
        ],
        link: None,
        attributes: vec![ProductAttribute {
            name: "Handle".into(),
            values: vec!["Ash".into(), "Oak".into()],
        }],
        variants: Vec::new(),
        published: n % 5 != 4,
    }
}

fn products(count: usize) -> Vec<SourceProduct> {
    (0..count).map(product).collect()
}

/// What a seeded product reads back as from a V3 site: everything but what V3 queries do
/// not carry at product level (SKU and stock live on variants).
fn expected_v3(original: &SourceProduct, read: &CatalogProduct, id: &str) -> SourceProduct {
    let mut expected = original.clone();
    expected.external_id = id.to_owned();
    expected.sku = None;
    expected.stock = None;
    expected.link = read.product.link.clone();
    expected
}

fn by_id<'a>(products: &'a [CatalogProduct], id: &str) -> &'a CatalogProduct {
    products
        .iter()
        .find(|p| p.product.external_id == id)
        .unwrap()
}

fn update(id: &str, revision: Option<&str>, content: ContentUpdate) -> ProductUpdate {
    ProductUpdate {
        external_id: id.to_owned(),
        expected_revision: revision.map(str::to_owned),
        update: content,
    }
}

fn titled(title: &str) -> ContentUpdate {
    ContentUpdate {
        title: Some(title.to_owned()),
        ..ContentUpdate::default()
    }
}

#[tokio::test]
async fn one_token_serves_many_calls() {
    let fake = fake_with("inst-token-once", wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed("inst-token-once", &products(3), at(9));
    let store = catalog(&fake, "inst-token-once");
    for _ in 0..4 {
        for id in &ids {
            assert!(store.get(id).await.unwrap().is_some());
        }
    }
    assert_eq!(list_all(&store, None).await.unwrap().len(), 3);
    assert_eq!(fake.tokens_minted(), 1);
    assert_eq!(
        fake.requests_to("/stores/v3/provision/version"),
        1,
        "the catalog version is read once"
    );
}

#[tokio::test]
async fn tokens_are_renewed_near_expiry_and_when_wix_expires_them() {
    let fake = fake_with("inst-expiry", wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed("inst-expiry", &products(1), at(9));
    // Five minutes or less left: not worth keeping, every call mints a fresh one.
    fake.set_token_lifetime(300);
    let store = catalog(&fake, "inst-expiry");
    for _ in 0..3 {
        store.get(&ids[0]).await.unwrap();
    }
    let short_lived = fake.tokens_minted();
    assert!(short_lived >= 3, "minted {short_lived}");

    fake.set_token_lifetime(14_400);
    store.get(&ids[0]).await.unwrap();
    store.get(&ids[0]).await.unwrap();
    assert_eq!(fake.tokens_minted(), short_lived + 1);
    fake.expire_tokens();
    assert!(store.get(&ids[0]).await.unwrap().is_some());
    assert_eq!(
        fake.tokens_minted(),
        short_lived + 2,
        "one re-mint after a 401"
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_the_call_succeeds() {
    let fake = fake_with("inst-revoked", wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed("inst-revoked", &products(1), at(9));
    let store = catalog(&fake, "inst-revoked");
    store.get(&ids[0]).await.unwrap();
    let path = format!("/stores/v3/products/{}", ids[0]);
    let before = fake.requests_to(&path);
    fake.revoke_tokens("inst-revoked");
    assert!(store.get(&ids[0]).await.unwrap().is_some());
    assert_eq!(fake.tokens_minted(), 2);
    assert_eq!(
        fake.requests_to(&path),
        before + 2,
        "refused once, then answered"
    );

    // Removed and reinstalled: the old token works again, no mint needed.
    fake.remove_app("inst-revoked");
    fake.restore_app("inst-revoked");
    assert!(store.get(&ids[0]).await.unwrap().is_some());
}

#[tokio::test]
async fn a_removed_app_is_unauthorized_with_wixs_code() {
    let fake = fake_with("inst-removed", wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed("inst-removed", &products(1), at(9));
    let store = catalog(&fake, "inst-removed");
    store.get(&ids[0]).await.unwrap();
    fake.remove_app("inst-removed");
    match store.get(&ids[0]).await {
        Err(ConnectorError::Unauthorized { code, message }) => {
            assert_eq!(code, "APP_NOT_INSTALLED");
            assert!(message.contains("not installed"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.tokens_minted(), 1, "the refused mint issued nothing");

    let mut wrong = config(&fake, "inst-removed");
    wrong.app_secret = "not-the-secret".into();
    match WixClient::new(wrong).unwrap().app_instance().await {
        Err(ConnectorError::Unauthorized { code, .. }) => {
            assert_eq!(code, "INVALID_CLIENT_CREDENTIALS")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn v3_lists_every_product_across_pages_with_the_requested_blocks() {
    let fake = fake_with("inst-v3-list", wix_api::CatalogVersion::V3Catalog).await;
    let originals = products(250);
    let ids = fake.seed("inst-v3-list", &originals, at(9));
    let store = catalog(&fake, "inst-v3-list");
    let listed = list_all(&store, None).await.unwrap();
    assert_eq!(listed.len(), 250);
    assert_eq!(
        fake.requests_to("/stores/v3/products/query"),
        3,
        "pages of 100"
    );
    let read: Vec<&str> = listed
        .iter()
        .map(|p| p.product.external_id.as_str())
        .collect();
    assert_eq!(read, ids.iter().map(String::as_str).collect::<Vec<_>>());
    for (original, id) in originals.iter().zip(&ids).take(10) {
        let product = by_id(&listed, id);
        assert_eq!(product.product, expected_v3(original, product, id));
        assert_eq!(product.revision.as_deref(), Some("1"));
    }
    let first = &listed[0].product;
    assert_eq!(
        first.description_html,
        "<p>Forged steel trowel number 0.</p>"
    );
    assert_eq!(first.categories, ["Garden > Tools", "Sale"]);
    assert_eq!(first.images.len(), 2, "media.itemsInfo was asked for");
    assert!(first
        .link
        .as_deref()
        .unwrap()
        .ends_with("/product-page/garden-trowel-0"));
    assert_eq!(first.currency, "USD");
    assert!(!listed[4].product.published);
    assert_eq!(listed[3].product.availability, Availability::OutOfStock);

    let mut paths: Vec<String> = store
        .collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    paths.sort();
    assert_eq!(paths, ["Garden", "Garden > Tools", "Sale"]);
}

#[tokio::test]
async fn v3_incremental_listing_filters_on_updated_date() {
    let fake = fake_with("inst-v3-since", wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed("inst-v3-since", &products(120), at(9));
    for id in [&ids[5], &ids[110]] {
        fake.edit_in_dashboard("inst-v3-since", id, |p| p["name"] = "Edited in Wix".into());
    }
    let store = catalog(&fake, "inst-v3-since");
    let changed = list_all(&store, Some(at(10))).await.unwrap();
    let changed_ids: Vec<&str> = changed
        .iter()
        .map(|p| p.product.external_id.as_str())
        .collect();
    assert_eq!(changed_ids, [ids[5].as_str(), ids[110].as_str()]);
    assert!(changed.iter().all(|p| p.product.title == "Edited in Wix"));
    assert!(changed.iter().all(|p| p.revision.as_deref() == Some("2")));
}

#[tokio::test]
async fn list_and_get_map_a_product_identically() {
    for (instance, version) in [
        ("inst-same-v3", wix_api::CatalogVersion::V3Catalog),
        ("inst-same-v1", wix_api::CatalogVersion::V1Catalog),
    ] {
        let fake = fake_with(instance, version).await;
        let ids = fake.seed(instance, &products(6), at(9));
        let store = catalog(&fake, instance);
        let listed = list_all(&store, None).await.unwrap();
        for id in &ids {
            let got = store.get(id).await.unwrap().unwrap();
            assert_eq!(&got, by_id(&listed, id), "{instance}");
        }
        assert!(store
            .get("00000000-0000-4000-8000-ffffffffffff")
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn store_text_is_fitted_on_both_catalog_versions() {
    for (instance, version) in [
        ("inst-fit-v3", wix_api::CatalogVersion::V3Catalog),
        ("inst-fit-v1", wix_api::CatalogVersion::V1Catalog),
    ] {
        let fake = fake_with(instance, version).await;
        let mut odd = product(1);
        odd.title = "Trowel\0 deluxe".into();
        odd.description_html = format!(
            "<p>{}</p>",
            "x".repeat(domain::text::DESCRIPTION_HTML_MAX_CHARS)
        );
        let ids = fake.seed(instance, &[odd], at(9));
        let store = catalog(&fake, instance);
        let listed = list_all(&store, None).await.unwrap();
        let fitted = &by_id(&listed, &ids[0]).product;
        assert_eq!(fitted.title, "Trowel deluxe", "{instance}");
        assert_eq!(
            fitted.description_html.chars().count(),
            domain::text::DESCRIPTION_HTML_MAX_CHARS,
            "{instance}"
        );
        assert_eq!(fitted.check_text(), Ok(()), "{instance}");
        let got = store.get(&ids[0]).await.unwrap().unwrap();
        assert_eq!(&got.product, fitted, "{instance}");
    }
}

#[tokio::test]
async fn v3_updates_check_the_revision_and_keep_other_seo_tags() {
    let instance = "inst-v3-update";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed(instance, &products(1), at(9));
    let store = catalog(&fake, instance);
    let read = store.get(&ids[0]).await.unwrap().unwrap();
    fake.edit_in_dashboard(instance, &ids[0], |p| {
        p["name"] = "Renamed by the merchant".into()
    });
    match store
        .update(&update(&ids[0], read.revision.as_deref(), titled("Ours")))
        .await
    {
        Err(ConnectorError::Conflict { code, .. }) => assert_eq!(code, "REVISION_MISMATCH"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        fake.product(instance, &ids[0]).unwrap()["name"],
        "Renamed by the merchant"
    );

    let current = store.get(&ids[0]).await.unwrap().unwrap();
    let written = store
        .update(&update(
            &ids[0],
            current.revision.as_deref(),
            ContentUpdate {
                title: Some("Forged trowel".into()),
                description_html: Some("<p>New copy</p>".into()),
                seo_title: Some("Forged trowel | Greenleaf".into()),
                seo_description: Some("Hand-forged.".into()),
                info_sections: Some(vec![InfoSection {
                    title: "Care".into(),
                    html: "<p>Oil it.</p>".into(),
                }]),
                images: Some(vec![ProductImage {
                    url: "https://static.example/new.jpg".into(),
                    alt: Some("New".into()),
                }]),
            },
        ))
        .await
        .unwrap();
    assert_eq!(written.revision.as_deref(), Some("3"));
    assert_eq!(written.product.title, "Forged trowel");
    assert_eq!(
        written.product.seo_title.as_deref(),
        Some("Forged trowel | Greenleaf")
    );
    assert_eq!(
        written.product.seo_description.as_deref(),
        Some("Hand-forged.")
    );
    assert_eq!(written.product.info_sections[0].html, "<p>Oil it.</p>");
    assert_eq!(written.product.images.len(), 1);
    assert_eq!(written, store.get(&ids[0]).await.unwrap().unwrap());
    let stored = fake.product(instance, &ids[0]).unwrap();
    let tags = stored["seoData"]["tags"].as_array().unwrap();
    assert!(
        tags.iter().any(|t| t["props"]["property"] == "og:title"),
        "{tags:?}"
    );
    assert_eq!(tags.len(), 3);
    assert_eq!(
        stored["infoSections"][0]["id"],
        format!("{}-s0", ids[0]),
        "section kept by title"
    );
    assert_eq!(
        stored["media"]["main"]["url"],
        "https://static.example/new.jpg"
    );

    // A forced write (no expected revision) reads the current one.
    let forced = store
        .update(&update(&ids[0], None, titled("Forced")))
        .await
        .unwrap();
    assert_eq!(forced.revision.as_deref(), Some("4"));

    match store
        .update(&update(
            &ids[0],
            forced.revision.as_deref(),
            titled(&"x".repeat(81)),
        ))
        .await
    {
        Err(ConnectorError::Platform {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code.as_str()), (400, "MAX"));
            assert!(message.contains("product.name"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        store
            .update(&update(
                "00000000-0000-4000-8000-ffffffffffff",
                Some("1"),
                titled("Gone")
            ))
            .await,
        Err(ConnectorError::NotFound(_))
    ));
}

#[tokio::test]
async fn v3_bulk_update_reports_each_item() {
    let instance = "inst-v3-bulk";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed(instance, &products(130), at(9));
    let store = catalog(&fake, instance);
    fake.edit_in_dashboard(instance, &ids[1], |p| {
        p["name"] = "Changed meanwhile".into()
    });
    let updates: Vec<ProductUpdate> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| update(id, Some("1"), titled(&format!("Bulk {i}"))))
        .collect();
    let results = store.update_many(&updates).await.unwrap();
    assert_eq!(results.len(), 130);
    assert_eq!(
        fake.requests_to("/stores/v3/bulk/products/update"),
        2,
        "chunks of 100"
    );
    for (i, result) in results.iter().enumerate() {
        if i == 1 {
            assert!(
                matches!(result, Err(ConnectorError::Conflict { code, .. }) if code == "REVISION_MISMATCH"),
                "{result:?}"
            );
        } else {
            let written = result.as_ref().unwrap();
            assert_eq!(written.product.title, format!("Bulk {i}"));
            assert_eq!(written.revision.as_deref(), Some("2"));
        }
    }
    assert_eq!(
        fake.product(instance, &ids[1]).unwrap()["name"],
        "Changed meanwhile"
    );
}

#[tokio::test]
async fn v1_sites_list_update_and_name_collections() {
    let instance = "inst-v1";
    let fake = fake_with(instance, wix_api::CatalogVersion::V1Catalog).await;
    let originals = products(150);
    let ids = fake.seed(instance, &originals, at(9));
    let store = catalog(&fake, instance);
    let listed = list_all(&store, None).await.unwrap();
    assert_eq!(listed.len(), 150);
    assert_eq!(fake.requests_to("/stores/v1/products/query"), 2);
    let first = by_id(&listed, &ids[0]);
    let mut expected = originals[0].clone();
    expected.external_id = ids[0].clone();
    expected.link = first.product.link.clone();
    assert_eq!(
        first.product, expected,
        "V1 keeps SKU and stock at product level"
    );
    assert_eq!(first.revision.as_deref(), Some("2024-03-01T09:00:00.000Z"));
    let mut paths: Vec<String> = store
        .collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    paths.sort();
    assert_eq!(paths, ["Garden > Tools", "Sale"]);

    let written = store
        .update(&update(
            &ids[0],
            first.revision.as_deref(),
            ContentUpdate {
                title: Some("V1 title".into()),
                seo_description: Some("V1 meta".into()),
                ..ContentUpdate::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(written.product.title, "V1 title");
    assert_eq!(written.product.seo_description.as_deref(), Some("V1 meta"));
    assert_ne!(written.revision, first.revision);
    // The emulated revision check: the old lastUpdated is stale now.
    assert!(matches!(
        store
            .update(&update(&ids[0], first.revision.as_deref(), titled("Late")))
            .await,
        Err(ConnectorError::Conflict {
            current_revision: Some(_),
            ..
        })
    ));
    fake.edit_in_dashboard(instance, &ids[2], |p| p["name"] = "Merchant edit".into());
    let since = list_all(&store, Some(at(10))).await.unwrap();
    let since_ids: Vec<&str> = since
        .iter()
        .map(|p| p.product.external_id.as_str())
        .collect();
    assert_eq!(since_ids, [ids[0].as_str(), ids[2].as_str()]);

    let results = store
        .update_many(&[
            update(&ids[3], Some("2024-03-01T09:00:00.000Z"), titled("Many 3")),
            update(&ids[2], Some("2024-03-01T09:00:00.000Z"), titled("Many 2")),
        ])
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().product.title, "Many 3");
    assert!(matches!(results[1], Err(ConnectorError::Conflict { .. })));
}

#[tokio::test]
async fn throttling_with_retry_after_is_waited_out() {
    let instance = "inst-429";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed(instance, &products(1), at(9));
    let mut config = config(&fake, instance);
    // One retry, 10 ms backoff: only waiting for Retry-After gets past the throttle window.
    config.retry.max_retries = 1;
    let store = WixCatalog::new(WixClient::new(config).unwrap());
    store.get(&ids[0]).await.unwrap();
    fake.inject(&[Fault::RateLimited {
        retry_after_secs: Some(1),
    }]);
    assert!(store.get(&ids[0]).await.unwrap().is_some());
    fake.inject(&[Fault::RateLimited {
        retry_after_secs: None,
    }]);
    assert!(store.get(&ids[0]).await.unwrap().is_some());
    fake.inject(&[
        Fault::RateLimited {
            retry_after_secs: None,
        },
        Fault::RateLimited {
            retry_after_secs: None,
        },
    ]);
    match store.get(&ids[0]).await {
        Err(ConnectorError::Platform { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (429, "RESOURCE_EXHAUSTED"))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let instance = "inst-5xx";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed(instance, &products(1), at(9));
    let store = catalog(&fake, instance);
    store.get(&ids[0]).await.unwrap();
    let before = fake.requests();
    fake.inject(&[
        Fault::ServerError,
        Fault::Unavailable,
        Fault::DropConnection,
    ]);
    assert!(store.get(&ids[0]).await.unwrap().is_some());
    assert_eq!(fake.requests(), before + 4);
    fake.inject(&[
        Fault::EmptyForbidden,
        Fault::Slow(Duration::from_millis(50)),
    ]);
    assert!(
        store.get(&ids[0]).await.unwrap().is_some(),
        "an empty 403 is a burst throttle"
    );

    fake.inject(&[Fault::ServerError; 4]);
    match store.get(&ids[0]).await {
        Err(ConnectorError::Platform {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code.as_str()), (500, "http_500"));
            assert!(message.contains("system error"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn the_client_rate_limit_keeps_wix_from_throttling() {
    let fake = FakeWix::start().await;
    for instance in ["inst-rate-matched", "inst-rate-unlimited"] {
        fake.add_instance(instance, wix_api::CatalogVersion::V3Catalog);
        fake.set_rate_limit(instance, 20, Duration::from_secs(1));
    }
    let ids = fake.seed("inst-rate-matched", &products(1), at(9));
    let mut matched = config(&fake, "inst-rate-matched");
    matched.rate_limit = RateLimit {
        requests: 20,
        per: Duration::from_secs(1),
    };
    let store = WixCatalog::new(WixClient::new(matched).unwrap());
    for _ in 0..50 {
        assert!(store.get(&ids[0]).await.unwrap().is_some());
    }
    assert_eq!(fake.bucket_refusals(), 0);

    // Control: a client allowed far more than Wix, with no retries, is throttled.
    let ids = fake.seed("inst-rate-unlimited", &products(1), at(9));
    let mut unlimited = config(&fake, "inst-rate-unlimited");
    unlimited.rate_limit = RateLimit {
        requests: 10_000,
        per: Duration::from_secs(1),
    };
    unlimited.retry.max_retries = 0;
    let store = WixCatalog::new(WixClient::new(unlimited).unwrap());
    let mut throttled = 0;
    for _ in 0..50 {
        if let Err(ConnectorError::Platform { status: 429, .. }) = store.get(&ids[0]).await {
            throttled += 1;
        }
    }
    assert!(throttled > 0);
    assert!(fake.bucket_refusals() > 0);
}

#[tokio::test]
async fn at_most_ten_requests_are_in_flight_per_site() {
    let instance = "inst-concurrency";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    let ids = fake.seed(instance, &products(1), at(9));
    catalog(&fake, instance).get(&ids[0]).await.unwrap();
    fake.set_latency(Duration::from_millis(40));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        // Separate clients of one site share the limit.
        let store = catalog(&fake, instance);
        let id = ids[0].clone();
        tasks.spawn(async move { store.get(&id).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(result.unwrap().unwrap().is_some());
    }
    let peak = fake.max_in_flight();
    assert!((2..=10).contains(&peak), "peak {peak}");
}

#[tokio::test]
async fn emoji_rtl_and_entities_round_trip_unchanged() {
    let text =
        "Ölkännchen 🫖🌿 — שלום עולם · مرحبا بالعالم &amp; &lt;b&gt; &#x1F600; \"quoted\" ‏RTL‏";
    let html = format!("<p dir=\"rtl\">{text}</p><p>5 &gt; 3 &nbsp; ©</p>");
    for (instance, version) in [
        ("inst-text-v3", wix_api::CatalogVersion::V3Catalog),
        ("inst-text-v1", wix_api::CatalogVersion::V1Catalog),
    ] {
        let fake = fake_with(instance, version).await;
        let ids = fake.seed(instance, &products(1), at(9));
        let store = catalog(&fake, instance);
        let current = store.get(&ids[0]).await.unwrap().unwrap();
        let title: String = text.chars().take(60).collect();
        let written = store
            .update(&update(
                &ids[0],
                current.revision.as_deref(),
                ContentUpdate {
                    title: Some(title.clone()),
                    description_html: Some(html.clone()),
                    seo_title: Some(text.to_owned()),
                    seo_description: Some(text.to_owned()),
                    info_sections: Some(vec![InfoSection {
                        title: "מידע".into(),
                        html: html.clone(),
                    }]),
                    images: None,
                },
            ))
            .await
            .unwrap();
        let read = store.get(&ids[0]).await.unwrap().unwrap();
        assert_eq!(read, written, "{instance}");
        assert_eq!(read.product.title, title);
        assert_eq!(read.product.description_html, html);
        assert_eq!(read.product.seo_title.as_deref(), Some(text));
        assert_eq!(read.product.seo_description.as_deref(), Some(text));
        assert_eq!(
            read.product.info_sections,
            [InfoSection {
                title: "מידע".into(),
                html: html.clone()
            }]
        );
    }
}

#[tokio::test]
async fn the_app_instance_reports_the_plan() {
    let instance = "inst-billing";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    let wix = client(&fake, instance);
    let free = wix.app_instance().await.unwrap();
    assert!(free.is_free);
    assert_eq!(free.billing, None);
    assert_eq!(free.instance_id, instance);
    fake.set_plan(
        instance,
        Some(PaidPlan {
            package_name: "pro-monthly".into(),
            billing_cycle: "MONTHLY".into(),
            auto_renewing: false,
            time_stamp: at(8),
            expiration_date: None,
            invoice_id: "inv-1".into(),
        }),
    );
    let paid = wix.app_instance().await.unwrap();
    assert!(!paid.is_free);
    let billing = paid.billing.unwrap();
    assert_eq!(billing.package_name.as_deref(), Some("pro-monthly"));
    assert_eq!(billing.billing_cycle.as_deref(), Some("MONTHLY"));
    assert_eq!(billing.auto_renewing, Some(false));
    assert_eq!(billing.time_stamp, Some(at(8)));
    assert!(paid.site.unwrap().url.is_some());
}

#[tokio::test]
async fn a_site_without_wix_stores_is_a_clear_error() {
    let instance = "inst-no-stores";
    let fake = fake_with(instance, wix_api::CatalogVersion::StoresNotInstalled).await;
    let store = catalog(&fake, instance);
    assert_eq!(
        store.client().catalog_version().await.unwrap(),
        CatalogVersion::StoresNotInstalled
    );
    match store.list(None, None).await {
        Err(ConnectorError::Platform { code, message, .. }) => {
            assert_eq!(code, "STORES_NOT_INSTALLED");
            assert!(message.contains("Wix Stores is not installed"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Not cached: once Stores is added, the catalog works.
    fake.set_catalog_version(instance, wix_api::CatalogVersion::V3Catalog);
    assert!(store.list(None, None).await.unwrap().products.is_empty());
}

#[tokio::test]
async fn plain_http_is_refused_except_to_loopback() {
    let mut remote = WixConfig::new("app", "secret", "inst-http");
    remote.base_url = "http://wixapis.example".into();
    assert!(matches!(
        WixClient::new(remote),
        Err(ConnectorError::InsecureUrl(_))
    ));
    let mut garbage = WixConfig::new("app", "secret", "inst-http");
    garbage.base_url = "not a url".into();
    assert!(matches!(
        WixClient::new(garbage),
        Err(ConnectorError::InvalidUrl(_))
    ));
    assert!(WixClient::new(WixConfig::new("app", "secret", "inst-http")).is_ok());
}

/// Wix's SDK queries products with `GET /stores/v3/products/query?.r=<base64url JSON>`
/// (`@wix/sdk-runtime` `toURLSearchParams`), falling back to `POST` only for long queries.
#[tokio::test]
async fn the_fake_answers_the_sdks_get_form_of_product_queries() {
    use base64::Engine;
    let instance = "inst-sdk-get";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    fake.seed(instance, &products(3), at(9));
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", fake.base_url);
    let minted: serde_json::Value = http
        .post(url("/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": fake.app_id, "client_secret": fake.app_secret, "instance_id": instance}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let request = serde_json::json!({"query": {"cursorPaging": {"limit": 2}}});
    let encoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(request.to_string().as_bytes());
    let get = |query: String| {
        http.get(url(&format!("/stores/v3/products/query{query}")))
            .header("authorization", &token)
            .send()
    };
    let by_get = get(format!("?.r={encoded}")).await.unwrap();
    assert_eq!(by_get.status(), 200);
    let by_get: serde_json::Value = by_get.json().await.unwrap();
    let by_post: serde_json::Value = http
        .post(url("/stores/v3/products/query"))
        .header("authorization", &token)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_get["products"].as_array().unwrap().len(), 2);
    assert_eq!(by_get, by_post);
    let everything: serde_json::Value = get(String::new()).await.unwrap().json().await.unwrap();
    assert_eq!(everything["products"].as_array().unwrap().len(), 3);
    let garbled = get("?.r=%%%".to_owned()).await.unwrap();
    assert_eq!(garbled.status(), 400);
}

/// The fake holds clients to Wix's rules (docs/protocols.md, Wix), so the tests above cannot
/// pass against a lenient fake: checked here with raw HTTP.
#[tokio::test]
async fn the_fake_enforces_wix_protocol_rules() {
    let instance = "inst-protocol";
    let fake = fake_with(instance, wix_api::CatalogVersion::V3Catalog).await;
    fake.seed(instance, &products(3), at(9));
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", fake.base_url);
    let minted: serde_json::Value = http
        .post(url("/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": fake.app_id, "client_secret": fake.app_secret, "instance_id": instance}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(minted["token_type"], "Bearer");
    assert_eq!(minted["expires_in"], 14_400);
    let token = minted["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("OauthNG.JWS."));

    let post = |path: &str, body: serde_json::Value, auth: Option<String>| {
        let mut request = http.post(url(path)).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let unauthenticated = post("/stores/v3/products/query", serde_json::json!({}), None)
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(unauthenticated.headers().contains_key("x-wix-request-id"));
    let body: serde_json::Value = unauthenticated.json().await.unwrap();
    assert!(
        body["details"]["applicationError"]["code"].is_string(),
        "{body}"
    );

    let bearer = Some(format!("Bearer {token}"));
    let plain: serde_json::Value = post(
        "/stores/v3/products/query",
        serde_json::json!({"query": {"cursorPaging": {"limit": 2}}}),
        bearer.clone(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let first = &plain["products"][0];
    assert!(first.get("plainDescription").is_none() && first.get("currency").is_none());
    assert!(
        first["media"].get("itemsInfo").is_none() && first.get("directCategoriesInfo").is_none()
    );
    assert!(
        first.get("variantsInfo").is_none(),
        "queries carry no variants"
    );
    assert_eq!(plain["pagingMetadata"]["hasNext"], true);
    assert!(plain["pagingMetadata"].get("total").is_none());

    let too_big = post(
        "/stores/v3/products/query",
        serde_json::json!({"query": {"cursorPaging": {"limit": 101}}}),
        Some(token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(too_big.status(), 400);
    let nested = post(
        "/categories/v1/categories/query",
        serde_json::json!({"query": {"treeReference": {"appNamespace": "@wix/stores"}}}),
        Some(token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(nested.status(), 400);
    assert!(nested
        .text()
        .await
        .unwrap()
        .contains("treeReference must not be empty"));
    let empty_bulk = post(
        "/stores/v3/bulk/products/update",
        serde_json::json!({"products": []}),
        Some(token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(empty_bulk.status(), 400);
    let v1_on_v3 = post(
        "/stores/v1/products/query",
        serde_json::json!({"query": {}}),
        Some(token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(v1_on_v3.status(), 428);
    let no_revision = http
        .patch(url(&format!(
            "/stores/v3/products/{}",
            fake.product_ids(instance)[0]
        )))
        .header("authorization", token.as_str())
        .json(&serde_json::json!({"product": {"name": "No revision"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_revision.status(), 400);

    fake.add_instance("inst-protocol-v1", wix_api::CatalogVersion::V1Catalog);
    let v1_token: serde_json::Value = http
        .post(url("/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": fake.app_id, "client_secret": fake.app_secret, "instance_id": "inst-protocol-v1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v1_token = v1_token["access_token"].as_str().map(str::to_owned);
    let object_filter = post(
        "/stores/v1/products/query",
        serde_json::json!({"query": {"filter": {"id": "x"}}}),
        v1_token.clone(),
    )
    .await
    .unwrap();
    assert_eq!(object_filter.status(), 400, "V1 filters are JSON strings");
    let string_filter = post(
        "/stores/v1/products/query",
        serde_json::json!({"query": {"filter": "{\"id\":\"x\"}"}}),
        v1_token,
    )
    .await
    .unwrap();
    assert_eq!(string_filter.status(), 200);
}
